"""dbt invocation for the CLI, tests and Airflow tasks (outside Cosmos).

The dbt profile reads ``CRM_DBT_*`` variables; :func:`dbt_env` derives them
from ``CRM_WAREHOUSE_URL`` (or the embedded server), so users configure one URL.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from crm_pipeline.pii import get_logger, redact
from crm_pipeline.settings import get_settings

log = get_logger(__name__)


class DbtError(RuntimeError):
    pass


OFFLINE_COMMANDS = ("parse", "ls", "list", "clean", "deps")


def dbt_env(url: str | None = None, offline: bool = False) -> dict[str, str]:
    """Connection variables for profiles.yml; ``offline`` commands (parse) never start a server."""
    from crm_pipeline.warehouse import url_parts, warehouse_url

    parts = url_parts(url or ("postgresql://postgres@127.0.0.1:5432/crm" if offline else warehouse_url()))
    settings = get_settings()
    return {
        "CRM_DBT_HOST": parts["host"],
        "CRM_DBT_PORT": parts["port"],
        "CRM_DBT_USER": parts["user"],
        "CRM_DBT_PASSWORD": parts["password"],
        "CRM_DBT_DBNAME": parts["dbname"],
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def shop_timezones() -> dict[str, str]:
    try:
        from crm_pipeline.config import load_shops

        return {s.shop_id: s.timezone for s in load_shops(resolve=False)}
    except Exception:  # a broken shops file is reported by extraction, not here
        return {}


def dbt_vars(as_of: date | None = None, extra: dict | None = None) -> dict:
    settings = get_settings()
    values: dict = {"default_timezone": settings.timezone, "shop_timezones": shop_timezones()}
    if as_of is not None:
        values["as_of_date"] = as_of.isoformat()
    values.update(extra or {})
    return values


def target_dir() -> Path:
    """Where dbt writes its artifacts by default: ``DBT_TARGET_PATH``, else the project's target/."""
    configured = os.environ.get("DBT_TARGET_PATH")
    return Path(configured) if configured else get_settings().dbt_project_dir / "target"


def reuse_partial_parse(other_target: Path) -> None:
    """Seed a separate ``--target-path`` with the default target's newer partial-parse file.

    dbt re-parses the whole project (5-7 s) when a target path has no
    partial_parse.msgpack or one written with other ``--vars``; after a build
    of the same day the default target holds one that matches.
    """
    source = target_dir() / "partial_parse.msgpack"
    dest = other_target / "partial_parse.msgpack"
    if source.exists() and (not dest.exists() or dest.stat().st_mtime < source.stat().st_mtime):
        other_target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)


_DBT_LOCK = threading.Lock()


@contextmanager
def _environment(values: dict[str, str]):
    """``values`` in os.environ for the block (dbt reads the profile's env_var()s during the call)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failure_detail(result) -> str:
    """The failed nodes of a dbt result (or its exception), one line each."""
    if result.exception is not None:
        return redact(f"{type(result.exception).__name__}: {result.exception}")
    lines = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        if status in ("error", "fail", "runtime error"):
            node = getattr(node_result, "node", None)
            lines.append(f"{status.upper()} {getattr(node, 'unique_id', '?')}: {node_result.message}")
    return redact("\n".join(lines)[-4000:])  # a database error can quote a row's phone or e-mail


def run_dbt(args: list[str], as_of: date | None = None, url: str | None = None, extra_vars: dict | None = None,
            capture: bool = False, project_dir: Path | None = None):
    """Run one dbt command against the warehouse, in this process; raises DbtError on failure.

    In-process (dbt's programmatic ``dbtRunner``, as Cosmos runs it) rather than a
    ``dbt`` subprocess: importing dbt costs ~4 s, paid once per process instead of
    once per command. ``capture`` keeps dbt's progress lines off stdout (errors
    still reach the exception). ``project_dir`` runs a copy of the project (tests of
    a changed model). Returns dbt's result object.
    """
    from dbt.cli.main import dbtRunner

    settings = get_settings()
    offline = bool(args) and args[0] in OFFLINE_COMMANDS
    cli = [*args, "--project-dir", str(project_dir or settings.dbt_project_dir)]
    if not args or args[0] not in ("clean", "deps"):
        cli += ["--vars", json.dumps(dbt_vars(as_of, extra_vars))]
    if capture:
        cli += ["--quiet"]
    log.info("dbt %s", " ".join(args))
    with _DBT_LOCK, _environment(dbt_env(url or settings.warehouse_url, offline=offline)):
        result = dbtRunner().invoke(cli)
    if not result.success:
        detail = _failure_detail(result)
        raise DbtError(f"dbt {' '.join(args)} failed" + (f":\n{detail}" if detail else ""))
    return result
