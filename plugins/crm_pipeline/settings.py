"""Every setting the pipeline reads from the environment, in one typed place.

Nothing else in the package reads ``os.environ`` for configuration: modules ask
for ``get_settings()``. Every variable here is listed in ``.env.example`` and in
the README's env-var table (a test checks that the three agree).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _default_project_dir() -> Path:
    # plugins/crm_pipeline/settings.py -> project root (editable install and
    # Airflow's plugins folder both keep this layout).
    return PACKAGE_DIR.parents[1]


# name -> (default, description); the single source for .env.example and README.
ENV_VARS: dict[str, tuple[str, str]] = {
    "CRM_PROJECT_DIR": ("(repository root)", "Where dags/, dbt_project/, expectations/ and config/ live."),
    "CRM_HOME": ("$CRM_PROJECT_DIR/.crm", "State: embedded Postgres data, Airflow home, sandbox logs."),
    "CRM_OUT_DIR": ("$CRM_PROJECT_DIR/out", "Outputs: out/<date>/call lists, report, docs."),
    "CRM_CONFIG_DIR": ("$CRM_PROJECT_DIR/config", "shops.yml, policy.yml, agents.yml, campaigns/, templates/."),
    "CRM_WAREHOUSE_URL": ("(embedded)", "postgresql://user:pass@host:port/db of the warehouse; unset = embedded PostgreSQL under CRM_HOME."),
    "CRM_EMBEDDED_PG_PORT": ("55432", "127.0.0.1 port of the embedded PostgreSQL (a free port is chosen if taken)."),
    "CRM_SANDBOX_URL": ("http://127.0.0.1:8765", "Base URL of the local sandbox platforms and gateways (default: 127.0.0.1 at CRM_SANDBOX_PORT)."),
    "CRM_SANDBOX_PORT": ("8765", "Port the sandbox server binds on 127.0.0.1."),
    "CRM_SANDBOX_ANCHOR": ("2026-11-20", "Last day of the sandbox's two years of synthetic history."),
    "CRM_SANDBOX_PERSONS": ("3000", "How many synthetic buyers the sandbox world holds."),
    "CRM_SANDBOX_THROTTLE": ("1", "1 = the sandbox enforces the platforms' documented rate limits; 0 = off (tests, benchmarks)."),
    "CRM_DEMO_DATE": ("2026-11-20", "Logical date `make demo` runs the nightly DAG for."),
    "CRM_TIMEZONE": ("Asia/Shanghai", "Default shop time zone (schedules, quiet hours, date boundaries)."),
    "CRM_INTAKE_DIR": ("$CRM_HOME/inbox", "Spreadsheet inbox: <dir>/<shop_id>/*.xlsx|csv are imported nightly."),
    "CRM_INTAKE_MAX_MB": ("100", "Largest intake spreadsheet accepted, in MB unpacked (.xlsx) or as is (.csv); bigger or zip-bomb-like files are refused before reading (exit 4)."),
    "CRM_LOG_LEVEL": ("INFO", "Log level of the crm command and tasks."),
    "CRM_DEBUG": ("", "Set to 1: an unexpected error prints its full traceback instead of the one-line message."),
    "CRM_DBT_SPARK_DIR": ("$CRM_HOME/spark", "Warehouse and metastore of the local Spark session for `dbt --target spark` (the Spark profile reads it)."),
    "CRM_ALERT_WEBHOOK_URL": ("", "Failure callbacks POST here (JSON) when set."),
    "CRM_ALERT_EMAIL": ("", "Failure callbacks also e-mail this address via Airflow SMTP when set."),
    "CRM_INTRADAY_MINUTES": ("30", "Interval of the intraday transactional DAG."),
    "CRM_INTRADAY_HOURS": ("8-21", "Hours (cron hour field, CRM_TIMEZONE) in which the intraday DAG ticks; widen it (e.g. 4-23) when shops in other zones need payment reminders and shipment notices in their own daytime; keep the nightly's hours out (two dbt builds must not overlap). With hour-multiple intervals the step counts from the first hour given; an interval that neither divides nor is a multiple of 60 ignores it."),
    "CRM_PUSH_MINUTES": ("10", "Interval of the crm_push DAG that sends every due message, around the clock (each in its recipient's waking hours)."),
    "CRM_NOW": ("", "Pin the pipeline clock (ISO 8601 with offset); `make demo` pins the morning after CRM_DEMO_DATE."),
    "CRM_NIGHTLY_CRON": ("30 2 * * *", "Nightly schedule in CRM_TIMEZONE (lists ready well before 08:00)."),
    "CRM_ON_SHOP_FAILURE": ("continue", "A shop that could not be read: `continue` the night for the others (messages that its missing data could contradict are held; the run ends failed) or `stop` the night (D45)."),
    "CRM_ANALYST_PASSWORD": ("", "`crm setup-roles`: login password for crm_analyst (unset = role without login)."),
    "CRM_OPS_PASSWORD": ("", "`crm setup-roles`: login password for crm_ops (unset = role without login)."),
}

# Variables only docker-compose.yml reads (the deployment, not the pipeline).
DEPLOY_ENV_VARS: dict[str, tuple[str, str]] = {
    "CRM_IMAGE": ("crm-pipeline:latest", "Image tag built from docker/Dockerfile."),
    "AIRFLOW_IMAGE": ("apache/airflow:3.3.2-python3.11", "Base Airflow image of docker/Dockerfile."),
    "AIRFLOW_UID": ("50000", "UID the Airflow containers run as (set to `id -u` so ./out is yours)."),
    "AIRFLOW_DB_PASSWORD": ("airflow", "Password of the Airflow metadata Postgres."),
    "AIRFLOW_FERNET_KEY": ("", "Fernet key encrypting Airflow connections (generate one for production)."),
    "AIRFLOW_JWT_SECRET": ("change-me", "Secret the api-server signs task tokens with."),
    "AIRFLOW_API_PORT": ("8080", "Host port of the Airflow UI/API."),
    "AIRFLOW_ADMIN_USER": ("admin", "First UI user, created by airflow-init (FAB auth manager)."),
    "AIRFLOW_ADMIN_PASSWORD": ("admin", "Its password: change it before the UI is reachable by anyone else."),
    "CRM_WAREHOUSE_PASSWORD": ("crm", "Password of the warehouse Postgres service."),
    "CRM_WAREHOUSE_PORT": ("55440", "Host port of the compose warehouse Postgres (analysts connect here; not the embedded one's 55432)."),
    "AIRFLOW_PARALLELISM": ("8", "Task instances running at once on the host (each dbt model is a process: about 2 per core)."),
    "FLOWER_PORT": ("5555", "Host port of Celery Flower (`--profile flower`)."),
}


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    home: Path
    out_dir: Path
    config_dir: Path
    warehouse_url: str | None
    embedded_pg_port: int
    sandbox_url: str
    sandbox_port: int
    sandbox_anchor: date
    sandbox_persons: int
    demo_date: date
    timezone: str
    intake_dir: Path
    log_level: str
    alert_webhook_url: str
    alert_email: str
    intraday_minutes: int
    intraday_hours: str
    nightly_cron: str
    push_minutes: int = 10
    on_shop_failure: str = "continue"
    intake_max_mb: int = 100
    extra: dict = field(default_factory=dict)

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt_project"

    @property
    def expectations_dir(self) -> Path:
        return self.project_dir / "expectations"

    @property
    def dags_dir(self) -> Path:
        return self.project_dir / "dags"

    @property
    def shops_file(self) -> Path:
        return self.config_dir / "shops.yml"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    project = Path(_env("CRM_PROJECT_DIR", str(_default_project_dir()))).resolve()
    home = Path(_env("CRM_HOME", str(project / ".crm"))).resolve()
    return Settings(
        project_dir=project,
        home=home,
        out_dir=Path(_env("CRM_OUT_DIR", str(project / "out"))).resolve(),
        config_dir=Path(_env("CRM_CONFIG_DIR", str(project / "config"))).resolve(),
        warehouse_url=os.environ.get("CRM_WAREHOUSE_URL") or None,
        embedded_pg_port=int(_env("CRM_EMBEDDED_PG_PORT", "55432")),
        # the URL follows the port unless it is set itself (a sandbox on another host)
        sandbox_url=_env("CRM_SANDBOX_URL", f"http://127.0.0.1:{_env('CRM_SANDBOX_PORT', '8765')}").rstrip("/"),
        sandbox_port=int(_env("CRM_SANDBOX_PORT", "8765")),
        sandbox_anchor=date.fromisoformat(_env("CRM_SANDBOX_ANCHOR", "2026-11-20")),
        sandbox_persons=int(_env("CRM_SANDBOX_PERSONS", "3000")),
        demo_date=date.fromisoformat(_env("CRM_DEMO_DATE", "2026-11-20")),
        timezone=_env("CRM_TIMEZONE", "Asia/Shanghai"),
        intake_dir=Path(_env("CRM_INTAKE_DIR", str(home / "inbox"))).resolve(),
        log_level=_env("CRM_LOG_LEVEL", "INFO"),
        alert_webhook_url=_env("CRM_ALERT_WEBHOOK_URL", ""),
        alert_email=_env("CRM_ALERT_EMAIL", ""),
        intraday_minutes=int(_env("CRM_INTRADAY_MINUTES", "30")),
        intraday_hours=_env("CRM_INTRADAY_HOURS", "8-21").replace(" ", ""),
        nightly_cron=_env("CRM_NIGHTLY_CRON", "30 2 * * *"),
        push_minutes=int(_env("CRM_PUSH_MINUTES", "10")),
        on_shop_failure=_env("CRM_ON_SHOP_FAILURE", "continue").strip().lower(),
        intake_max_mb=int(_env("CRM_INTAKE_MAX_MB", "100")),
    )


def reload_settings() -> Settings:
    """Drop the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
    return get_settings()
