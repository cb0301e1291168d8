"""Outreach on the modelled warehouse: planning through the policy into the ledger,
exactly-once pushes to the sandbox gateways under faults, opt-outs, call lists."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest
from conftest import MODEL_AS_OF
from helpers import fault, gateway_messages, reset, rows, shops_read_at, table_digest

pytestmark = pytest.mark.integration
NOW = "2026-11-21T10:30:00+08:00"  # the morning after the business day, outside quiet hours


@pytest.fixture(scope="module")
def planned(modeled, clone_database, monkeypatch_module, tmp_path_factory, sandbox):
    """A copy of the modelled warehouse with the day's outreach planned into the ledger."""
    from crm_pipeline import pipeline
    from crm_pipeline.settings import reload_settings

    monkeypatch_module.setenv("CRM_NOW", NOW)
    monkeypatch_module.setenv("CRM_OUT_DIR", str(tmp_path_factory.mktemp("out")))
    reload_settings()
    url = clone_database(modeled, "planned")
    facts = pipeline.plan_outreach(MODEL_AS_OF, url)
    return url, facts


LEDGER_COLS = ("planned_at", "updated_at")


def test_plan_fills_the_ledger_and_explains_every_suppression(planned):
    url, facts = planned
    ledger = dict(rows(url, "select message_type, count(*) from outreach.message_ledger group by 1"))
    assert sum(ledger.values()) > 0
    assert rows(url, "select count(*) from outreach.message_ledger where status <> 'pending'")[0][0] == 0
    rules = dict(rows(url, "select rule, count(*) from outreach.suppressions group by 1"))
    assert rules, "some candidates are always stopped by a rule (cap, quiet hours, no contact ...)"
    assert rows(url, "select count(*) from outreach.suppressions where coalesce(detail, '') = ''")[0][0] == 0


def test_replanning_the_same_day_changes_nothing(planned):
    from crm_pipeline import pipeline

    url, _ = planned
    before = (table_digest(url, "outreach.message_ledger", "idempotency_key", exclude=LEDGER_COLS),
              rows(url, "select count(*) from outreach.suppressions")[0][0])
    pipeline.plan_outreach(MODEL_AS_OF, url)
    after = (table_digest(url, "outreach.message_ledger", "idempotency_key", exclude=LEDGER_COLS),
             rows(url, "select count(*) from outreach.suppressions")[0][0])
    assert after == before


def test_marketing_frequency_cap(planned):
    """R14: at most one marketing message per customer per channel (and overall) in the cap window."""
    url, _ = planned
    over = rows(url, "select customer_id, count(*) from outreach.message_ledger where message_class = 'marketing'"
                     " group by 1 having count(*) > 1")
    assert over == []


def test_messages_are_rendered_and_outside_quiet_hours(planned):
    url, _ = planned
    assert rows(url, "select count(*) from outreach.message_ledger where body is null or body like '%%{{%%'")[0][0] == 0
    hours = rows(url, "select distinct extract(hour from send_after at time zone 'Asia/Shanghai')::int"
                      " from outreach.message_ledger")
    assert all(9 <= h < 21 for (h,) in hours), hours


def test_opted_out_customers_are_never_planned(planned, modeled, clone_database):
    """R13: opt-out is absolute, by customer or by contact, for marketing and transactional alike."""
    from crm_pipeline import pipeline

    url, _ = planned
    picks = rows(url, "select distinct on (customer_id) customer_id, channel, recipient from outreach.message_ledger"
                      " order by customer_id, channel limit 4")
    assert len(picks) == 4
    other = clone_database(modeled, "optout")
    by_customer, by_contact = picks[:2], picks[2:]
    for customer, channel, _ in by_customer:
        rows_ = rows(other, "insert into outreach.optouts (channel, customer_id, source) values (%s, %s, 'cli')"
                            " returning optout_id", channel, customer)
        assert rows_
    for _, channel, recipient in by_contact:
        rows(other, "insert into outreach.optouts (channel, contact, source) values (%s, %s, 'td_reply')"
                    " returning optout_id", channel, recipient)
    pipeline.plan_outreach(MODEL_AS_OF, other)
    for customer, channel, _ in picks:
        sent = rows(other, "select count(*) from outreach.message_ledger where customer_id = %s and channel = %s",
                    customer, channel)[0][0]
        assert sent == 0, customer
        why = rows(other, "select rule from outreach.suppressions where customer_id = %s and channel = %s",
                   customer, channel)
        # recorded as opted out, or a campaign gave the buyer its next channel (D125: opt-outs
        # are per channel, like consent)
        elsewhere = rows(other, "select count(*) from outreach.message_ledger where customer_id = %s"
                                " and channel <> %s and message_type = 'campaign' and as_of_date = %s"
                                " and idempotency_key like 'campaign:%%:' || customer_id || ':%%'",
                         customer, channel, MODEL_AS_OF)[0][0]
        assert ("opted_out",) in why or elsewhere, customer


def _push(url, gateway_timeout: float = 10.0, shops_read: bool = True):
    import psycopg
    from crm_pipeline.clock import now
    from crm_pipeline.outreach.gateways import build_gateways, load_gateway_config
    from crm_pipeline.outreach.policy import load_policy
    from crm_pipeline.outreach.push import push
    from crm_pipeline.settings import get_settings

    cfg_dir = get_settings().config_dir
    gw = load_gateway_config(cfg_dir / "gateways.yml")
    for channel in gw["channels"].values():
        channel["timeout"] = gateway_timeout
    if shops_read:  # as the intraday run does before it pushes
        shops_read_at(url, now())
    with psycopg.connect(url) as conn:
        return push(conn, build_gateways(gw), load_policy(cfg_dir / "policy.yml"), now())


def test_a_reminder_waits_for_its_shop_to_be_read_again(planned, clone_database, sandbox):
    """The nightly closes the day at midnight; at 10:30 its facts are hours old, and a buyer may
    have paid since. A payment reminder or shipment notice goes out only once the shop was
    read within fresh_orders_minutes (the intraday run does, then pushes); marketing does not wait.
    A spreadsheet shop (an offline store) is read from its files once a night: nothing fresher
    can come, so its orders' messages are not held."""
    from crm_pipeline import pipeline

    url = clone_database(planned[0], "push_stale")
    reset(sandbox, messages=True)
    shipped = rows(url, """
        update marts.fct_orders set shipped_at = %s, status = 'shipped', carrier = '顺丰速运', tracking_no = 'SF2'
        where order_key = (select o.order_key from marts.fct_orders o join marts.dim_customers c using (customer_id)
                           where o.is_paid and o.order_key like 'intake:%%' and c.phone_e164 is not null
                           order by o.order_key limit 1)
        returning order_key""", f"{MODEL_AS_OF.isoformat()}T20:00:00+08:00")
    assert shipped, "the fixture has a paid offline-store order of a customer with a phone"
    pipeline.plan_outreach(MODEL_AS_OF, url, only=("shipment_notice",))
    due = "status = 'pending' and message_type in ('payment_reminder', 'shipment_notice') and send_after <= %s"
    api = due + " and order_key not like 'intake:%%'"
    waiting = rows(url, f"select count(*) from outreach.message_ledger where {api}", NOW)[0][0]
    offline = rows(url, f"select count(*) from outreach.message_ledger where {due}", NOW)[0][0] - waiting
    assert waiting > 0 and offline > 0
    stats = _push(url, shops_read=False)
    assert stats.held_stale_orders == waiting and stats.accepted > 0
    assert rows(url, f"select count(*) from outreach.message_ledger where {due}", NOW)[0][0] == waiting
    stats = _push(url)  # the shops were just read
    assert stats.held_stale_orders == 0
    assert rows(url, f"select count(*) from outreach.message_ledger where {due}", NOW)[0][0] == 0


def _assert_exactly_once(url, sandbox):
    msgs = gateway_messages(sandbox)
    accepted = rows(url, "select channel, count(*) from outreach.message_ledger where status = 'accepted' group by 1")
    by_gateway = Counter(m["gateway"] for m in msgs)
    assert dict(accepted).get("sms", 0) == by_gateway.get("aliyun", 0)
    assert dict(accepted).get("email", 0) == by_gateway.get("sendgrid", 0)
    assert dict(accepted).get("webhook", 0) == by_gateway.get("webhook", 0)
    sms = Counter((m["out_id"], m["to"]) for m in msgs if m["gateway"] == "aliyun")
    assert max(sms.values(), default=1) == 1, "an SMS went out twice"
    keyed = Counter(m["out_id"] for m in msgs if m["gateway"] != "aliyun")
    assert max(keyed.values(), default=1) == 1, "an e-mail or webhook message went out twice"
    return len(msgs)


def test_push_is_exactly_once_under_gateway_faults(planned, clone_database, sandbox):
    url = clone_database(planned[0], "push")
    reset(sandbox, messages=True)
    fault(sandbox, target="aliyun", kind="server_error", times=1)
    fault(sandbox, target="aliyun", kind="throttle", times=1)
    fault(sandbox, target="aliyun", kind="accept_then_timeout", times=1, after=1, params={"delay": 1.5})
    fault(sandbox, target="sendgrid", kind="server_error", times=1)
    fault(sandbox, target="sendgrid", kind="accept_then_timeout", times=1, params={"delay": 1.5})
    first = _push(url, gateway_timeout=0.7)
    assert first.unknown >= 1, "the accepted-then-timed-out batch is recorded as unknown, not resent"
    reset(sandbox)
    second = _push(url)
    assert second.reconciled_accepted >= 1
    left = dict(rows(url, "select status, count(*) from outreach.message_ledger"
                          " where send_after <= %s::timestamptz group by 1", NOW))
    assert set(left) <= {"accepted", "cancelled", "failed"}, left  # later rows wait for their send_after
    n = _assert_exactly_once(url, sandbox)
    assert n > 0
    third = _push(url)
    assert third.accepted == 0 and len(gateway_messages(sandbox)) == n


def test_crash_after_claim_resends_only_what_the_gateway_never_got(planned, clone_database, sandbox):
    """A push killed between claiming rows and the HTTP call leaves rows in 'sending'."""
    url = clone_database(planned[0], "crash")
    reset(sandbox, messages=True)
    claimed = rows(url, "update outreach.message_ledger set status = 'sending', attempts = 1, claim_token = 'gone',"
                        " claimed_at = %s::timestamptz - interval '1 hour' where idempotency_key in"
                        " (select idempotency_key from outreach.message_ledger order by 1 limit 5)"
                        " returning idempotency_key", NOW)
    assert len(claimed) == 5
    stats = _push(url)
    assert stats.reconciled_resend == 5
    _assert_exactly_once(url, sandbox)
    assert rows(url, "select count(*) from outreach.message_ledger where status in ('sending', 'unknown', 'pending')"
                     " and send_after <= %s::timestamptz", NOW)[0][0] == 0


def test_an_opt_out_after_planning_stops_the_pending_message(planned, clone_database, sandbox, monkeypatch):
    """R13 at send time: the planner left opted-out customers out, but a message waits in
    the ledger while an opt-out arrives (before the push, or while it runs). The pusher
    cancels it with an 'opted_out' suppression instead of sending it."""
    import psycopg
    from crm_pipeline import pipeline
    from crm_pipeline.outreach import push as push_mod

    url = clone_database(planned[0], "optout_late")
    reset(sandbox, messages=True)
    due = rows(url, "select idempotency_key, channel, customer_id, recipient from outreach.message_ledger"
                    " where status = 'pending' and message_class = 'marketing' and send_after <= %s::timestamptz"
                    " order by send_after desc, idempotency_key", NOW)
    customers = list(dict.fromkeys(r[2] for r in due))
    assert len(customers) >= 3, "the planned day needs due marketing messages for three customers"
    by_customer, by_contact = customers[:2]
    first = next(r for r in due if r[2] == by_customer)
    contact_row = next(r for r in due if r[2] == by_contact)
    rows(url, "insert into outreach.optouts (channel, customer_id, source) values (%s, %s, 'cli') returning 1",
         first[1], by_customer)
    rows(url, "insert into outreach.optouts (channel, contact, source) values ('all', %s, 'td_reply') returning 1",
         contact_row[3])
    # the next plan cancels them, so the outbound check before the push (GX: no pending
    # message to an opted-out recipient) passes instead of stopping every message
    flagged = rows(url, "select count(*) from outreach.v_outbound_pending where opted_out")[0][0]
    before_push = {first[0], *(r[0] for r in due if r[3] == contact_row[3])}
    assert flagged >= len(before_push)
    replanned = pipeline.plan_outreach(MODEL_AS_OF, url)
    assert rows(url, "select count(*) from outreach.v_outbound_pending where opted_out")[0][0] == 0
    assert replanned["cancelled_opted_out"] == flagged

    # while the push runs: as its first batch is claimed, a customer whose messages are
    # not in that batch opts out of everything
    real_claim = push_mod.batch_id_for
    late: list[tuple] = []

    def claim_then_opt_out(keys):
        if not late:
            mid_run = next(c for c in customers[2:] if not {r[0] for r in due if r[2] == c} & set(keys))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("insert into outreach.optouts (channel, customer_id, source) values ('all', %s, 'td_reply')",
                             (mid_run,))
            late.extend(r for r in due if r[2] == mid_run)
        return real_claim(keys)

    monkeypatch.setattr(push_mod, "batch_id_for", claim_then_opt_out)
    stats = _push(url)
    assert late, "the push claimed a batch"
    stopped = {first[0], *(r[0] for r in due if r[3] == contact_row[3]), *(r[0] for r in late)}
    status = dict(rows(url, "select idempotency_key, status from outreach.message_ledger where idempotency_key = any(%s)",
                       list(stopped)))
    assert set(status.values()) == {"cancelled"}, status
    why = rows(url, "select count(*) from outreach.suppressions where rule = 'opted_out' and idempotency_key = any(%s)",
               list(stopped))[0][0]
    assert why == len(stopped) and stats.opted_out == len(stopped - before_push)
    _assert_exactly_once(url, sandbox)  # gateway count == accepted rows: the cancelled ones never went out


def test_call_list_and_outcome_import(planned, clone_database, tmp_path):
    """R7/R8: per-agent sheets; a filled sheet feeds outcomes and opt-outs; a bad sheet applies nothing;
    a rerun keeps the issued list and its files; an older version's sheet is refused after a reissue."""
    from crm_pipeline import pipeline
    from crm_pipeline.outreach.calls import OutcomeSheetError, import_outcomes
    from crm_pipeline.warehouse import connect
    from openpyxl import load_workbook

    url = clone_database(planned[0], "calls")
    facts = pipeline.call_list(MODEL_AS_OF, url)
    assert facts["entries"] > 0 and facts["entries"] <= facts["capacity"] and facts["issued_now"]
    agent_files = [p for k, p in facts["paths"].items() if k not in ("combined", "csv")]
    assert agent_files
    from pathlib import Path

    path = Path(agent_files[0])
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    col = {str(c.value): c.column for c in ws[2] if c.value}
    assert ws.freeze_panes.endswith("3"), "title and header rows stay visible"
    # the order number is the one the platform shows, not our composite key
    assert ":" not in str(ws.cell(3, col["订单号（平台后台可搜）"]).value or "")
    ws.cell(3, col["接通情况"], "已接通")
    ws.cell(3, col["问题是否解决"], "未解决")
    ws.cell(3, col["生日"], "1990-05-17")
    ws.cell(3, col["拒绝再联系"], "是")
    good = tmp_path / "filled.xlsx"
    wb.save(good)
    customer = ws.cell(3, col["客户ID"]).value

    ws.cell(4, col["接通情况"], "也许")  # not in the dropdown: the whole sheet is rejected
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    with connect(url) as conn:
        with pytest.raises(OutcomeSheetError, match="row 4"):
            import_outcomes(conn, bad)
    assert rows(url, "select count(*) from outreach.call_outcomes")[0][0] == 0
    with connect(url) as conn:
        result = import_outcomes(conn, good)
    assert result["outcomes"] == 1 and result["opt_outs"] == 1
    assert rows(url, "select birthday::text, resolved from outreach.call_outcomes where customer_id = %s",
                customer) == [("1990-05-17", False)]
    assert rows(url, "select channel, source from outreach.optouts where customer_id = %s", customer) == [
        ("all", "call_outcome")]
    # a rerun of the day keeps the issued list (the opt-out recorded since does not change it) and its files
    before = {k: Path(p).read_bytes() for k, p in facts["paths"].items()}
    again = pipeline.call_list(MODEL_AS_OF, url)
    assert not again["issued_now"] and again["entries"] == facts["entries"]
    assert {k: Path(p).read_bytes() for k, p in again["paths"].items()} == before
    from crm_pipeline.quality.runner import run_checkpoint

    assert run_checkpoint("outbound", url=url, as_of=MODEL_AS_OF, record=False).success
    # a reissue is a new version beside the first; the first version's sheets are then refused
    reissued = pipeline.call_list(MODEL_AS_OF, url, reissue=True)
    assert reissued["version"] == 2 and all(".v2." in p for p in reissued["paths"].values())
    assert {k: Path(p).read_bytes() for k, p in facts["paths"].items()} == before
    with connect(url) as conn:
        with pytest.raises(OutcomeSheetError, match="version 2 replaced it"):
            import_outcomes(conn, good)


def test_rerun_after_push_does_not_redecide_the_loser(warehouse):
    """R14 + idempotency: two marketing messages compete for one customer's cap; the
    loser is suppressed. After the winner is sent, replanning the same day must not
    record a second, different reason for the loser (same ledger, same suppressions)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")
    now = datetime(2026, 11, 21, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    proposals = [Proposal(Candidate(f"{t}:C1:sms", t, "sms", "C1", "+8613912345678", now), t,
                          {"name": "王芳", "product": "面霜", "days_ago": 30}) for t in ("care", "repurchase_reminder")]

    def run():
        with connect(warehouse) as conn:
            plan(conn, proposals, policy, now, MODEL_AS_OF, cfg / "templates", "悦己生活")

    run()
    ledger = rows(warehouse, "select idempotency_key from outreach.message_ledger")
    suppressed = rows(warehouse, "select idempotency_key, rule from outreach.suppressions order by 1, 2")
    assert len(ledger) == 1 and len(suppressed) == 1, (ledger, suppressed)
    rows(warehouse, "update outreach.message_ledger set status = 'accepted' returning 1")
    run()
    assert rows(warehouse, "select idempotency_key, rule from outreach.suppressions order by 1, 2") == suppressed
    assert rows(warehouse, "select idempotency_key from outreach.message_ledger") == ledger


def test_intraday_sends_only_transactional_types_through_the_same_ledger(modeled, clone_database, sandbox,
                                                                         monkeypatch):
    """Issue 6 §1: payment reminders and shipment notices go out during the day; the
    nightly plan of the same day then adds the rest and never repeats them."""
    from crm_pipeline import pipeline
    from crm_pipeline.settings import reload_settings

    monkeypatch.setenv("CRM_NOW", "2026-11-20T16:00:00+08:00")  # mid-afternoon of the business day
    reload_settings()

    url = clone_database(modeled, "intraday")
    reset(sandbox, messages=True)
    facts = pipeline.intraday_transactional(MODEL_AS_OF, url)
    types = {r[0] for r in rows(url, "select distinct message_type from outreach.message_ledger")}
    assert types and types <= set(pipeline.INTRADAY_TYPES), types
    sent = rows(url, "select idempotency_key from outreach.message_ledger where status = 'accepted' order by 1")
    assert sent and facts["push"]["accepted"] == len(sent) == len(gateway_messages(sandbox))
    pipeline.plan_outreach(MODEL_AS_OF, url)
    pipeline.push_messages(MODEL_AS_OF, url)
    types_after = {r[0] for r in rows(url, "select distinct message_type from outreach.message_ledger")}
    assert types_after - set(pipeline.INTRADAY_TYPES), "the nightly plan adds the other types"
    keys = [m["out_id"] for m in gateway_messages(sandbox) if m["gateway"] != "aliyun"]
    assert len(keys) == len(set(keys))
    sms = [(m["out_id"], m["to"]) for m in gateway_messages(sandbox) if m["gateway"] == "aliyun"]
    assert len(sms) == len(set(sms))
    # D45: a shop read up to 15:30 is current for the 16:00 run (its window reaches 30 minutes back), not at 15:29
    assert facts["stale_shops"] == []
    rows(url, "update ops.watermarks set watermark = '2026-11-20T15:30:00+08:00' where shop_id = 'jd_pop' returning 1")
    assert pipeline.intraday_transactional(MODEL_AS_OF, url)["stale_shops"] == []
    rows(url, "update ops.watermarks set watermark = '2026-11-20T15:29:00+08:00' where shop_id = 'jd_pop' returning 1")
    assert pipeline.intraday_transactional(MODEL_AS_OF, url)["stale_shops"] == ["jd_pop"]


ABSENCE_TYPES = ("payment_reminder", "payment_reminder_flash", "care", "repurchase_reminder")  # + cadence_d*


def _absence_based(message_type: str) -> bool:
    return message_type in ABSENCE_TYPES or message_type.startswith("cadence_")


def test_a_shop_not_read_holds_what_its_missing_data_could_contradict(planned, modeled, clone_database):
    """D45: last night's extraction of one shop failed (its watermark stayed a day behind).
    Its payment reminders, and the cadence, repurchase and care messages of its buyers, are
    held with a reason; everything else is planned as usual; once the shop is read, a replan
    of the same day plans exactly what a full night would have."""
    from crm_pipeline import pipeline
    from crm_pipeline.clock import now
    from crm_pipeline.outreach import triggers
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    stale, platform = "tmall_flagship", "taobao"
    url = clone_database(modeled, "stale_shop")
    # the small test world has no order left unpaid this morning: one in each of two shops
    for shop_id in (stale, "jd_pop"):
        assert rows(url, """
            update marts.fct_orders set status = 'unpaid', is_paid = false, paid_at = null, paid_date = null,
                   shipped_at = null, created_at = %s - interval '3 hours'
            where order_key = (
                select o.order_key from marts.fct_orders o join marts.dim_customers c using (customer_id)
                where o.shop_id = %s and c.phone_e164 is not null and o.created_at < now() - interval '30 days'
                  and not exists (select 1 from marts.fct_orders p where p.customer_id = o.customer_id
                                  and p.paid_at > now() - interval '5 days')
                order by o.order_key limit 1)
            returning order_key""", now(), shop_id)
    with connect(url) as conn:  # what a night with every shop current would propose
        full = triggers.propose_all(conn, MODEL_AS_OF, now(), get_settings().timezone)
    full_keys = {p.candidate.key for items in full.by_kind.values() for p in items}
    assert not full.held and len(full.by_kind["payment_reminder"]) >= 2
    rows(url, "update ops.watermarks set watermark = watermark - interval '1 day' where shop_id = %s returning 1", stale)

    facts = pipeline.plan_outreach(MODEL_AS_OF, url)
    assert facts["stale_shops"] == [stale]
    held = rows(url, "select message_type, customer_id, idempotency_key, detail from outreach.suppressions"
                     " where rule = 'shop_data_stale'")
    held_types = Counter(r[0] for r in held)
    assert held_types["payment_reminder"] > 0 and any(t.startswith("cadence_") for t in held_types), held_types
    assert all(_absence_based(t) for t in held_types), held_types
    assert all(r[3].startswith(f"shop data not current (D45): {platform}/{stale}: read up to") for r in held)
    assert sum(facts["held"].values()) == len(held)
    exposed = {r[0] for r in rows(url, "select distinct customer_id from marts.fct_orders where shop_id = %s", stale)}
    ledger = rows(url, "select l.idempotency_key, l.message_type, l.customer_id, o.shop_id"
                       " from outreach.message_ledger l left join marts.fct_orders o using (order_key)")
    assert ledger
    assert not [r for r in ledger if r[1].startswith("payment_reminder") and r[3] == stale]
    assert not [r for r in ledger if _absence_based(r[1]) and not r[1].startswith("payment") and r[2] in exposed]
    # what did happen still goes out: the stale shop's shipment notices, the other shops' reminders
    assert [r for r in ledger if r[1] == "shipment_notice" and r[3] == stale]
    assert [r for r in ledger if r[1] == "payment_reminder" and r[3] != stale]

    # a rerun with the shop still not read changes nothing
    before = (rows(url, "select idempotency_key from outreach.message_ledger order by 1"),
              rows(url, "select idempotency_key, rule, detail from outreach.suppressions order by 1, 2"))
    pipeline.plan_outreach(MODEL_AS_OF, url)
    assert (rows(url, "select idempotency_key from outreach.message_ledger order by 1"),
            rows(url, "select idempotency_key, rule, detail from outreach.suppressions order by 1, 2")) == before

    # the shop is read: the same day's replan decides every held message like a full night
    rows(url, "update ops.watermarks set watermark = watermark + interval '1 day' where shop_id = %s returning 1", stale)
    facts = pipeline.plan_outreach(MODEL_AS_OF, url)
    assert facts["stale_shops"] == [] and facts["held"] == {}
    assert rows(url, "select count(*) from outreach.suppressions where rule = 'shop_data_stale'") == [(0,)]
    decided = {r[0] for r in rows(url, "select idempotency_key from outreach.message_ledger union"
                                       " select idempotency_key from outreach.suppressions")}
    assert {r[2] for r in held} <= decided
    assert full_keys <= decided
    payment = "select idempotency_key from outreach.message_ledger where message_type like 'payment_reminder%%'"
    assert {r[0] for r in rows(url, payment)} == {k for k in full_keys if k.startswith("payment_reminder")} - {
        r[0] for r in rows(url, "select idempotency_key from outreach.suppressions")}


def test_a_shop_that_cannot_be_read_is_named_and_the_night_ends_failed(planned, modeled, clone_database, sandbox,
                                                                         monkeypatch, tmp_path):
    """D45 through the real failure: JD's token has expired. The other shops land, the
    gate names JD with its error and lets the night go on; the end of the night fails,
    naming it; a sheet that cannot be imported keeps its shop stale the same way;
    CRM_ON_SHOP_FAILURE=stop stops at the gate; once JD is read the night completes."""
    from html import escape

    from crm_pipeline import pipeline
    from crm_pipeline.extract.base import ExtractError
    from crm_pipeline.extract.freshness import StaleShopsError
    from crm_pipeline.settings import get_settings, reload_settings

    url = clone_database(modeled, "failed_shop")
    rows(url, "update ops.watermarks set watermark = watermark - interval '1 day' returning 1")  # before the night
    reset(sandbox, throttle=False)
    token = os.environ["CRM_SECRET_JD_POP_ACCESS_TOKEN"]
    monkeypatch.setenv("CRM_SECRET_JD_POP_ACCESS_TOKEN", "expired-token")
    for shop_id in pipeline.api_shop_ids():
        if shop_id == "jd_pop":
            with pytest.raises(ExtractError, match=r"jd/jd_pop"):
                pipeline.extract_shop(shop_id, MODEL_AS_OF, url=url)
        else:
            pipeline.extract_shop(shop_id, MODEL_AS_OF, url=url)
    sheet = get_settings().intake_dir / "wechat_social" / "broken.csv"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    sheet.write_text("nothing,we,know\n1,2,3\n", encoding="utf-8")
    try:
        with pytest.raises(ExtractError, match=r"intake/wechat_social.*broken.csv"):
            pipeline.intake_shop("wechat_social", MODEL_AS_OF, url=url)

        facts = pipeline.check_extraction(MODEL_AS_OF, url)
        stale = {f["shop_id"]: f for f in facts["stale"]}
        assert set(stale) == {"jd_pop", "wechat_social"}
        assert stale["jd_pop"]["last_error"] and "expired-token" not in stale["jd_pop"]["last_error"]
        assert stale["wechat_social"]["pending_files"] == ["broken.csv"]
        # the night goes on: its plan holds for both, and the report opens with them
        held = pipeline.plan_outreach(MODEL_AS_OF, url)["held"]
        from crm_pipeline.reporting.report import write_report

        report = write_report(MODEL_AS_OF, url, tmp_path).read_text(encoding="utf-8")
        banner = report.split("<h2 class='bad'>部分店铺没有读到当天结束", 1)[1].split("</section>", 1)[0]
        assert "jd/jd_pop: read up to 2026-11-20 00:00 CST" in banner and "broken.csv" in banner
        assert all(f"<span title='{escape(kind)}'>" in banner and f"</span> {n}" in banner for kind, n in held.items())
        assert held
        assert "<tr><td>jd_pop</td><td title='jd'>京东</td><td>2026-11-20 00:00 CST</td><td>否</td></tr>" in report
        assert ("<tr><td>tmall_flagship</td><td title='taobao'>淘宝/天猫</td><td>2026-11-21 00:00 CST</td><td>是</td>"
                "</tr>") in report
        # the platform table covers the chart's 90 days; spreadsheet lines find their catalog
        # cost by title, so every platform's margin is a figure below its revenue
        table = report.split("<th>毛利 ¥</th>", 1)[1].split("</table>", 1)[0]
        figures = re.findall(r"<tr><td title='(\w+)'>[^<]*</td><td class='num'>[\d,]+</td>"
                             r"<td class='num'>([\d,.k]+)</td><td[^>]*>([\d,.k]+)</td></tr>", table)
        assert {p for p, _, _ in figures} >= {"intake", "shopify", "taobao"}, table
        with pytest.raises(StaleShopsError) as err:
            pipeline.finish_night(MODEL_AS_OF, url)
        assert "jd/jd_pop: read up to 2026-11-20 00:00 CST" in str(err.value) and "broken.csv" in str(err.value)
        assert "shop_data_stale" in str(err.value)

        monkeypatch.setenv("CRM_ON_SHOP_FAILURE", "stop")
        reload_settings()
        with pytest.raises(StaleShopsError, match="CRM_ON_SHOP_FAILURE=stop"):
            pipeline.check_extraction(MODEL_AS_OF, url)
        monkeypatch.delenv("CRM_ON_SHOP_FAILURE")
    finally:
        sheet.unlink()
        reload_settings()

    monkeypatch.setenv("CRM_SECRET_JD_POP_ACCESS_TOKEN", token)  # the token is renewed
    pipeline.extract_shop("jd_pop", MODEL_AS_OF, url=url)
    assert pipeline.check_extraction(MODEL_AS_OF, url)["stale"] == []
    assert pipeline.finish_night(MODEL_AS_OF, url) == {"stale": 0}


def test_order_numbers_as_each_platform_shows_them(modeled):
    """The call sheet's order number: Shopify's #name, a sheet's own number or none; every
    platform's expression runs (a CASE named after its branch once made `order_id`
    ambiguous and the night's call list failed whenever an intake order was on it)."""
    from crm_pipeline.outreach.calls import order_numbers
    from crm_pipeline.warehouse import connect

    keys = [r[0] for r in rows(modeled, "select distinct on (platform) order_key from marts.fct_orders"
                                        " order by platform, order_key")]
    assert {k.split(":")[0] for k in keys} >= {"intake", "shopify", "taobao", "woocommerce"}
    with connect(modeled) as conn:
        numbers = order_numbers(conn, keys)
    assert set(numbers) == set(keys)
    shopify = next(k for k in keys if k.startswith("shopify:"))
    assert numbers[shopify].startswith("#")
    taobao = next(k for k in keys if k.startswith("taobao:"))
    assert numbers[taobao] == taobao.split(":", 2)[2]
