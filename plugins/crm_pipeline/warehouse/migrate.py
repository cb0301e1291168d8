"""Apply the warehouse's own DDL (raw, ops, outreach schemas) idempotently."""

from __future__ import annotations

from pathlib import Path

from crm_pipeline.pii import get_logger
from crm_pipeline.platforms import PLATFORMS

log = get_logger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 7_321_001  # advisory lock: one migrator at a time


# Payloads are stored uncompressed unless a row outgrows a page (D122): PostgreSQL
# decompresses a compressed jsonb again for every `payload ->> 'field'`, and staging reads
# 30-40 fields per order. Costs about 65% more disk for the raw layer. Rows landed before
# this setting keep their compressed form until they are landed again.
RAW_STORAGE = "toast_tuple_target = 8160"


def raw_table_ddl(table: str) -> str:
    """Current-state table plus an append-only version history table."""
    columns = """
        shop_id            text not null,
        order_id           text not null,
        source_updated_at  timestamptz not null,
        payload            jsonb not null,
        derived            jsonb not null default '{}'::jsonb,
        payload_hash       text not null,
        batch_id           text not null,
        loaded_at          timestamptz not null"""
    return f"""
    create table if not exists raw.{table} ({columns},
        primary key (shop_id, order_id)) with ({RAW_STORAGE});
    create index if not exists {table}_loaded_at on raw.{table} (loaded_at);
    create table if not exists raw.{table}_versions ({columns},
        primary key (shop_id, order_id, payload_hash)) with ({RAW_STORAGE});
    create index if not exists {table}_versions_loaded_at on raw.{table}_versions (loaded_at);
    """


def migrate(url: str | None = None) -> list[str]:
    """Apply pending migration files, then make sure every raw table exists."""
    from crm_pipeline.warehouse import connect

    applied: list[str] = []
    with connect(url) as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("create schema if not exists ops")
        conn.execute(
            "create table if not exists ops.schema_migrations "
            "(version text primary key, applied_at timestamptz not null default now())"
        )
        done = {row[0] for row in conn.execute("select version from ops.schema_migrations")}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.stem in done:
                continue
            conn.execute(path.read_text(encoding="utf-8"))
            conn.execute("insert into ops.schema_migrations (version) values (%s)", (path.stem,))
            applied.append(path.stem)
        for spec in PLATFORMS.values():
            conn.execute(raw_table_ddl(spec.raw_table))
        # raw tables created before D122 get the storage setting once
        for (relation,) in conn.execute(
                "select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = 'raw' and c.relkind = 'r' and c.relname = any(%s)"
                " and not coalesce(%s = any(c.reloptions), false)",
                ([t for spec in PLATFORMS.values() for t in (spec.raw_table, spec.raw_table + "_versions")],
                 RAW_STORAGE.replace(" ", ""))).fetchall():
            conn.execute(f"alter table {relation} set ({RAW_STORAGE})")
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return applied
