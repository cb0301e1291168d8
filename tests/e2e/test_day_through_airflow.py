"""A production morning through Airflow (issue 30, "a day that runs itself"): the nightly DAG
at 02:30, then the day's DAGs at their scheduled times — `crm_intraday` at 08:00, `crm_push`
at 09:00, 10:00 and 10:30 — each as `airflow dags test` with the pipeline clock (and the
sandbox's) at that moment. No one runs `crm push`: every marketing message due by 10:30 is
accepted by the sandbox gateway (or cancelled with a recorded reason) by 10:30, and none
went out in the night.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import free_port
from helpers import rows

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-20"
DAY = "2026-11-21"
TRANSACTIONAL = ("payment_reminder", "shipment_notice")


@pytest.fixture(scope="module")
def morning(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("day_home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_TARGET_PATH", "DBT_LOG_PATH", "CRM_NOW",
                                                                      "AIRFLOW_HOME", "AIRFLOW__"))}
    env.update({
        "CRM_HOME": str(home / "crm"), "CRM_OUT_DIR": str(home / "out"), "CRM_INTAKE_DIR": str(home / "inbox"),
        "CRM_WAREHOUSE_URL": make_database("day", migrated=False),
        "CRM_SANDBOX_PORT": str(port), "CRM_SANDBOX_URL": f"http://127.0.0.1:{port}",
        "CRM_SANDBOX_PERSONS": "300", "CRM_DEMO_DATE": AS_OF, "CRM_SANDBOX_THROTTLE": "0",
    })
    url, sandbox = env["CRM_WAREHOUSE_URL"], env["CRM_SANDBOX_URL"]

    def crm(args, now):
        proc = subprocess.run([sys.executable, "-m", "crm_pipeline.cli", *args], env={**env, "CRM_NOW": now},
                              cwd=ROOT, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:])
        return proc

    def dag_test(dag_id, moment, logical=None):
        requests.post(sandbox + "/_control/clock", json={"now": moment}, timeout=5).raise_for_status()
        crm(["airflow", "--", "dags", "test", dag_id, logical or moment], moment)
        with sqlite3.connect(home / "crm" / "airflow" / "airflow.db") as conn:
            state = conn.execute("select state from dag_run where dag_id = ? order by id desc limit 1",
                                 (dag_id,)).fetchone()
        assert state == ("success",), f"{dag_id} at {moment}: {state}"

    def marketing(where):
        """Marketing messages to recipients in Beijing time (a shop abroad has its own day)."""
        return rows(url, "select count(*) from outreach.message_ledger where message_type <> all(%s)"
                         f" and timezone = 'Asia/Shanghai' and {where}", list(TRANSACTIONAL))[0][0]

    def received():
        return requests.get(sandbox + "/_control/messages", timeout=5).json()["messages"]

    crm(["sandbox", "start"], f"{DAY}T02:30:00+08:00")
    try:
        seen = {}
        dag_test("crm_nightly", f"{DAY}T02:30:00+08:00", logical=f"{AS_OF}T02:30:00+08:00")
        seen["night"] = {"planned": marketing("true"), "accepted": marketing("status = 'accepted'")}
        dag_test("crm_intraday", f"{DAY}T08:00:00+08:00")
        for moment in ("09:00", "10:00", "10:30"):
            dag_test("crm_push", f"{DAY}T{moment}:00+08:00")
        seen["morning"] = {
            "due": marketing(f"send_after <= '{DAY}T10:30:00+08:00'"),
            "accepted": marketing("status = 'accepted'"),
            "left": marketing(f"send_after <= '{DAY}T10:30:00+08:00' and status in ('pending', 'sending', 'unknown')"),
            "cancelled_without_reason": rows(url, """
                select count(*) from outreach.message_ledger l where l.status = 'cancelled' and not exists
                (select 1 from outreach.suppressions s where s.idempotency_key = l.idempotency_key)""")[0][0],
            "ledger_accepted": rows(url, "select count(*) from outreach.message_ledger where status = 'accepted'")[0][0],
            "received": received(),
        }
        yield seen, url
    finally:
        subprocess.run([sys.executable, "-m", "crm_pipeline.cli", "sandbox", "stop"], env=env, cwd=ROOT,
                       capture_output=True, timeout=60)


def test_nothing_goes_out_in_the_night_and_the_morning_sends_itself(morning):
    seen, url = morning
    night, day = seen["night"], seen["morning"]
    assert night["planned"] > 0
    # 02:30 in Beijing is quiet hours: the nightly plans the day's marketing and sends none of it
    assert night["accepted"] == 0
    # by 10:30, with no one at a keyboard, every marketing message due by then is out
    assert day["due"] > 0 and day["accepted"] > 0
    assert day["left"] == 0, "a marketing message due by 10:30 is still waiting"
    assert day["cancelled_without_reason"] == 0
    # exactly once: the gateways received what the ledger says was accepted
    assert len(day["received"]) == day["ledger_accepted"]
