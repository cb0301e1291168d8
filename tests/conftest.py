"""Shared fixtures: a real PostgreSQL (embedded by default, CRM_WAREHOUSE_URL when
set), fresh databases per test module, and the sandbox platforms on a free port."""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests: `make test` (and CI) draws the same examples every run, so a red run is
# reproducible and never a roll of the dice; `--hypothesis-profile=explore` searches with
# fresh random examples, many more of them, to find new counterexamples (then pin each
# with @example).
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", max_examples=5000, derandomize=False)
settings.load_profile("default")

ROOT = Path(__file__).resolve().parents[1]
TEST_PERSONS = int(os.environ.get("CRM_TEST_PERSONS", "600"))
ANCHOR = date(2026, 11, 20)

# Tests never touch the demo's outputs or spreadsheets.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
# dbt artifacts of test runs never overwrite the project's target/ (the DAG renders from it)
os.environ.setdefault("DBT_TARGET_PATH", tempfile.mkdtemp(prefix="crm_dbt_target_"))
os.environ.setdefault("DBT_LOG_PATH", os.environ["DBT_TARGET_PATH"])
# an empty spreadsheet inbox: the demo's files would make its intake shop look stale (D45)
os.environ.setdefault("CRM_INTAKE_DIR", tempfile.mkdtemp(prefix="crm_inbox_"))


def pytest_configure(config):
    from crm_pipeline.config import load_env_defaults

    load_env_defaults(ROOT / "config" / "sandbox.env")


@pytest.fixture(scope="session")
def tmp_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("crm_home")
    return home


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the PostgreSQL server the tests create their databases on."""
    from crm_pipeline.settings import reload_settings
    from crm_pipeline.warehouse import maintenance_url

    reload_settings()
    return maintenance_url()


@pytest.fixture(scope="session")
def make_database(server_url):
    """Factory: a fresh, migrated database; all are dropped at the end of the session."""
    import psycopg
    from crm_pipeline.warehouse.migrate import migrate

    created: list[str] = []

    def make(label: str, migrated: bool = True) -> str:
        name = f"crm_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        url = server_url.rsplit("/", 1)[0] + f"/{name}"
        if migrated:
            migrate(url)
        return url

    yield make
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def warehouse(make_database, monkeypatch_module) -> str:
    url = make_database("mod")
    monkeypatch_module.setenv("CRM_WAREHOUSE_URL", url)
    from crm_pipeline.settings import reload_settings

    reload_settings()
    return url


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
    from crm_pipeline.settings import reload_settings

    reload_settings()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """The sandbox platforms and gateways in a thread, on a free port (small world)."""
    from crm_pipeline.sandbox.server import SandboxServer
    from crm_pipeline.settings import reload_settings

    log_dir = tmp_path_factory.mktemp("sandbox")
    server = SandboxServer(port=0, anchor=ANCHOR, persons=TEST_PERSONS, log_dir=log_dir).start()
    old = os.environ.get("CRM_SANDBOX_URL")
    os.environ["CRM_SANDBOX_URL"] = server.url
    reload_settings()
    yield server
    server.stop()
    if old is None:
        os.environ.pop("CRM_SANDBOX_URL", None)
    else:
        os.environ["CRM_SANDBOX_URL"] = old
    reload_settings()


@pytest.fixture
def fresh_sandbox(sandbox):
    """The session sandbox with no faults and throttling on; faults reset afterwards."""
    import requests

    requests.post(sandbox.url + "/_control/reset", json={"throttle": True}, timeout=5)
    yield sandbox
    requests.post(sandbox.url + "/_control/reset", json={"throttle": True}, timeout=5)



MODEL_AS_OF = date(2026, 11, 20)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def modeled(sandbox, make_database, tmp_path_factory):
    """A warehouse with every sandbox shop extracted (full history), one intake sheet,
    and `dbt seed` + `dbt build` (all data tests) run for MODEL_AS_OF. Shared: treat as
    read-only, or copy it with `clone_database`."""
    import requests
    from crm_pipeline import pipeline
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import run_intake
    from crm_pipeline.sandbox.intake_files import write_intake_xlsx

    requests.post(sandbox.url + "/_control/reset", json={"throttle": False}, timeout=5)
    url = make_database("modeled")
    for shop_id in pipeline.api_shop_ids():
        pipeline.extract_shop(shop_id, MODEL_AS_OF, url=url)
    sheet = tmp_path_factory.mktemp("intake") / "wechat_orders.xlsx"
    write_intake_xlsx(sandbox.state.world, "wechat_social", MODEL_AS_OF, sheet)
    run_intake(sheet, get_shop("wechat_social"), url=url)
    pipeline.transform(MODEL_AS_OF, url=url)
    requests.post(sandbox.url + "/_control/reset", json={"throttle": True}, timeout=5)
    return url


@pytest.fixture(scope="session")
def clone_database(server_url, make_database):
    """Factory: a copy of a database (create database ... template ...), dropped at the end."""
    import psycopg

    def clone(source_url: str, label: str) -> str:
        target = make_database(label, migrated=False)
        name = target.rsplit("/", 1)[1]
        source = source_url.rsplit("/", 1)[1]
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database "{name}"')
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (source,))
            conn.execute(f'create database "{name}" template "{source}"')
        return target

    return clone
