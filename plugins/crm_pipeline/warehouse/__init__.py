"""The warehouse: where it is, how to connect, and its non-dbt schemas."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crm_pipeline.settings import get_settings


def warehouse_url(start_embedded: bool = True) -> str:
    """The URL of the warehouse: ``CRM_WAREHOUSE_URL`` or the embedded server.

    With no URL configured, the embedded PostgreSQL under ``CRM_HOME`` is
    started (idempotently) unless ``start_embedded`` is False.
    """
    settings = get_settings()
    if settings.warehouse_url:
        return settings.warehouse_url
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.home, settings.embedded_pg_port)
    return embedded.ensure_running() if start_embedded else embedded.url()


def maintenance_url(url: str | None = None) -> str:
    """The ``postgres`` database on the warehouse's server (to create and drop databases)."""
    p = url_parts(url or warehouse_url())
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    return f"postgresql://{auth}@{p['host']}:{p['port']}/postgres"


def url_parts(url: str) -> dict[str, str]:
    """host/port/user/password/dbname of a libpq URL (for dbt and GX)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    return {
        "host": str(parts.get("host") or "127.0.0.1"),
        "port": str(parts.get("port") or "5432"),
        "user": str(parts.get("user") or "postgres"),
        "password": str(parts.get("password") or ""),
        "dbname": str(parts.get("dbname") or "postgres"),
    }


@contextmanager
def connect(url: str | None = None, autocommit: bool = False,
            durable: bool = False) -> Iterator[psycopg.Connection]:  # noqa: F821
    """A psycopg 3 connection; commits on success, rolls back on error.

    ``durable``: every commit is written before it returns, whatever the server's
    ``synchronous_commit`` (D31): for writes the user is told are recorded and no
    rerun would redo (opt-outs, call outcomes, identity rules).
    """
    import psycopg

    conn = psycopg.connect(url or warehouse_url(), autocommit=autocommit, application_name="crm_pipeline")
    if durable:
        conn.execute("set synchronous_commit = on")
        if not autocommit:
            conn.commit()
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit and not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()
