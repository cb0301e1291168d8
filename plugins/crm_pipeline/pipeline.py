"""The nightly pipeline's steps as plain functions.

Airflow tasks (orchestration/) and the ``crm`` command call these; none of them
imports Airflow. Each step is idempotent for a given business day (as-of date).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

from crm_pipeline.pii import get_logger
from crm_pipeline.settings import get_settings

log = get_logger(__name__)


def record(as_of: date, step: str, facts: dict, url: str | None = None) -> None:
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        conn.execute(
            "insert into ops.run_log (as_of_date, step, facts) values (%s, %s, %s)"
            " on conflict (as_of_date, step) do update set facts = excluded.facts, recorded_at = now()",
            (as_of, step, json.dumps(facts, default=str, ensure_ascii=False)),
        )


def as_of_from_logical(logical_date: datetime | None, override: str | None = None,
                       run_after: datetime | None = None) -> date:
    """The business day a run closes: an explicit override, else the local date of the logical date
    (of ``run_after`` for a run without one), but never a day that is not over yet by the pipeline
    clock: a run triggered by hand (the UI's ▶, `airflow dags trigger`) at 15:00 has a logical date
    of today, and closes yesterday, the last day it can close."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from crm_pipeline.clock import now

    if override:
        return date.fromisoformat(str(override)[:10])
    moment = logical_date or run_after
    if moment is None:
        raise ValueError("no logical date and no as_of_date given")
    tz = ZoneInfo(get_settings().timezone)
    day = moment.astimezone(tz).date()
    last_over = now().astimezone(tz).date() - timedelta(days=1)
    if day > last_over:
        log.info("business day %s is not over yet: this run closes %s, the last one that is (as_of_date chooses)",
                 day, last_over)
        return last_over
    return day


def prepare(url: str | None = None) -> dict:
    """Make sure the warehouse schemas exist (idempotent)."""
    from crm_pipeline.warehouse.migrate import migrate

    applied = migrate(url)
    return {"migrations_applied": applied}


def api_shop_ids() -> list[str]:
    from crm_pipeline.config import load_shops
    from crm_pipeline.platforms import PLATFORMS

    return [s.shop_id for s in load_shops(resolve=False) if PLATFORMS[s.platform].kind == "api"]


def intake_shop_ids() -> list[str]:
    from crm_pipeline.config import load_shops

    return [s.shop_id for s in load_shops(resolve=False) if s.platform == "intake"]


def extract_shop(shop_id: str, as_of: date, mode: str = "nightly", start: date | None = None,
                 end: date | None = None, url: str | None = None) -> dict:
    from crm_pipeline.clock import now
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import run_extract

    shop = get_shop(shop_id)
    result = run_extract(shop, mode=mode, as_of=as_of, start_date=start, end_date=end, url=url,
                         now=now() if mode == "intraday" else None)
    facts = {"shop_id": shop_id, "platform": shop.platform, "mode": mode, "batch_id": result.batch_id,
             "pages": result.pages, "requests": result.requests, "passes_retried": result.passes_retried,
             **result.counts.as_dict()}
    record(as_of, f"extract:{shop_id}:{mode}", facts, url)
    return facts


def intake_shop(shop_id: str, as_of: date, url: str | None = None) -> dict:
    """Import new spreadsheets from the inbox folder of an intake shop."""
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import IntakeRejected, pending_intake_files, run_intake

    shop = get_shop(shop_id)
    files = pending_intake_files(shop, get_settings().intake_dir, url)
    totals = {"shop_id": shop_id, "files": [], "received": 0, "landed": 0, "quarantined": 0, "rejected": []}
    rejected: list[IntakeRejected] = []
    for path in files:
        log.info("intake %s: %s", shop_id, path.name)
        try:
            result = run_intake(path, shop, url=url)
        except IntakeRejected as exc:  # one bad file does not keep the others out; it stays pending (D45)
            rejected.append(exc)
            totals["rejected"].append(path.name)
            continue
        totals["files"].append(path.name)
        for k in ("received", "landed", "quarantined"):
            totals[k] += getattr(result.counts, k)
    record(as_of, f"intake:{shop_id}", totals, url)
    if rejected:
        raise IntakeRejected("intake", shop_id, f"{len(rejected)} of {len(files)} file(s) refused "
                                                f"({', '.join(totals['rejected'])}), the others imported:\n  "
                                                + "\n  ".join(e.message for e in rejected))
    return totals


def check_extraction(as_of: date, url: str | None = None) -> dict:
    """After the extract step: which shops are not current for the day (D45).

    Recorded in ops.run_log (step ``freshness.STEP``) for the report and the end of
    the night; raises StaleShopsError when the night must stop (a stale shop whose policy,
    its own ``on_failure`` or CRM_ON_SHOP_FAILURE, is ``stop``; or no API shop current)."""
    from crm_pipeline.extract.freshness import STEP, gate, on_shop_failure, shop_freshness
    from crm_pipeline.warehouse import connect

    policy = on_shop_failure()
    with connect(url) as conn:
        freshness = shop_freshness(conn, as_of)
    stale = [f for f in freshness if f.stale]
    facts = {"policy": policy, "shops": len(freshness), "stale": [f.as_fact() for f in stale]}
    record(as_of, STEP, facts, url)
    for f in stale:
        log.warning("shop not current for %s: %s", as_of, f.describe())
    gate(freshness, policy)
    return facts


def finish_night(as_of: date, url: str | None = None) -> dict:
    """The last step: a night that went on without some shops ends failed, naming them (D45)."""
    from crm_pipeline.extract.freshness import StaleShopsError, recorded_stale
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        stale = recorded_stale(conn, as_of)
    if stale:
        lines = "\n  ".join(f["describe"] for f in stale)
        raise StaleShopsError(
            f"business day {as_of} ran without {len(stale)} shop(s); their messages that missing data could "
            f"contradict were held (outreach.suppressions rule shop_data_stale). Fix the cause, then rerun the "
            f"day: clear the failed extract task(s) with their downstream in Airflow, or `crm run --date {as_of}`:"
            f"\n  {lines}", stale)
    return {"stale": 0}


def transform(as_of: date, url: str | None = None, select: str | None = None, full_refresh: bool = False) -> None:
    """dbt seed + build (outside Airflow; the DAG renders the same project with Cosmos)."""
    from crm_pipeline.transform.dbt import run_dbt
    from crm_pipeline.warehouse import connect
    from crm_pipeline.warehouse.roles import refresh_masked_views

    run_dbt(["seed"] + (["--full-refresh"] if full_refresh else []), as_of, url)
    args = ["build"] + (["--select", select] if select else []) + (["--full-refresh"] if full_refresh else [])
    def views() -> None:  # dbt's table swaps drop the dependent analyst views
        with connect(url) as conn:
            refresh_masked_views(conn)

    try:
        run_dbt(args, as_of, url)
    except Exception:  # a failed build has rebuilt some marts too; its error is the one to see
        with contextlib.suppress(Exception):
            views()
        raise
    views()


# -- customer lifetime value (issue 33) -------------------------------------------------------
def customer_clv(as_of: date, url: str | None = None) -> dict:
    """Fit BG/NBD + Gamma-Gamma on the marts, score every buyer, backtest (crm_pipeline/clv).

    Recorded in ops.run_log as step ``clv``; the backtest's verdict as ``quality:clv_backtest``
    (a model worse than the naive forecast is a warning in the daily report)."""
    from crm_pipeline.clv.config import load_clv_config
    from crm_pipeline.clv.run import quality_facts, run
    from crm_pipeline.warehouse import connect

    config = load_clv_config()
    if not config.enabled:
        facts = {"enabled": False}
    else:
        with connect(url) as conn:
            facts = run(conn, as_of, config)
        for warning in quality_facts(facts["backtest"])["warnings"]:
            log.warning("quality warning: %s", warning["description"])
        record(as_of, "quality:clv_backtest", quality_facts(facts["backtest"]), url)
    record(as_of, "clv", facts, url)
    return facts
# -- end customer lifetime value ---------------------------------------------------------------


def quality(checkpoint: str, as_of: date, url: str | None = None) -> dict:
    from crm_pipeline.quality.runner import run_checkpoint

    return run_checkpoint(checkpoint, url=url, as_of=as_of).as_facts()


def _outreach_config():
    from crm_pipeline.outreach.gateways import load_gateway_config
    from crm_pipeline.outreach.policy import load_policy

    settings = get_settings()
    return load_policy(settings.config_dir / "policy.yml"), load_gateway_config(settings.config_dir / "gateways.yml")


def plan_outreach(as_of: date, url: str | None = None, only: tuple[str, ...] | None = None) -> dict:
    """Plan every trigger and campaign for the business day into the ledger."""
    from datetime import timedelta

    from crm_pipeline.clock import now
    from crm_pipeline.extract.freshness import HOLD_RULE, shop_freshness
    from crm_pipeline.outreach import campaigns as camp
    from crm_pipeline.outreach import triggers
    from crm_pipeline.outreach.ledger import PlanStats, hold, plan, policy_screen
    from crm_pipeline.outreach.push import OptOutWatch
    from crm_pipeline.warehouse import connect

    settings = get_settings()
    policy, gw_config = _outreach_config()
    moment = now()
    facts: dict = {"now": moment.isoformat(), "triggers": {}, "campaigns": {}}
    with connect(url) as conn:
        # messages still waiting from earlier plans whose customer has opted out since
        # (R13): cancelled here, so the outbound check that follows finds none
        facts["cancelled_opted_out"] = OptOutWatch().cancel_new(conn)
        # shops whose data is not current hold what their missing data could contradict (D45)
        freshness = {f.shop_id: f for f in shop_freshness(
            conn, as_of, due_at=None if only is None else moment - timedelta(minutes=settings.intraday_minutes))
            if f.stale}
        proposed = triggers.propose_all(conn, as_of, moment, settings.timezone, only=only,
                                        stale_shops=sorted(freshness))
        keys = [p.candidate.key for items in proposed.by_kind.values() for p in items]
        facts["held"] = hold(conn, proposed.held, as_of, HOLD_RULE,
                             {s: f"shop data not current (D45): {f.describe()}" for s, f in freshness.items()},
                             keys + [p.candidate.key for p, _ in proposed.held])
        facts["alerts_held"] = proposed.alerts_held
        facts["stale_shops"] = sorted(freshness)
        # every trigger decided together: the policy's one-a-day priority works across kinds (R12)
        kind_of = {p.candidate.key: kind for kind, items in proposed.by_kind.items() for p in items}
        stats = plan(conn, [p for items in proposed.by_kind.values() for p in items], policy, moment, as_of,
                     settings.config_dir / "templates", gw_config.get("shop_name", ""),
                     group_of=lambda p: kind_of[p.candidate.key])
        facts["triggers"] = {kind: stats.groups.get(kind, PlanStats()).as_dict() for kind in proposed.by_kind}
        if only is None:
            send_day = as_of + timedelta(days=1)
            for campaign in camp.load_campaigns(settings.config_dir / "campaigns"):
                entry: dict = {}
                if send_day in campaign.send_dates:
                    items, counts = camp.plan_campaign(conn, campaign, send_day, settings.timezone,
                                                        screen=policy_screen(conn, policy, moment, as_of))
                    entry["audience"] = counts
                    entry["plan"] = plan(conn, items, policy, moment, as_of, settings.config_dir / "templates",
                                         gw_config.get("shop_name", "")).as_dict()
                followups = camp.followup_proposals(conn, campaign, send_day, settings.timezone)
                if followups:
                    entry["followup"] = plan(conn, followups, policy, moment, as_of,
                                             settings.config_dir / "templates", gw_config.get("shop_name", "")).as_dict()
                if entry:
                    facts["campaigns"][campaign.name] = entry
    record(as_of, "outreach:plan" if only is None else "outreach:plan:" + ",".join(only), facts, url)
    return facts


def push_messages(as_of: date, url: str | None = None, message_types: tuple[str, ...] | None = None,
                  step: str | None = None, skip_types: tuple[str, ...] = ()) -> dict:
    """Send every message that is due now (optionally only some types), through the send-time
    re-checks, in each recipient's waking hours; record the push's facts for ``as_of``."""
    import psycopg

    from crm_pipeline.clock import now
    from crm_pipeline.outreach.gateways import build_gateways
    from crm_pipeline.outreach.push import push
    from crm_pipeline.warehouse import warehouse_url

    policy, gw_config = _outreach_config()
    moment = now()
    with psycopg.connect(url or warehouse_url()) as conn:
        stats = push(conn, build_gateways(gw_config), policy, moment, message_types=message_types,
                     skip_types=skip_types)
    facts = {"now": moment.isoformat(), **stats.as_dict()}
    record(as_of, step or ("outreach:push" if not message_types else "outreach:push:intraday"), facts, url)
    return facts


def push_due(url: str | None = None) -> dict:
    """The daytime sender (DAG crm_push, every CRM_PUSH_MINUTES, around the clock): every
    planned message whose time has come goes out in its recipient's waking hours, or
    expires with its reason. Recorded per local day as step ``outreach:push:due``.

    Payment reminders and shipment notices are left to the intraday run, which sends them
    right after it has read the shops and refreshed the orders: their reason (unpaid,
    shipped) is an order's state, and the send-time re-check is only as good as the facts
    it reads (DECISIONLOG D52)."""
    from crm_pipeline.clock import local_today

    return push_messages(local_today(), url, step="outreach:push:due", skip_types=INTRADAY_TYPES)


def call_list(as_of: date, url: str | None = None, reissue: bool = False) -> dict:
    """The day's callback list (R7) for the morning after the business day.

    Issued once: a rerun keeps the list and its files (the agents' work); ``reissue``
    writes a new version beside them (outreach/calls.py)."""
    from datetime import timedelta

    from crm_pipeline.config import load_shops
    from crm_pipeline.outreach.calls import build_call_list, load_call_config
    from crm_pipeline.warehouse import connect

    settings = get_settings()
    list_date = as_of + timedelta(days=1)
    config = load_call_config(settings.config_dir / "agents.yml",
                              {s.shop_id: s.name for s in load_shops(resolve=False)})
    out = settings.out_dir / list_date.isoformat()
    with connect(url) as conn:
        issued, paths = build_call_list(conn, list_date, config, out, reissue=reissue)
    rows = issued.rows or []
    facts = {"list_date": list_date.isoformat(), "version": issued.version, "entries": len(rows),
             "capacity": config.capacity, "issued_now": issued.new,
             "issued_at": issued.issued_at.isoformat() if issued.issued_at else None,
             "by_reason": {}, "paths": {k: str(v) for k, v in paths.items()}}
    for r in rows:
        facts["by_reason"][r["reason_key"]] = facts["by_reason"].get(r["reason_key"], 0) + 1
    record(as_of, "outreach:call_list", facts, url)
    return facts


def sandbox_messages_accepted() -> int | None:
    """How many messages the sandbox gateways hold (None when no sandbox answers)."""
    import requests

    try:
        response = requests.get(get_settings().sandbox_url + "/_control/messages", timeout=5)
        return len(response.json()["messages"])
    except Exception:
        return None


def summary(as_of: date, url: str | None = None) -> dict:
    """What the demo prints: read back from the warehouse (and the sandbox gateway)."""
    from datetime import timedelta

    from crm_pipeline.extract.freshness import recorded_stale
    from crm_pipeline.load.quarantine import summarize
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        def q(sql, *args):
            return conn.execute(sql, args).fetchall()

        quarantine = summarize(conn)  # one pass: records per platform, and those still open (D40)
        quarantined: dict[str, int] = {}
        for g in sorted(quarantine, key=lambda g: g.platform):
            quarantined[g.platform] = quarantined.get(g.platform, 0) + g.records
        out = {
            "as_of_date": as_of.isoformat(),
            "orders_by_platform": dict(q("select platform, count(*) from marts.fct_orders group by 1 order by 1")),
            "raw_landed_by_platform": {},
            "quarantined": quarantined,
            "quarantined_open": sum(g.open for g in quarantine),
            "customers": q("select count(*) from marts.dim_customers")[0][0],
            "identity_nodes": q("select count(*) from intermediate.int_identity__resolved")[0][0],
            "rfm_segments": dict(q("select segment, count(*) from marts.customer_rfm group by 1 order by 2 desc")),
            "rfm_method": (q("select max(scoring_method) from marts.customer_rfm") or [[None]])[0][0],
            "lifecycle_stages": dict(q("select stage, count(*) from marts.customer_lifecycle group by 1 order by 2 desc")),
            "tiers": dict(q("select tier, count(*) from marts.customer_tiers group by 1 order by 1")),
            "ledger": dict(q("select status, count(*) from outreach.message_ledger group by 1 order by 1")),
            "suppressed": dict(q("select rule, count(*) from outreach.suppressions group by 1 order by 2 desc")),
            "stale_shops": [f["describe"] for f in recorded_stale(conn, as_of)],
            "call_list_entries": q("select count(*) from outreach.call_list_entries where list_date = %s",
                                   as_of + timedelta(days=1))[0][0],
            "call_list_facts": (q("select facts from ops.run_log where as_of_date = %s and step = 'outreach:call_list'",
                                  as_of) or [[{}]])[0][0],
        }
        from crm_pipeline.platforms import PLATFORMS

        for spec in PLATFORMS.values():
            out["raw_landed_by_platform"][spec.name] = q(f"select count(*) from raw.{spec.raw_table}")[0][0]
    settings = get_settings()
    facts = out.pop("call_list_facts") or {}
    out["call_list_path"] = (facts.get("paths") or {}).get("combined") or str(
        settings.out_dir / (as_of + timedelta(days=1)).isoformat() / "call_list.xlsx")
    out["call_list_version"] = facts.get("version")
    out["report_path"] = str(settings.out_dir / as_of.isoformat() / "report.html")
    out["gateway_messages_received"] = sandbox_messages_accepted()
    return out


def as_dict(obj) -> dict:
    return asdict(obj)


def out_dir_for(as_of: date) -> Path:
    return get_settings().out_dir / as_of.isoformat()


INTRADAY_TYPES = ("payment_reminder", "payment_reminder_flash", "shipment_notice")


REFRESH_STEP = "intraday:refresh"


def intraday_refresh(as_of: date, url: str | None = None) -> dict:
    """Rebuild orders and customers when a landing since the last intraday refresh added
    versions; a tick in which no shop changed skips dbt (most ticks of a quiet shop)."""
    from crm_pipeline.transform.dbt import run_dbt
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        started = conn.execute("select now()").fetchone()[0]  # landings after this wait for the next tick
        changed = conn.execute(
            "select count(*) from ops.load_batches where status = 'succeeded' and new_versions > 0"
            " and finished_at > coalesce((select max((facts ->> 'from')::timestamptz) from ops.run_log"
            "                             where step = %s), '-infinity')", (REFRESH_STEP,)).fetchone()[0]
    if not changed:
        return {"refreshed": False, "batches": 0}
    run_dbt(["run", "--select", "+fct_orders", "+dim_customers"], as_of, url)
    facts = {"refreshed": True, "batches": changed, "from": started.isoformat()}
    record(as_of, REFRESH_STEP, facts, url)
    return facts


def intraday_transactional(as_of: date, url: str | None = None) -> dict:
    """Refresh orders and customers (when something landed), then plan and push the two
    transactional types: right after the refresh, so the send-time re-check of a payment
    reminder or a shipment notice reads the orders as the platforms just reported them."""
    refresh = intraday_refresh(as_of, url)
    plan = plan_outreach(as_of, url, only=("payment_reminder", "shipment_notice"))
    push = push_messages(as_of, url, message_types=INTRADAY_TYPES)
    return {"refresh": refresh, "plan": plan["triggers"], "held": plan["held"], "stale_shops": plan["stale_shops"],
            "push": push}
