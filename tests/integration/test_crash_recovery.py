"""Issue 6 §7, deterministic cases: kill a step mid-load, mid-dbt and mid-push, restart
the warehouse between steps, re-run — the result equals an undisturbed run, nothing
is sent twice or lost. (`bench/chaos` runs randomized versions of these.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import pytest
from conftest import MODEL_AS_OF
from helpers import fault, gateway_messages, reset, rows, shops_read_at, table_digest

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 18)
RAW = ("shop_id, order_id", ("batch_id", "loaded_at"))


def spawn(code: str, url: str, sandbox) -> subprocess.Popen:
    env = {**os.environ, "CRM_WAREHOUSE_URL": url, "CRM_SANDBOX_URL": sandbox.url,
           "CRM_NOW": "2026-11-21T10:30:00+08:00"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.1)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_kill_mid_load_then_rerun_equals_undisturbed(sandbox, make_database):
    from crm_pipeline import pipeline

    reset(sandbox, throttle=False)
    baseline = make_database("crash_base")
    pipeline.extract_shop("woo_site", DAY, url=baseline)
    crashed = make_database("crash_load")
    # the 4th request hangs: the process is killed with pages already staged
    fault(sandbox, target="woocommerce", kind="timeout", times=1, after=3, params={"delay": 20})
    proc = spawn(f"from datetime import date; from crm_pipeline.pipeline import extract_shop; "
                 f"extract_shop('woo_site', date({DAY.year}, {DAY.month}, {DAY.day}))", crashed, sandbox)
    try:
        wait_for(lambda: rows(crashed, "select count(*) from ops.load_batches where status = 'running'")[0][0] == 1)
        time.sleep(1.0)
    finally:
        kill(proc)
    reset(sandbox, throttle=False)
    assert rows(crashed, "select count(*) from raw.woocommerce_orders")[0][0] == 0, "nothing half-landed"
    pipeline.extract_shop("woo_site", DAY, url=crashed)
    assert table_digest(crashed, "raw.woocommerce_orders", RAW[0], RAW[1]) == \
        table_digest(baseline, "raw.woocommerce_orders", RAW[0], RAW[1])
    assert rows(crashed, "select count(*) from raw.woocommerce_orders_versions")[0][0] == \
        rows(baseline, "select count(*) from raw.woocommerce_orders_versions")[0][0]


MARTS = {"marts.fct_orders": "order_key", "marts.dim_customers": "customer_id", "marts.customer_rfm": "customer_id",
         "marts.customer_lifecycle": "customer_id", "marts.customer_tiers": "customer_id",
         "marts.customer_identities": "identity_key"}


def test_kill_mid_dbt_then_rerun_equals_undisturbed(modeled, clone_database, sandbox):
    from crm_pipeline import pipeline

    url = clone_database(modeled, "crash_dbt")
    # modeled_at stamps the run that last wrote an order: the rerun's differs by design
    volatile = ("loaded_at", "modeled_at")
    before = {t: table_digest(modeled, t, k, exclude=volatile) for t, k in MARTS.items()}
    code = ("from datetime import date; from crm_pipeline.transform.dbt import run_dbt; "
            f"run_dbt(['build', '--full-refresh'], date({MODEL_AS_OF.year}, {MODEL_AS_OF.month}, {MODEL_AS_OF.day}))")
    proc = spawn(code, url, sandbox)
    try:
        # killed once dbt is rebuilding marts (some intermediate tables already swapped)
        wait_for(lambda: rows(url, "select count(*) from pg_stat_activity where datname = current_database()"
                                   " and pid <> pg_backend_pid() and state = 'active'"
                                   " and query ilike '%%create%%table%%'")[0][0] > 0, timeout=120)
        time.sleep(3)
    finally:
        kill(proc)
    pipeline.transform(MODEL_AS_OF, url=url)
    after = {t: table_digest(url, t, k, exclude=volatile) for t, k in MARTS.items()}
    assert after == before


def _push(url, stale_after=None):
    from datetime import timedelta

    import psycopg
    from crm_pipeline.clock import now
    from crm_pipeline.outreach import push as push_mod
    from crm_pipeline.outreach.gateways import build_gateways, load_gateway_config
    from crm_pipeline.outreach.policy import load_policy
    from crm_pipeline.settings import get_settings

    cfg = get_settings().config_dir
    shops_read_at(url, now())  # as the intraday run does before it pushes
    old = push_mod.STALE_SENDING
    push_mod.STALE_SENDING = stale_after if stale_after is not None else timedelta(minutes=10)
    try:
        with psycopg.connect(url) as conn:
            return push_mod.push(conn, build_gateways(load_gateway_config(cfg / "gateways.yml")),
                                 load_policy(cfg / "policy.yml"), now())
    finally:
        push_mod.STALE_SENDING = old


@pytest.fixture
def planned_copy(modeled, clone_database, monkeypatch, sandbox):
    from crm_pipeline import pipeline
    from crm_pipeline.settings import reload_settings

    monkeypatch.setenv("CRM_NOW", "2026-11-21T10:30:00+08:00")
    reload_settings()
    url = clone_database(modeled, "crash_push")
    pipeline.plan_outreach(MODEL_AS_OF, url)
    reset(sandbox, messages=True)
    return url


def test_kill_mid_push_never_sends_twice(planned_copy, sandbox):
    from datetime import timedelta

    url = planned_copy
    total = rows(url, "select count(*) from outreach.message_ledger where send_after <= '2026-11-21T10:30:00+08:00'")[0][0]
    shops_read_at(url, "2026-11-21T10:30:00+08:00")  # as the intraday run does before it pushes
    # the gateway accepts the 2nd SMS batch, then hangs: the pusher is killed waiting for the answer
    fault(sandbox, target="aliyun", kind="accept_then_timeout", times=1, after=1, params={"delay": 30})
    proc = spawn("from datetime import date; from crm_pipeline.pipeline import push_messages; "
                 f"push_messages(date({MODEL_AS_OF.year}, {MODEL_AS_OF.month}, {MODEL_AS_OF.day}))", url, sandbox)
    try:
        wait_for(lambda: rows(url, "select count(*) from outreach.message_ledger where status = 'sending'")[0][0] > 0
                 and len(gateway_messages(sandbox)) > 0 and _fault_fired(sandbox))
        time.sleep(0.5)
    finally:
        kill(proc)
    reset(sandbox)
    in_flight = rows(url, "select count(*) from outreach.message_ledger where status = 'sending'")[0][0]
    assert in_flight > 0
    # a prompt retry leaves in-flight rows alone (they may have been accepted) ...
    _push(url)
    assert rows(url, "select count(*) from outreach.message_ledger where status = 'sending'")[0][0] == in_flight
    # ... once stale, they are reconciled with the gateway instead of re-sent
    stats = _push(url, stale_after=timedelta(0))
    assert stats.reconciled_accepted == in_flight and stats.reconciled_resend == 0
    accepted = rows(url, "select count(*) from outreach.message_ledger where status = 'accepted'")[0][0]
    assert accepted == total == len(gateway_messages(sandbox))
    sms = [(m["out_id"], m["to"]) for m in gateway_messages(sandbox) if m["gateway"] == "aliyun"]
    assert len(sms) == len(set(sms))


def _fault_fired(sandbox) -> bool:
    import requests

    return any(f["fired"] for f in requests.get(sandbox.url + "/_control/faults", timeout=5).json())


@pytest.fixture
def private_warehouse(tmp_path):
    """A private, migrated embedded PostgreSQL (restarting or killing it disturbs no
    other test); stopped at the end."""
    from conftest import free_port
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres
    from crm_pipeline.warehouse.migrate import migrate

    pg = EmbeddedPostgres(tmp_path / "pg_home", free_port())
    migrate(pg.ensure_running())
    yield pg
    pg.stop()


def slow_wal_writer(url: str, async_commit: bool) -> None:
    """WAL writer flushing every 10 s (an asynchronous commit stays in memory until a
    crash), optionally asynchronous commits as a DBA may set them; what is there so far
    is checkpointed, so only the writes that follow are at stake."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter system set wal_writer_delay = '10s'")
        if async_commit:
            conn.execute("alter system set synchronous_commit = off")
        conn.execute("select pg_reload_conf()")
        conn.execute("checkpoint")


def test_warehouse_restart_between_steps(sandbox, private_warehouse, monkeypatch):
    """The warehouse restarts between planning and pushing: nothing lost, nothing twice.
    Uses a private embedded PostgreSQL, so restarting it disturbs no other test."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings, reload_settings
    from crm_pipeline.warehouse import connect

    monkeypatch.setenv("CRM_NOW", "2026-11-21T10:30:00+08:00")
    reload_settings()
    pg = private_warehouse
    url = pg.url()
    cfg = get_settings().config_dir
    now = datetime(2026, 11, 21, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    proposals = [Proposal(Candidate(f"campaign:t:C{i}:email", "campaign", "email", f"C{i}", f"c{i}@example.com",
                                    now, campaign="t"), "campaign_vip_thanks", {"name": f"客户{i}", "tier_name": "金卡"})
                 for i in range(250)]
    with connect(url) as conn:
        plan(conn, proposals, load_policy(cfg / "policy.yml"), now, MODEL_AS_OF, cfg / "templates", "悦己生活")
    reset(sandbox, messages=True)
    pg.stop()
    url = pg.ensure_running()
    _push(url)
    _push(url)
    assert rows(url, "select count(*) from outreach.message_ledger where status = 'accepted'")[0][0] == 250
    assert len(gateway_messages(sandbox)) == 250


def test_claim_survives_a_database_crash_right_after_the_send(sandbox, private_warehouse, monkeypatch):
    """The database crashes after the gateway accepted a batch and before anything else
    reached the WAL. The server here is set as a DBA may set one, to commit
    asynchronously (synchronous_commit=off), with its WAL writer waiting 10 s between
    flushes, so only a claim committed synchronously survives the crash; a lost claim
    would leave the row 'pending' and the next run would send it again (the stale claim
    must be reconciled instead)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    import psycopg
    from crm_pipeline.outreach import push as push_mod
    from crm_pipeline.outreach.gateways import build_gateways, load_gateway_config
    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings, reload_settings
    from crm_pipeline.warehouse import connect

    monkeypatch.setenv("CRM_NOW", "2026-11-21T10:30:00+08:00")
    reload_settings()
    pg = private_warehouse
    url = pg.url()
    slow_wal_writer(url, async_commit=True)
    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")
    now = datetime(2026, 11, 21, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    proposal = Proposal(Candidate("campaign:t:C1:sms", "campaign", "sms", "C1", "+8613900000001", now,
                                  campaign="t"), "campaign_vip_thanks", {"name": "客户1", "tier_name": "金卡"})
    with connect(url) as conn:
        plan(conn, [proposal], policy, now, MODEL_AS_OF, cfg / "templates", "悦己生活")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("checkpoint")  # the planned row is on disk; only the push's writes are at stake
    reset(sandbox, messages=True)

    gateways = build_gateways(load_gateway_config(cfg / "gateways.yml"))
    sms = gateways["sms"]  # Aliyun answers reconciliation queries
    real_send = sms.send

    def send_then_crash(batch_id, messages):
        outcome = real_send(batch_id, messages)
        pg.stop(immediate=True)
        return outcome

    monkeypatch.setattr(sms, "send", send_then_crash)
    with pytest.raises(psycopg.OperationalError), psycopg.connect(url) as conn:
        push_mod.push(conn, gateways, policy, now)
    assert len(gateway_messages(sandbox)) == 1

    url = pg.ensure_running()
    assert rows(url, "select status from outreach.message_ledger") == [("sending",)]
    monkeypatch.setattr(sms, "send", real_send)
    monkeypatch.setattr(push_mod, "STALE_SENDING", timedelta(0))
    with psycopg.connect(url) as conn:
        stats = push_mod.push(conn, gateways, policy, now)
    assert stats.reconciled_accepted == 1 and stats.accepted == 0
    assert rows(url, "select status from outreach.message_ledger") == [("accepted",)]
    assert len(gateway_messages(sandbox)) == 1


@pytest.mark.parametrize("server", ["embedded_default", "async_commit_server"])
def test_a_recorded_opt_out_survives_a_database_crash(server, private_warehouse, monkeypatch):
    """`crm optout add` says the opt-out is recorded; a database crash a moment later must
    not take it back (nothing reruns it, and the next push would reach the customer).
    On the embedded server as started (synchronous commits), and on one set, as a DBA
    may set it, to commit asynchronously. The WAL writer is slowed to 10 s so an
    asynchronous commit would still be in memory when the server is killed."""
    from crm_pipeline import cli
    from crm_pipeline.settings import reload_settings

    pg = private_warehouse
    url = pg.url()
    slow_wal_writer(url, async_commit=server == "async_commit_server")
    monkeypatch.setenv("CRM_WAREHOUSE_URL", url)
    reload_settings()
    try:
        assert cli.main(["optout", "add", "--channel", "sms", "--phone", "13800001234"]) == 0
        pg.stop(immediate=True)
        url = pg.ensure_running()
        assert rows(url, "select channel, contact from outreach.optouts") == [("sms", "+8613800001234")]
    finally:
        monkeypatch.undo()  # later tests must not find this private server in the settings
        reload_settings()


def test_processes_starting_a_new_embedded_warehouse_at_once_share_one_cluster(tmp_path):
    """Two test workers (or a CLI beside a task) on a fresh checkout both find no cluster
    and start one: the first initialises and starts it, the other waits for it, and both
    get the same working URL. Unlocked, the second initdb removes the first's files and
    fails with 'could not create file pg_wal/...'."""
    from conftest import free_port
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres

    home, port = tmp_path / "pg_home", free_port()
    code = ("import sys; from pathlib import Path; from crm_pipeline.warehouse.embedded import EmbeddedPostgres;"
            f"print(EmbeddedPostgres(Path({str(home)!r}), {port}).ensure_running())")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    try:
        outcomes = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _out, err in outcomes]
        urls = {out.strip().splitlines()[-1] for out, _err in outcomes}
        assert len(urls) == 1
        assert rows(urls.pop(), "select current_database()") == [("crm",)]
    finally:
        EmbeddedPostgres(home, port).stop()
