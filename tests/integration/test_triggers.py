"""Trigger-level tests of outreach on a moving clock (issue 30 §2-§5), on copies of the
modelled warehouse: what each trigger plans, and what the send-time re-check does when
its reason is gone between planning and sending (R5, R6, R10-R12), the recipient's
time zone, and a skipped night caught up once.

The facts that change between planning and sending (a payment, a refund, a purchase)
are written into the marts the way the next intraday or nightly refresh would write them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import MODEL_AS_OF
from helpers import gateway_messages, reset, rows

pytestmark = pytest.mark.integration
CN = ZoneInfo("Asia/Shanghai")
SEND_DAY = MODEL_AS_OF + timedelta(days=1)


@pytest.fixture
def at(monkeypatch):
    """Drive the pipeline clock: ``at(datetime)``."""
    from crm_pipeline import clock
    from crm_pipeline.settings import reload_settings

    monkeypatch.delenv("CRM_NOW", raising=False)
    reload_settings()
    yield clock.set_now
    clock.set_now(None)


def _cfg():
    from crm_pipeline.outreach.triggers import load_trigger_config

    return load_trigger_config()


def _ledger(url, key):
    found = rows(url, "select status, send_after, timezone from outreach.message_ledger where idempotency_key = %s", key)
    return found[0] if found else None


def _why(url, key):
    return rows(url, "select rule, detail from outreach.suppressions where idempotency_key = %s order by 1", key)


def _make_unpaid(url, created: datetime, shop_id: str) -> tuple[str, str]:
    """An order left unpaid at ``created`` (the small world has none that evening), by a
    customer with a phone who paid nothing else around it; returns (order_key, phone)."""
    found = rows(url, """
        update marts.fct_orders set status = 'unpaid', is_paid = false, paid_at = null, paid_date = null,
               shipped_at = null, created_at = %s
        where order_key = (
            select o.order_key from marts.fct_orders o join marts.dim_customers c using (customer_id)
            where o.shop_id = %s and c.phone_e164 is not null and o.created_at < %s - interval '40 days'
              and not exists (select 1 from marts.fct_orders p where p.customer_id = o.customer_id
                              and p.paid_at > %s - interval '10 days')
            order by o.order_key limit 1)
        returning order_key, (select phone_e164 from marts.dim_customers c where c.customer_id = fct_orders.customer_id)
        """, created, shop_id, created, created)
    assert found, f"no order in {shop_id} to leave unpaid"
    return found[0]


def _read_up_to(url, moment: datetime) -> None:
    """Every shop read up to ``moment`` (as the runs before it would have): none is stale (D45)."""
    rows(url, "update ops.watermarks set watermark = %s returning 1", moment)


def _push_intraday(url):
    from crm_pipeline import pipeline

    return pipeline.push_messages(MODEL_AS_OF, url, message_types=pipeline.INTRADAY_TYPES)


def test_r5_a_reminder_planned_at_night_is_not_sent_once_the_order_is_paid(modeled, clone_database, sandbox, at):
    """R5: two orders left unpaid at 21:00; the 21:30 intraday run plans a reminder for each,
    held to 09:00 by quiet hours. One buyer pays at 23:00 (the nightly refresh sees it). At
    09:00 only the other reminder goes out; the paid one is cancelled with its reason."""
    from crm_pipeline import pipeline

    url = clone_database(modeled, "r5")
    reset(sandbox, messages=True)
    evening = datetime(2026, 11, 21, 21, 0, tzinfo=CN)
    paid_key, paid_phone = _make_unpaid(url, evening, "tmall_flagship")
    open_key, open_phone = _make_unpaid(url, evening, "jd_pop")
    at(evening + timedelta(minutes=30))
    _read_up_to(url, evening + timedelta(minutes=30))
    pipeline.plan_outreach(SEND_DAY, url, only=("payment_reminder", "shipment_notice"))
    for order_key in (paid_key, open_key):
        status, send_after, _ = _ledger(url, f"payment_reminder:{order_key}:sms")
        assert status == "pending" and send_after == datetime(2026, 11, 22, 9, 0, tzinfo=CN)
    assert _push_intraday(url)["accepted"] == 0  # quiet hours

    rows(url, "update marts.fct_orders set status = 'paid', is_paid = true, paid_at = %s, paid_date = %s"
              " where order_key = %s returning 1", evening + timedelta(hours=2), evening.date(), paid_key)
    at(datetime(2026, 11, 22, 9, 0, tzinfo=CN))
    _read_up_to(url, datetime(2026, 11, 22, 8, 30, tzinfo=CN))  # the 08:30 intraday tick read the shops
    facts = _push_intraday(url)
    assert facts["reason_gone"] == 1 and facts["accepted"] >= 1
    assert _ledger(url, f"payment_reminder:{paid_key}:sms")[0] == "cancelled"
    assert _why(url, f"payment_reminder:{paid_key}:sms") == [("reason_gone", "the order is paid now")]
    assert _ledger(url, f"payment_reminder:{open_key}:sms")[0] == "accepted"
    received = {m["to"] for m in gateway_messages(sandbox)}
    assert open_phone[3:] in received and paid_phone[3:] not in received


def test_r6_a_shipment_notice_for_an_order_refunded_since_is_not_sent(modeled, clone_database, sandbox, at):
    """R6: a notice planned for an order shipped at 22:00 waits for 09:00; the order is
    refunded overnight; at 09:00 the notice is cancelled, never sent."""
    from crm_pipeline import pipeline

    url = clone_database(modeled, "r6")
    reset(sandbox, messages=True)
    shipped = datetime(2026, 11, 21, 22, 0, tzinfo=CN)
    order_key = rows(url, """
        update marts.fct_orders set shipped_at = %s, status = 'shipped', carrier = '顺丰速运', tracking_no = 'SF1'
        where order_key = (select o.order_key from marts.fct_orders o join marts.dim_customers c using (customer_id)
                           where o.is_paid and c.phone_e164 is not null order by o.order_key limit 1)
        returning order_key""", shipped)[0][0]
    at(shipped + timedelta(minutes=30))
    _read_up_to(url, shipped + timedelta(minutes=30))
    pipeline.plan_outreach(SEND_DAY, url, only=("shipment_notice",))
    key = f"shipment_notice:{order_key}:sms"
    assert _ledger(url, key)[0] == "pending"
    rows(url, "update marts.fct_orders set status = 'refunded', is_paid = false where order_key = %s returning 1",
         order_key)
    at(datetime(2026, 11, 22, 9, 0, tzinfo=CN))
    _read_up_to(url, datetime(2026, 11, 22, 8, 30, tzinfo=CN))  # the 08:30 intraday tick read the shops
    _push_intraday(url)
    assert _ledger(url, key)[0] == "cancelled"
    assert _why(url, key) == [("reason_gone", "the order is refunded now")]


def test_r10_cadence_stops_when_the_order_is_refunded_or_the_customer_buys_again(modeled, clone_database, sandbox,
                                                                                  at):
    """R10: the nightly plans the day's cadence messages; before 10:00 one order is refunded
    and another customer buys again. Both messages are cancelled with their reasons; the
    rest go out."""
    from crm_pipeline import pipeline

    url = clone_database(modeled, "r10")
    reset(sandbox, messages=True)
    at(datetime(2026, 11, 21, 2, 30, tzinfo=CN))
    pipeline.plan_outreach(MODEL_AS_OF, url)
    planned = rows(url, "select idempotency_key, order_key, customer_id from outreach.message_ledger"
                        " where message_type like 'cadence_d%%' and status = 'pending' order by 1")
    assert len(planned) >= 3, "the day needs a few cadence messages"
    (refunded_key, refunded_order, _), (again_key, again_order, _) = planned[0], planned[1]
    rows(url, "update marts.fct_orders set status = 'refunded', is_paid = false where order_key = %s returning 1",
         refunded_order)
    rows(url, """insert into marts.fct_orders (order_key, platform, shop_id, order_id, customer_id, status, is_paid,
                                              created_at, paid_at, paid_date, order_date, amount_cny)
                 select order_key || ':again', platform, shop_id, order_id || '9', customer_id, 'paid', true,
                        %s, %s, %s, %s, amount_cny from marts.fct_orders where order_key = %s returning 1""",
         datetime(2026, 11, 21, 8, 0, tzinfo=CN), datetime(2026, 11, 21, 8, 5, tzinfo=CN), SEND_DAY, SEND_DAY,
         again_order)
    at(datetime(2026, 11, 21, 10, 5, tzinfo=CN))
    pipeline.push_due(url)
    assert _why(url, refunded_key) == [("reason_gone", "the order is refunded now")]
    assert _why(url, again_key) == [("reason_gone", "the customer bought again since: the cadence follows the new order")]
    others = [k for k, _, _ in planned[2:]]
    assert {r[0] for r in rows(url, "select status from outreach.message_ledger where idempotency_key = any(%s)",
                               others)} <= {"accepted", "cancelled"}
    assert rows(url, "select count(*) from outreach.message_ledger where idempotency_key = any(%s)"
                     " and status = 'accepted'", others)[0][0] >= 1


def test_r11_a_repurchase_reminder_counts_every_unit_bought(modeled, clone_database):
    """R11: three bottles last three times as long as one; a pack of two bottles twice as long again."""
    from crm_pipeline.outreach import triggers
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "r11")
    found = rows(url, """
        select i.order_key, i.sku, i.order_date, i.usage_days
        from marts.fct_order_items i
        where i.is_paid and i.quantity = 3 and i.usage_days is not null
          and (select count(*) from marts.fct_order_items s where s.order_key = i.order_key and s.sku = i.sku) = 1
          and not exists (select 1 from marts.fct_order_items j where j.customer_id = i.customer_id
                          and j.sku = i.sku and j.order_date > i.order_date)
        order by i.order_key limit 1""")
    assert found, "the world has lines of three units"
    order_key, sku, bought, usage = found[0]
    lead = int(_cfg()["repurchase"]["lead_days"])
    key = f"repurchase:{order_key}:{sku}:sms"

    def due_on(day: date) -> bool:
        with connect(url) as conn:
            return key in {p.candidate.key for p in triggers.repurchase_reminders(conn, [day], _cfg()["repurchase"])}

    assert not due_on(bought + timedelta(days=usage - lead)), "one bottle's period is not the end of three"
    assert due_on(bought + timedelta(days=3 * usage - lead))
    rows(url, "update reference.product_catalog set pack_size = 2 where sku = %s returning 1", sku)
    assert not due_on(bought + timedelta(days=3 * usage - lead))
    assert due_on(bought + timedelta(days=6 * usage - lead))


def test_r12_care_goes_out_on_the_at_risk_day_and_the_day_60_coupon_gives_way(modeled, clone_database, sandbox, at):
    """R12: a customer with no cycle of their own turns at risk on day 60 after their last
    order, the day the cadence's coupon is due. The caring note is planned for that day and
    the coupon is not sent (before: the coupon went out on day 60 and the note, planned
    for day 61, was stopped by the frequency cap)."""
    from crm_pipeline import pipeline

    url = clone_database(modeled, "r12")
    found = rows(url, """
        select l.customer_id, l.at_risk_on, l.last_paid_at
        from marts.customer_lifecycle l join marts.dim_customers c using (customer_id)
        where not l.has_own_cycle and c.phone_e164 is not null and c.birthday is null
          and l.stage not in ('churned', 'prospect')
          and l.at_risk_on = (l.last_paid_at at time zone 'Asia/Shanghai')::date + 60
          and l.at_risk_on > %s
        order by l.at_risk_on, l.customer_id limit 1""", SEND_DAY)
    assert found, "a customer of the world turns at risk on day 60 after the model's day"
    customer, risk_day, _ = found[0]
    at(datetime.combine(risk_day, datetime.min.time(), CN).replace(hour=2, minute=30))
    _read_up_to(url, datetime.combine(risk_day, datetime.min.time(), CN))
    pipeline.plan_outreach(risk_day - timedelta(days=1), url)
    care = f"care:{customer}:at_risk:{risk_day.isoformat()}:sms"
    status, send_after, _ = _ledger(url, care)
    assert status == "pending" and send_after.astimezone(CN).date() == risk_day
    coupon = rows(url, "select idempotency_key, rule, detail from outreach.suppressions"
                       " where customer_id = %s and message_type = 'cadence_d60'", customer)
    assert coupon and coupon[0][1] == "lower_priority" and coupon[0][2].startswith("care ranks higher"), coupon
    assert not rows(url, "select 1 from outreach.message_ledger where customer_id = %s"
                         " and message_type = 'cadence_d60'", customer)


def test_r12_the_caring_note_is_cancelled_when_the_customer_buys_before_it_leaves(modeled, clone_database, sandbox,
                                                                                    at):
    from crm_pipeline import pipeline

    url = clone_database(modeled, "r12_back")
    customer, risk_day = rows(url, """
        select l.customer_id, l.at_risk_on from marts.customer_lifecycle l join marts.dim_customers c using (customer_id)
        where c.phone_e164 is not null and c.birthday is null and l.stage not in ('churned', 'prospect')
          and l.at_risk_on > %s order by l.at_risk_on, l.customer_id limit 1""", SEND_DAY)[0]
    at(datetime.combine(risk_day, datetime.min.time(), CN).replace(hour=2, minute=30))
    _read_up_to(url, datetime.combine(risk_day, datetime.min.time(), CN))
    pipeline.plan_outreach(risk_day - timedelta(days=1), url)
    care = f"care:{customer}:at_risk:{risk_day.isoformat()}:sms"
    assert _ledger(url, care)[0] == "pending"
    rows(url, """insert into marts.fct_orders (order_key, platform, shop_id, order_id, customer_id, status, is_paid,
                                              created_at, paid_at, paid_date, order_date, amount_cny)
                 values ('intake:wechat_social:back', 'intake', 'wechat_social', 'back', %s, 'paid', true, %s, %s, %s,
                         %s, 99) returning 1""",
         customer, *(datetime.combine(risk_day, datetime.min.time(), CN).replace(hour=h) for h in (7, 7)),
         risk_day, risk_day)
    at(datetime.combine(risk_day, datetime.min.time(), CN).replace(hour=15, minute=5))
    pipeline.push_due(url)
    assert _ledger(url, care)[0] == "cancelled"
    assert _why(url, care) == [("reason_gone", "the customer bought again since")]


def test_a_skipped_night_is_caught_up_once(modeled, clone_database, sandbox, at):
    """Nights D-2 and D plan; night D-1 fails. D's plan decides the triggers due on D (the
    skipped night's day) as well as D+1's, each once: those still valid go out, the rest
    are recorded as expired. Rerunning D, or the next night, decides none of them again."""
    from crm_pipeline import pipeline
    from crm_pipeline.outreach import triggers
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "catch_up")
    d = MODEL_AS_OF
    at(datetime.combine(d - timedelta(days=1), datetime.min.time(), CN).replace(hour=2, minute=30))
    pipeline.plan_outreach(d - timedelta(days=2), url)
    with connect(url) as conn:  # what the skipped night would have planned, and the next one
        assert triggers.send_days(conn, d, 7) == [d, d + timedelta(days=1)]
        cfg = _cfg()
        missed = {p.candidate.key for p in triggers.cadence(conn, [d], cfg["cadence"])[0]}
        missed |= {p.candidate.key for p in triggers.care_messages(conn, [d], cfg["care"])}
        missed |= {p.candidate.key for p in triggers.repurchase_reminders(conn, [d], cfg["repurchase"])}
    assert missed, "the skipped day had day-based messages due"

    at(datetime.combine(d + timedelta(days=1), datetime.min.time(), CN).replace(hour=2, minute=30))
    pipeline.plan_outreach(d, url)
    decided = rows(url, "select idempotency_key from outreach.message_ledger where idempotency_key = any(%s)"
                        " union all select idempotency_key from outreach.suppressions where idempotency_key = any(%s)",
                   list(missed), list(missed))
    assert {r[0] for r in decided} == missed
    expired = {r[0] for r in rows(url, "select idempotency_key from outreach.suppressions where rule = 'expired'"
                                       " and idempotency_key = any(%s)", list(missed))}
    # cadence day 1 (valid 24 h from 10:00 on D) can still go at 09:00 on D+1; a care note (15:00, 72 h) too
    assert not [k for k in expired if k.startswith(("care:", "cadence_d7:", "cadence_d20:", "cadence_d60:"))]

    before = rows(url, "select count(*) from outreach.message_ledger")[0][0], \
        rows(url, "select count(*) from outreach.suppressions")[0][0]
    pipeline.plan_outreach(d, url)
    at(datetime.combine(d + timedelta(days=2), datetime.min.time(), CN).replace(hour=2, minute=30))
    with connect(url) as conn:
        assert triggers.send_days(conn, d + timedelta(days=1), 7) == [d + timedelta(days=2)]
    pipeline.plan_outreach(d + timedelta(days=1), url)
    again = rows(url, "select idempotency_key, count(*) from (select idempotency_key from outreach.message_ledger"
                      " union all select distinct idempotency_key from outreach.suppressions) k"
                      " where idempotency_key = any(%s) group by 1 having count(*) > 1", list(missed))
    assert again == [] and rows(url, "select count(*) from outreach.message_ledger")[0][0] >= before[0]


def test_the_first_night_ever_plans_its_own_day_only(modeled, clone_database, at):
    from crm_pipeline.outreach import triggers
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "first_night")
    with connect(url) as conn:
        assert triggers.send_days(conn, MODEL_AS_OF, 7) == [SEND_DAY]


def test_messages_keep_the_recipients_own_hours(modeled, clone_database, sandbox, at):
    """Customers whose shop is in Los Angeles: their messages are planned for 10:00 their time
    (02:00 in Beijing) and go out then, in Beijing's quiet hours; nothing reaches them at
    night their time, whatever Beijing's clock says."""
    from crm_pipeline import pipeline

    url = clone_database(modeled, "zones")
    reset(sandbox, messages=True)
    la = ZoneInfo("America/Los_Angeles")
    rows(url, "update marts.fct_orders set shop_timezone = 'America/Los_Angeles' where shop_id = 'shopify_global'"
              " returning 1")
    at(datetime(2026, 11, 21, 2, 30, tzinfo=CN))
    pipeline.plan_outreach(MODEL_AS_OF, url)
    planned = rows(url, "select idempotency_key, send_after, timezone, message_type from outreach.message_ledger"
                        " where message_class = 'marketing'")
    abroad = [r for r in planned if r[2] == "America/Los_Angeles"]
    home = [r for r in planned if r[2] == "Asia/Shanghai"]
    assert abroad and home
    assert all(9 <= r[1].astimezone(la).hour < 21 for r in abroad)
    assert all(r[1].astimezone(la).date() == SEND_DAY for r in abroad if not r[3].startswith("payment"))

    at(datetime(2026, 11, 21, 10, 30, tzinfo=CN))  # Beijing's morning: 18:30 the day before in LA
    pipeline.push_due(url)
    assert not rows(url, "select 1 from outreach.message_ledger where timezone = 'America/Los_Angeles'"
                         " and status = 'accepted' and message_class = 'marketing'")
    assert rows(url, "select count(*) from outreach.message_ledger where timezone = 'Asia/Shanghai'"
                     " and status = 'accepted'")[0][0] > 0
    sent_home = len(gateway_messages(sandbox))

    at(datetime(2026, 11, 22, 2, 10, tzinfo=CN))  # 10:10 in LA, 02:10 in Beijing
    pipeline.push_due(url)
    sent = rows(url, "select timezone, count(*) from outreach.message_ledger where status = 'accepted'"
                     " and message_class = 'marketing' and sent_at = %s group by 1",
                datetime(2026, 11, 22, 2, 10, tzinfo=CN))
    assert dict(sent).get("America/Los_Angeles", 0) > 0 and "Asia/Shanghai" not in dict(sent)
    assert len(gateway_messages(sandbox)) > sent_home
    for m in gateway_messages(sandbox):
        local = datetime.fromisoformat(m["received_at"])
        assert local.tzinfo is not None

