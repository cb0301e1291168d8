"""The real nightly DAG through Airflow (`crm demo` = `airflow dags test crm_nightly`)
against real PostgreSQL and the sandbox servers in their own process, then a
rerun of the same business day by hand (`crm run`, the same step functions with
one `dbt build` instead of one Cosmos task per model).

The rerun must change no table, list or ledger row, and the gateways must
receive nothing new: the day is idempotent, and the DAG's per-model dbt runs
leave exactly what a single build leaves (DECISIONLOG D27).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import free_port
from helpers import rows, table_digest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-20"
TABLES = {
    "raw.taobao_trades": "shop_id, order_id", "raw.jd_orders": "shop_id, order_id",
    "raw.shopify_orders": "shop_id, order_id", "raw.woocommerce_orders": "shop_id, order_id",
    "raw.youzan_orders": "shop_id, order_id", "raw.intake_orders": "shop_id, order_id",
    "raw.quarantine": "platform, shop_id, payload_hash, reason",
    "marts.fct_orders": "order_key", "marts.dim_customers": "customer_id", "marts.customer_rfm": "customer_id",
    "marts.customer_lifecycle": "customer_id", "marts.customer_lifecycle_history": "lifecycle_key",
    "marts.customer_tiers": "customer_id", "marts.kpi_daily": "kpi_date", "marts.customer_identities": "identity_key",
    "outreach.message_ledger": "idempotency_key", "outreach.suppressions": "idempotency_key, rule",
    "outreach.call_list_entries": "list_date, customer_id, call_round",
    "clv.customer_scores": "customer_id", "clv.backtests": "as_of_date",
}
# columns that record *when* a row was written, not what it says
VOLATILE = ("loaded_at", "batch_id", "planned_at", "updated_at", "created_at", "sent_at", "gateway_ref",
            "quarantined_at", "quarantine_id", "dbt_updated_at", "snapshot_at", "modeled_at", "scored_at",
            "computed_at")


@pytest.fixture(scope="module")
def demo_env(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e_home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_TARGET_PATH", "DBT_LOG_PATH", "CRM_NOW",
                                                                      "AIRFLOW_HOME", "AIRFLOW__"))}
    env.update({
        "CRM_HOME": str(home / "crm"),
        "CRM_OUT_DIR": str(home / "out"),
        "CRM_INTAKE_DIR": str(home / "inbox"),
        "CRM_WAREHOUSE_URL": make_database("e2e", migrated=False),
        "CRM_SANDBOX_PORT": str(port),
        "CRM_SANDBOX_URL": f"http://127.0.0.1:{port}",
        "CRM_SANDBOX_PERSONS": os.environ.get("CRM_E2E_PERSONS", "500"),
        "CRM_DEMO_DATE": AS_OF,
        "CRM_SANDBOX_THROTTLE": "0",  # rate limits are covered by the connector tests
    })
    return env, home


def run_demo(env, home, n: int) -> dict:
    out = home / f"summary_{n}.json"
    proc = subprocess.run([sys.executable, "-m", "crm_pipeline.cli", "demo", "--json", str(out)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:])
    return json.loads(out.read_text())


def rerun_by_hand(env, home) -> dict:
    """`crm run` for the same day, at the clock `crm demo` pinned (the day after, 10:30)."""
    from crm_pipeline.cli import demo_clock

    out = home / "summary_rerun.json"
    env = {**env, "CRM_NOW": demo_clock(date.fromisoformat(AS_OF))}
    try:
        proc = subprocess.run([sys.executable, "-m", "crm_pipeline.cli", "run", "--date", AS_OF, "--sandbox",
                               "--json", str(out)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        subprocess.run([sys.executable, "-m", "crm_pipeline.cli", "sandbox", "stop"], env=env, cwd=ROOT,
                       capture_output=True, timeout=60)
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:])
    return json.loads(out.read_text())


def snapshot(url: str) -> dict[str, str]:
    return {t: table_digest(url, t, key, exclude=VOLATILE) for t, key in TABLES.items()}


@pytest.fixture(scope="module")
def two_runs(demo_env):
    env, home = demo_env
    first = run_demo(env, home, 1)
    after_first = snapshot(env["CRM_WAREHOUSE_URL"])
    files_first = sorted(p.relative_to(home / "out").as_posix() for p in (home / "out").rglob("*") if p.is_file())
    edited = edit_a_call_sheet(home / "out" / "2026-11-21")
    second = rerun_by_hand(env, home)
    after_second = snapshot(env["CRM_WAREHOUSE_URL"])
    return first, second, after_first, after_second, files_first, edited


def edit_a_call_sheet(folder: Path) -> dict[Path, bytes]:
    """An agent fills in an outcome in their sheet the morning after (the files as they are then)."""
    from openpyxl import load_workbook

    sheet = sorted(folder.glob("call_list_*.xlsx"))[0]
    wb = load_workbook(sheet)
    ws = wb.worksheets[0]
    col = {str(c.value): c.column for c in ws[2] if c.value}
    ws.cell(3, col["接通情况"], "已接通")
    ws.cell(3, col["备注"], "客户说包装有点破")
    wb.save(sheet)
    return {p: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_first_run_lands_models_and_sends(two_runs, demo_env):
    first, _, _, _, files, _ = two_runs
    env, home = demo_env
    assert all(first["raw_landed_by_platform"][p] > 0 for p in ("taobao", "jd", "shopify", "woocommerce", "youzan", "intake"))
    assert first["customers"] > 0 and first["customers"] < first["identity_nodes"], "buyers were unified"
    assert sum(first["rfm_segments"].values()) > 0 and first["rfm_method"] in ("quintile", "fixed")
    assert sum(first["lifecycle_stages"].values()) == first["customers"]
    assert first["ledger"].get("accepted", 0) > 0
    assert first["gateway_messages_received"] == first["ledger"]["accepted"]
    assert "2026-11-21/call_list.xlsx" in files and "2026-11-21/call_list.csv" in files
    assert "2026-11-20/report.html" in files
    assert "docs/dbt/static_index.html" in files and "docs/gx/index.html" in files
    # the docs open offline: no script or style from the network; out/docs/dbt holds the page only
    from crm_pipeline.quality.data_docs import external_assets

    for page in (home / "out" / "docs" / "gx").rglob("*.html"):
        assert external_assets(page.read_text(encoding="utf-8")) == [], page
    assert [p for p in files if p.startswith("docs/dbt/")] == ["docs/dbt/static_index.html"]
    dbt_page = (home / "out" / "docs" / "dbt" / "static_index.html").read_text(encoding="utf-8")
    assert "the customer pool of a seller on many platforms" in dbt_page  # our __overview__, not "Welcome!"
    assert all(f"exposure.crm.{e}" in dbt_page for e in ("call_lists", "daily_report", "campaigns"))
    url = env["CRM_WAREHOUSE_URL"]
    # the raw quality gate ran before anything was modelled or sent
    steps = [r[0] for r in rows(url, "select step from ops.run_log where as_of_date = %s order by recorded_at", AS_OF)]
    assert steps.index("quality:raw_landing") < steps.index("outreach:plan")
    # every shop was read to the end of the day: a full night, nothing held (D45)
    assert steps.index("check:freshness") < steps.index("quality:raw_landing")
    assert first["stale_shops"] == [] and "shop_data_stale" not in first["suppressed"]
    assert rows(url, "select count(*) from ops.load_batches where status <> 'succeeded'")[0][0] == 0
    # the report's quarantine table is by kind of reason (D40), the same groups `crm quarantine list` shows
    from html import escape

    from crm_pipeline.load.quarantine import summarize
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        groups = summarize(conn)
    report = (home / "out" / "2026-11-20" / "report.html").read_text(encoding="utf-8")
    assert groups and all(f"<td>{escape(g.kind)}</td>" in report for g in groups[:10])
    assert "部分店铺没有读到当天结束" not in report
    # issue 33: the CLV step ran after the marts, marts.customer_clv answers, the report shows the backtest
    assert steps.index("clv") < steps.index("outreach:plan")
    clv = rows(url, "select count(*), count(distinct as_of_date) from marts.customer_clv")[0]
    paying = rows(url, "select count(distinct customer_id) from marts.fct_orders where is_paid"
                       " and paid_date <= %s", AS_OF)[0][0]
    assert clv == (paying, 1) and "客户终身价值" in report
    from crm_pipeline.pipeline import api_shop_ids

    assert all(f"<tr><td>{shop_id}</td>" in report and "<td>否</td>" not in report for shop_id in api_shop_ids())
    # a first night says so, in one language, without internal codes in the titles
    assert "第一次运行" in report and "none →" not in report and "+0.0 个百分点" not in report
    assert not re.search(r"<h[12][^>]*>[^<]*\b[RD][0-9]{1,2}\b", report)
    # the cohort table: the run's month is the newest cohort row (its new customers, no months after yet)
    newest = rows(url, "select sum(cohort_customers) from marts.kpi_cohort_retention"
                       " where cohort_month = %s and months_since_first = 0", AS_OF[:7] + "-01")[0][0]
    assert newest and f"<tr><td>{AS_OF[:7]}</td><td class='num'>{newest}</td>" in report


def test_second_run_changes_nothing(two_runs):
    first, second, after_first, after_second, _, edited = two_runs
    # the call sheets are the agents' files: the rerun left the edited one (and every other) as it was
    assert {p: p.read_bytes() for p in edited} == edited
    changed = [t for t in after_first if after_first[t] != after_second[t]]
    assert not changed, f"a rerun of {AS_OF} by hand after the DAG run changed {changed}"
    assert second["gateway_messages_received"] == first["gateway_messages_received"], "nothing is sent twice"
    for key in ("raw_landed_by_platform", "quarantined", "quarantined_open", "customers", "rfm_segments", "lifecycle_stages", "ledger",
                "call_list_entries"):
        assert second[key] == first[key], key
