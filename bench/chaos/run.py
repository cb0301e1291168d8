"""bench/chaos: randomized whole-pipeline fault runs.

Each trial disturbs one stage of a real run and then re-runs it undisturbed:
* load  — random platform faults (throttle, 5xx, timeout, truncated body,
  duplicate record, record updated while paging), the extracting process
  killed at a random moment, and sometimes the warehouse restarted (embedded
  warehouse only) before the re-run;
* push  — random gateway faults (5xx, throttling, accepted-then-timeout), the
  pushing process killed at a random moment, then pushes until done;
* midnight — the same, for recipients abroad (London, in their daytime) with the
  batch claimed at 23:55 Beijing time and the re-runs after midnight: reconciliation
  must ask the gateway about the claim's day;
* frozen — the pushing process stopped (SIGSTOP) once it holds claimed rows, other
  pushes run 11 minutes later on the clock, then the frozen one resumes (an Airflow
  retry started while the old task still runs): its fencing token must stop it;
* dbt   — every 25th trial: `dbt build --full-refresh` killed at a random moment,
  then the transform re-run.
A trial is clean when the raw tables equal an undisturbed run's, the marts equal
the undisturbed marts, and every due message was accepted exactly once by the
gateway. Env: BENCH_CHAOS_RUNS (default 200), BENCH_CHAOS_SEED (default 7).
Prints `chaos_runs_clean=N/M` last.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import ROOT, fresh_database, sandbox_process, server_url  # noqa: E402

WORKER = Path(__file__).with_name("worker.py")
AS_OF = date(2026, 11, 20)
NOW = "2026-11-21T10:30:00+08:00"
RAW = ("taobao_trades", "jd_orders", "shopify_orders", "woocommerce_orders", "youzan_orders")
MARTS = {"marts.fct_orders": "order_key", "marts.dim_customers": "customer_id", "marts.customer_rfm": "customer_id",
         "marts.customer_lifecycle": "customer_id", "marts.customer_identities": "identity_key"}
LOAD_FAULTS = ("throttle", "server_error", "timeout", "truncated", "duplicate")
PLATFORMS = {"taobao": "tmall_flagship", "jd": "jd_pop", "shopify": "shopify_global", "woocommerce": "woo_site",
             "youzan": "youzan_wx"}


def digest(url: str, table: str, key: str, exclude=("batch_id", "loaded_at")) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import table_digest

    return table_digest(url, table, key, exclude=exclude)


def clone(source: str, name: str) -> str:
    import psycopg

    base = server_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s",
                     (source.rsplit("/", 1)[1],))
        conn.execute(f'create database "{name}" template "{source.rsplit("/", 1)[1]}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


MIDNIGHT = ("2026-11-21T23:55:00+08:00", "2026-11-22T00:20:00+08:00")  # claim, then the re-runs
FROZEN_LATER = "2026-11-21T10:41:00+08:00"  # past the 10-minute stale window of a 10:30 claim


def child(step: str, url: str, sandbox: str, now: str = NOW) -> subprocess.Popen:
    env = {**os.environ, "CRM_WAREHOUSE_URL": url, "CRM_SANDBOX_URL": sandbox, "CRM_NOW": now}
    return subprocess.Popen([sys.executable, str(WORKER), step, url], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def run_disturbed(proc: subprocess.Popen, kill_after: float | None) -> str:
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 300)
        return f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed after {kill_after:.2f}s"


def restart_warehouse() -> bool:
    if os.environ.get("CRM_WAREHOUSE_URL"):
        return False
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(get_settings().home, get_settings().embedded_pg_port)
    pg.stop()
    pg.ensure_running()
    return True


def main() -> int:
    import psycopg
    import requests
    from crm_pipeline import pipeline

    runs = int(os.environ.get("BENCH_CHAOS_RUNS", "200"))
    rng = random.Random(int(os.environ.get("BENCH_CHAOS_SEED", "7")))
    os.environ["CRM_NOW"] = NOW
    os.environ.setdefault("DBT_TARGET_PATH", f"/tmp/crm_bench_chaos_target_{os.getpid()}")
    sys.path.insert(0, str(WORKER.parent))
    import worker

    with sandbox_process(persons=300, clean=False) as sb:
        def ctl(path, body):
            requests.post(sb + "/_control/" + path, json=body, timeout=5).raise_for_status()

        def messages():
            return requests.get(sb + "/_control/messages", timeout=10).json()["messages"]

        # undisturbed references
        base = fresh_database("crm_chaos_base")
        worker.extract_all(base)
        raw_ref = {t: digest(base, f"raw.{t}", "shop_id, order_id") for t in RAW}
        modeled = fresh_database("crm_chaos_modeled")
        for shop_id in pipeline.api_shop_ids():
            pipeline.extract_shop(shop_id, AS_OF, url=modeled)
        pipeline.transform(AS_OF, url=modeled)
        marts_ref = {t: digest(modeled, t, k, exclude=("loaded_at", "modeled_at")) for t, k in MARTS.items()}
        planned = clone(modeled, "crm_chaos_planned")
        pipeline.plan_outreach(AS_OF, planned)
        with psycopg.connect(planned) as conn:
            due = conn.execute("select count(*) from outreach.message_ledger where send_after <= %s::timestamptz",
                               (NOW,)).fetchone()[0]
        print(f"references ready: {due} messages due", flush=True)

        def pushes_until_done(url: str, now: str) -> None:
            from crm_pipeline.outreach import push as push_mod

            push_mod.STALE_SENDING = timedelta(0)  # the re-run comes after the stale window
            os.environ["CRM_NOW"] = now
            try:
                for _ in range(4):
                    pipeline.push_messages(AS_OF, url)
            finally:
                os.environ["CRM_NOW"] = NOW
                push_mod.STALE_SENDING = timedelta(minutes=10)

        def exactly_once(url: str) -> tuple[bool, str]:
            """Every due row accepted (or expired, with its reason) and each at the gateway once."""
            with psycopg.connect(url) as conn:
                accepted, left = conn.execute(
                    "select count(*) filter (where status = 'accepted'),"
                    " count(*) filter (where status in ('pending', 'sending', 'unknown')"
                    "                  and send_after <= %s::timestamptz and expires_at > %s::timestamptz)"
                    " from outreach.message_ledger", (os.environ["CRM_NOW"], os.environ["CRM_NOW"])).fetchone()
            got = messages()
            keys = Counter((m["gateway"], m["out_id"], m["to"]) for m in got)
            return (accepted == len(got) and left == 0 and max(keys.values(), default=1) == 1,
                    f", accepted {accepted}, left {left}, gateway {len(got)}")

        clean, failures = 0, Counter()
        t0 = time.time()
        for trial in range(1, runs + 1):
            stage = "dbt" if trial % 25 == 0 else rng.choice(("load", "push", "push", "midnight", "frozen"))
            ok, note = True, ""
            ctl("reset", {"throttle": False, "messages": True})
            if stage == "load":
                url = fresh_database("crm_chaos_trial")
                for _ in range(rng.randint(1, 3)):
                    platform = rng.choice(list(PLATFORMS))
                    kind = rng.choice(LOAD_FAULTS)
                    ctl("faults", {"target": platform, "kind": kind, "times": rng.randint(1, 2),
                                   "after": rng.randint(0, 30), "shop": PLATFORMS[platform],
                                   "params": {"delay": 1.5, "ban_seconds": 0}})
                kill_after = rng.uniform(0.1, 2.0) if rng.random() < 0.7 else None
                note = run_disturbed(child("extract", url, sb), kill_after)
                if rng.random() < 0.1 and restart_warehouse():
                    note += ", warehouse restarted"
                ctl("reset", {"throttle": False})
                worker.extract_all(url)
                got = {t: digest(url, f"raw.{t}", "shop_id, order_id") for t in RAW}
                ok = got == raw_ref
            elif stage == "push":
                url = clone(planned, "crm_chaos_trial")
                for _ in range(rng.randint(1, 3)):
                    ctl("faults", {"target": rng.choice(("aliyun", "sendgrid")),
                                   "kind": rng.choice(("server_error", "throttle", "accept_then_timeout")),
                                   "times": 1, "after": rng.randint(0, 3), "params": {"delay": 12}})
                kill_after = rng.uniform(0.2, 3.0) if rng.random() < 0.7 else None
                note = run_disturbed(child("push", url, sb), kill_after)
                ctl("reset", {"throttle": False})
                from crm_pipeline.outreach import push as push_mod

                push_mod.STALE_SENDING = timedelta(0)  # the re-run comes after the stale window
                for _ in range(4):
                    pipeline.push_messages(AS_OF, url)
                with psycopg.connect(url) as conn:
                    accepted = conn.execute("select count(*) from outreach.message_ledger"
                                            " where status = 'accepted'").fetchone()[0]
                got = messages()
                keys = Counter((m["gateway"], m["out_id"], m["to"]) for m in got)
                ok = accepted == due == len(got) and max(keys.values(), default=1) == 1
                note += f", accepted {accepted}/{due}, gateway {len(got)}"
            elif stage == "midnight":
                url = clone(planned, "crm_chaos_trial")
                with psycopg.connect(url) as conn:  # recipients in London: 23:55 in Beijing is their afternoon
                    conn.execute("update outreach.message_ledger set timezone = 'Europe/London'")
                ctl("clock", {"now": MIDNIGHT[0]})
                for _ in range(rng.randint(1, 2)):
                    ctl("faults", {"target": "aliyun", "kind": rng.choice(("server_error", "accept_then_timeout")),
                                   "times": 1, "after": rng.randint(0, 3), "params": {"delay": 12}})
                note = run_disturbed(child("push", url, sb, MIDNIGHT[0]), rng.uniform(0.2, 3.0))
                ctl("reset", {"throttle": False})
                ctl("clock", {"now": MIDNIGHT[1]})
                pushes_until_done(url, MIDNIGHT[1])
                os.environ["CRM_NOW"] = MIDNIGHT[1]
                ok, counts = exactly_once(url)
                os.environ["CRM_NOW"] = NOW
                ctl("clock", {"now": None})
                note += counts
            elif stage == "frozen":
                url = clone(planned, "crm_chaos_trial")
                proc = child("push", url, sb)
                deadline = time.time() + 30
                while time.time() < deadline:  # freeze it once it holds claimed rows
                    with psycopg.connect(url) as conn:
                        if conn.execute("select count(*) from outreach.message_ledger"
                                        " where status = 'sending'").fetchone()[0]:
                            break
                    time.sleep(rng.uniform(0.0, 0.05))
                os.killpg(proc.pid, signal.SIGSTOP)
                pushes_until_done(url, FROZEN_LATER)
                os.killpg(proc.pid, signal.SIGCONT)
                note = run_disturbed(proc, 120)
                pushes_until_done(url, FROZEN_LATER)
                ok, counts = exactly_once(url)
                note = f"frozen then resumed: {note}{counts}"
            else:
                url = clone(modeled, "crm_chaos_trial")
                env = {**os.environ, "CRM_WAREHOUSE_URL": url}
                code = ("from datetime import date; from crm_pipeline.transform.dbt import run_dbt; "
                        "run_dbt(['build', '--full-refresh'], date(2026, 11, 20))")
                proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
                note = run_disturbed(proc, rng.uniform(5, 40))
                pipeline.transform(AS_OF, url=url)
                ok = {t: digest(url, t, k, exclude=("loaded_at", "modeled_at")) for t, k in MARTS.items()} == marts_ref
            clean += ok
            if not ok:
                failures[stage] += 1
            print(f"trial {trial:3d} {stage:4s} {'clean' if ok else 'DIRTY'}  {note}", flush=True)
        print(f"{runs} trials in {time.time() - t0:.0f}s; dirty by stage: {dict(failures) or 'none'}")
    print(f"chaos_runs_clean={clean}/{runs}")
    return 0 if clean == runs else 1


if __name__ == "__main__":
    sys.exit(main())
