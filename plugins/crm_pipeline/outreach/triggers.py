"""Triggered messages (R5, R6, R9-R12): who should get what, read from the marts.

Each trigger returns proposals; the contact policy and the ledger decide what
actually goes out. Settings live in config/triggers.yml. Idempotency keys name
the trigger and its subject (an order, or a customer and a date), never a run.

Day-based triggers (cadence, birthday, holiday, repurchase, care) are planned per
*send day*: the nightly plan covers the next day and, after nights that did not
plan, their days too (``send_days``): a trigger due on a skipped day fires on the
next run while its window lasts, once (its key), never twice. Every message carries
the recipient's time zone (their shop's, shops.yml): its send time and quiet hours
are theirs. Whether a planned message's reason still holds when it leaves is
re-checked at send time (recheck.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.extract.freshness import HELD_FOR_CUSTOMERS, HELD_FOR_ORDERS
from crm_pipeline.outreach.ledger import Proposal
from crm_pipeline.outreach.policy import Candidate
from crm_pipeline.settings import get_settings

DEFAULTS = {
    # a night that did not plan (failed, skipped) leaves its day-based triggers to the next
    # night that does, for at most this many days back; each fires once, if still valid
    "schedule": {"catch_up_days": 7},
    "payment_reminder": {"delay_minutes": 30, "flash_delay_minutes": 5, "flash_close_minutes": 30,
                         "paid_other_within_days": 2, "lookback_hours": 24},
    "shipment_notice": {"lookback_hours": 36},
    "cadence": {"days": [1, 7, 20, 60], "alert_day": 100, "coupon": 20, "coupon_days": 14, "send_hour": 10,
                "tips": {"护肤": "洁面后先用化妆水再用精华,吸收更好。", "彩妆": "上妆前做好保湿,妆容更服帖。",
                         "个护": "洗发时按摩头皮一分钟,清洁更彻底。", "食品": "开封后请密封冷藏,尽快食用。",
                         "母婴": "请按宝宝体重选择尺码,及时更换更舒适。", "other": "按说明使用,效果更好哦。"}},
    "birthday": {"enabled": True, "send_hour": 9},
    "holiday": {"stages": ["new", "returning", "loyal", "win_back"], "send_hour": 9},
    "repurchase": {"lead_days": 3, "send_hour": 11},
    "care": {"send_hour": 15},
}


def load_trigger_config(path: Path | None = None) -> dict:
    """config/triggers.yml over DEFAULTS (each section's keys override the default's)."""
    import yaml

    path = path or get_settings().config_dir / "triggers.yml"
    config = {k: dict(v) for k, v in DEFAULTS.items()}
    if path.exists():
        for key, values in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if key not in DEFAULTS:
                raise ValueError(f"{path}: unknown section {key!r} (known: {', '.join(DEFAULTS)})")
            unknown = set(values or {}) - set(DEFAULTS[key])
            if unknown:
                raise ValueError(f"{path}: {key}: unknown setting(s) {sorted(unknown)} "
                                 f"(known: {', '.join(DEFAULTS[key])})")
            config[key].update(values or {})
    return config


def _at(day: date, hour: int, tz: str) -> datetime:
    """``hour`` o'clock on ``day`` in the recipient's zone."""
    return datetime.combine(day, time(int(hour)), ZoneInfo(tz))


def _sms(key: str, mtype: str, customer: str, phone: str | None, earliest: datetime, template: str, params: dict,
         order_key: str | None = None, tz: str | None = None) -> Proposal:
    return Proposal(Candidate(key=key, message_type=mtype, channel="sms", customer_id=customer, recipient=phone,
                              earliest=earliest, timezone=tz), template, params, order_key)


# the zone a customer is messaged in: their latest order's shop's (shops.yml timezone)
CUSTOMER_ZONE = """(select z.shop_timezone from marts.fct_orders z where z.customer_id = {customer}
                    order by z.created_at desc, z.order_key limit 1)"""


def send_days(conn, as_of: date, max_back: int) -> list[date]:
    """The send days a nightly plan for ``as_of`` covers: the next day, and the days of
    nights that did not plan since the last night that did (at most ``max_back`` days
    back). The first night ever covers its own day only: no history is replayed."""
    row = conn.execute("select max(as_of_date) from ops.run_log where step = 'outreach:plan' and as_of_date < %s",
                       (as_of,)).fetchone()
    last = row[0] if row else None
    first = as_of + timedelta(days=1)
    if last is not None:
        first = max(last + timedelta(days=2), as_of + timedelta(days=1 - max(int(max_back), 0)))
    return [first + timedelta(days=k) for k in range((as_of - first).days + 2)]


def payment_reminders(conn, now: datetime, cfg: dict) -> list[Proposal]:
    """R5: unpaid orders after a delay; not when the buyer paid another order in the shop within 2 days."""
    rows = conn.execute(
        """
        select o.order_key, o.order_id, o.customer_id, c.phone_e164, o.created_at, o.is_flash_sale, o.shop_timezone
        from marts.fct_orders o
        join marts.dim_customers c on c.customer_id = o.customer_id
        where o.status = 'unpaid'
          and o.created_at > %(now)s - make_interval(hours => %(lookback)s)
          and o.created_at <= %(now)s
          and not exists (
              select 1 from marts.fct_orders p
              where p.customer_id = o.customer_id and p.shop_id = o.shop_id and p.order_key <> o.order_key
                and p.paid_at is not null
                and p.paid_at between o.created_at - make_interval(days => %(within)s)
                                  and o.created_at + make_interval(days => %(within)s))
        """,
        {"now": now, "lookback": int(cfg["lookback_hours"]), "within": int(cfg["paid_other_within_days"])},
    ).fetchall()
    out = []
    for order_key, order_id, customer, phone, created, flash, tz in rows:
        delay = cfg["flash_delay_minutes"] if flash else cfg["delay_minutes"]
        earliest = created + timedelta(minutes=int(delay))
        if earliest > now:
            continue  # not yet: the intraday run will pick it up
        mtype = "payment_reminder_flash" if flash else "payment_reminder"
        elapsed = (now - created).total_seconds() / 60
        params = {"order_tail": str(order_id)[-4:],
                  "minutes_left": max(5, int(cfg["flash_close_minutes"] - elapsed)) if flash else ""}
        out.append(_sms(f"{mtype}:{order_key}:sms", mtype, customer, phone, earliest, mtype,
                        {k: v for k, v in params.items() if v != ""}, order_key, tz))
    return out


def shipment_notices(conn, now: datetime, cfg: dict) -> list[Proposal]:
    """R6: only orders that really shipped; carrier and tracking number are placeholders."""
    rows = conn.execute(
        """
        select o.order_key, o.customer_id, c.phone_e164, o.shipped_at, o.carrier, o.tracking_no, o.shop_timezone
        from marts.fct_orders o
        join marts.dim_customers c on c.customer_id = o.customer_id
        where o.shipped_at is not null
          and o.status in ('shipped', 'completed')
          and o.shipped_at > %(now)s - make_interval(hours => %(lookback)s)
          and o.shipped_at <= %(now)s
        """,
        {"now": now, "lookback": int(cfg["lookback_hours"])},
    ).fetchall()
    return [_sms(f"shipment_notice:{ok}:sms", "shipment_notice", cust, phone, shipped, "shipment_notice",
                 {"carrier": carrier or "", "tracking_no": tracking or ""}, ok, tz)
            for ok, cust, phone, shipped, carrier, tracking, tz in rows]


def cadence(conn, days_to_send: list[date], cfg: dict) -> tuple[list[Proposal], list[dict]]:
    """R10: day 1/7/20/60 messages after a customer's latest paid order; day 100 -> ops alert list.

    Day N is counted in the shop's own calendar (the order's local paid date) and the
    message goes out at ``send_hour`` in the customer's zone."""
    days = [int(d) for d in cfg["days"]]
    alert_day = int(cfg["alert_day"])
    rows = conn.execute(
        """
        with latest as (
            select distinct on (o.customer_id) o.customer_id, o.order_key, o.paid_date, o.shop_timezone
            from marts.fct_orders o
            where o.is_paid and o.paid_date < %(last_day)s
            order by o.customer_id, o.paid_at desc, o.order_key
        ),
        due as (
            select l.*, d.send_day, (d.send_day - l.paid_date) as age
            from latest l
            join unnest(%(send_days)s::date[]) as d(send_day)
              on (d.send_day - l.paid_date) = any(%(days)s)
        )
        select d.customer_id, d.order_key, d.paid_date, d.age, d.send_day, d.shop_timezone, c.name, c.phone_e164,
               (select i.title from marts.fct_order_items i where i.order_key = d.order_key
                order by i.line_amount_cny desc, i.line_no limit 1),
               (select i.category from marts.fct_order_items i where i.order_key = d.order_key
                order by i.line_amount_cny desc, i.line_no limit 1),
               c.net_revenue_cny
        from due d
        join marts.dim_customers c on c.customer_id = d.customer_id
        """,
        {"send_days": days_to_send, "last_day": max(days_to_send), "days": days + [alert_day]},
    ).fetchall()
    proposals, alerts = [], []
    for customer, order_key, paid_date, age, send_day, tz, name, phone, product, category, revenue in rows:
        if age == alert_day:
            if send_day == max(days_to_send):  # the ops list is for this morning, not for missed ones
                alerts.append({"customer_id": customer, "name": name, "phone": phone, "last_order": order_key,
                               "paid_date": paid_date.isoformat(), "net_revenue_cny": float(revenue or 0),
                               "reason": f"no purchase for {alert_day} days (R10)"})
            continue
        mtype = f"cadence_d{age}"
        params = {"name": name or "亲", "product": product or "宝贝",
                  "tip": cfg["tips"].get(category or "other", cfg["tips"].get("other", "")),
                  "coupon": cfg["coupon"], "coupon_days": cfg["coupon_days"]}
        proposals.append(_sms(f"{mtype}:{order_key}:sms", mtype, customer, phone,
                              _at(send_day, cfg["send_hour"], tz), mtype, params, order_key, tz))
    return proposals, alerts


def birthdays(conn, days_to_send: list[date], cfg: dict) -> list[Proposal]:
    """R9: on the customer's birthday (known from calls); 29 February is kept on the 28th in other years."""
    if not cfg.get("enabled", True):
        return []
    rows = conn.execute(
        f"""
        select c.customer_id, c.name, c.phone_e164, d.send_day, {CUSTOMER_ZONE.format(customer='c.customer_id')}
        from marts.dim_customers c
        join unnest(%(send_days)s::date[]) as d(send_day)
          on extract(month from c.birthday) = extract(month from d.send_day)
         and (extract(day from c.birthday) = extract(day from d.send_day)
              or (extract(month from d.send_day) = 2 and extract(day from d.send_day) = 28
                  and extract(day from c.birthday) = 29
                  and extract(day from (d.send_day + 1)) = 1))
        where c.birthday is not null
        """,
        {"send_days": days_to_send},
    ).fetchall()
    default = get_settings().timezone
    return [_sms(f"birthday:{c}:{day.year}:sms", "birthday", c, phone, _at(day, cfg["send_hour"], tz or default),
                 "birthday", {"name": name or "亲"}, tz=tz or default)
            for c, name, phone, day, tz in rows]


def holidays(conn, days_to_send: list[date], cfg: dict) -> list[Proposal]:
    """R9: greetings on holidays from the calendar seed (lunar holidays included), to active customers."""
    found = conn.execute("select holiday_date, holiday, name_zh from reference.holidays where holiday_date = any(%s)",
                         (days_to_send,)).fetchall()
    if not found:
        return []
    rows = conn.execute(
        f"select c.customer_id, c.name, c.phone_e164, {CUSTOMER_ZONE.format(customer='c.customer_id')}"
        " from marts.dim_customers c"
        " join marts.customer_lifecycle l on l.customer_id = c.customer_id where l.stage = any(%s)",
        (list(cfg["stages"]),),
    ).fetchall()
    default = get_settings().timezone
    return [_sms(f"holiday:{holiday}:{c}:{day.year}:sms", "holiday", c, phone,
                 _at(day, cfg["send_hour"], tz or default), "holiday",
                 {"name": name or "亲", "holiday_name": name_zh}, tz=tz or default)
            for day, holiday, name_zh in found for c, name, phone, tz in rows]


def repurchase_reminders(conn, days_to_send: list[date], cfg: dict) -> list[Proposal]:
    """R11: near the end of what the customer bought lasts — the product's usage period
    times the units bought (quantity x the catalog's pack size) — unless bought again since."""
    rows = conn.execute(
        """
        with lines as (
            select i.customer_id, i.order_key, i.sku, min(i.title) as title, i.order_date,
                   (max(i.usage_days) * sum(greatest(i.quantity, 1)) * coalesce(max(p.pack_size), 1))::int as lasts_days
            from marts.fct_order_items i
            left join reference.product_catalog p on p.sku = i.sku
            where i.is_paid and i.usage_days is not null
              and (coalesce(i.line_refund_cny, 0) < i.line_amount_cny or i.line_amount_cny = 0)  -- D102: a line returned in full was not used up
            group by i.customer_id, i.order_key, i.sku, i.order_date
        )
        select l.customer_id, l.order_key, l.sku, l.title, l.order_date, d.send_day, o.shop_timezone,
               c.name, c.phone_e164
        from lines l
        join unnest(%(send_days)s::date[]) as d(send_day)
          on l.order_date + l.lasts_days - %(lead)s = d.send_day
        join marts.fct_orders o on o.order_key = l.order_key
        join marts.dim_customers c on c.customer_id = l.customer_id
        where not exists (select 1 from marts.fct_order_items j where j.customer_id = l.customer_id
                          and j.sku = l.sku and j.is_paid and j.order_date > l.order_date)
        """,
        {"lead": int(cfg["lead_days"]), "send_days": days_to_send},
    ).fetchall()
    return [_sms(f"repurchase:{ok}:{sku}:sms", "repurchase_reminder", c, phone, _at(day, cfg["send_hour"], tz),
                 "repurchase_reminder", {"name": name or "亲", "product": title, "days_ago": (day - bought).days},
                 ok, tz)
            for c, ok, sku, title, bought, day, tz, name, phone in rows]


def care_messages(conn, days_to_send: list[date], cfg: dict) -> list[Proposal]:
    """R12: a caring, non-promotional note on the day a customer starts drifting away (turns
    at risk: their own cycle, else the shop's window), before any discount reaches them —
    on that day it outranks the day-60 coupon in the contact policy (config/policy.yml)."""
    rows = conn.execute(
        f"""
        select l.customer_id, c.name, c.phone_e164, l.at_risk_on, {CUSTOMER_ZONE.format(customer='l.customer_id')}
        from marts.customer_lifecycle l
        join marts.dim_customers c on c.customer_id = l.customer_id
        where l.at_risk_on = any(%(send_days)s::date[]) and l.stage not in ('churned', 'prospect')
        """,
        {"send_days": days_to_send},
    ).fetchall()
    default = get_settings().timezone
    proposals = [_sms(f"care:{c}:at_risk:{day.isoformat()}:sms", "care", c, phone,
                      _at(day, cfg["send_hour"], tz or default), "care", {"name": name or "亲"}, tz=tz or default)
                 for c, name, phone, day, tz in rows]
    from crm_pipeline.clv.uses import care_by_p_alive  # issue 33: config/clv.yml lifecycle_trigger_basis

    return care_by_p_alive(conn, days_to_send, proposals, cfg["send_hour"])


def stale_exposure(conn, proposals: dict[str, list], stale_shops: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """For shops whose data is not current (D45): the proposals' orders placed there
    (order_key -> shop) and the customers who have bought there (customer_id -> shop)."""
    if not stale_shops:
        return {}, {}
    order_keys = [p.order_key for kind in HELD_FOR_ORDERS for p in proposals.get(kind, ()) if p.order_key]
    orders = dict(conn.execute("select order_key, shop_id from marts.fct_orders"
                               " where order_key = any(%s) and shop_id = any(%s)", (order_keys, stale_shops)))
    customers = dict(conn.execute("select distinct on (customer_id) customer_id, shop_id from marts.fct_orders"
                                  " where shop_id = any(%s) order by customer_id, shop_id", (stale_shops,)))
    return orders, customers


@dataclass
class Proposed:
    by_kind: dict[str, list]  # trigger kind -> proposals to plan
    held: list[tuple[Proposal, str]] = field(default_factory=list)  # (proposal, stale shop) (D45)
    alerts_held: int = 0  # day-100 alerts left off the list for the same reason


def propose_all(conn, as_of: date, now: datetime, tz: str, only: tuple[str, ...] | None = None,
                stale_shops: list[str] | tuple[str, ...] = ()) -> Proposed:
    """Every trigger's proposals for the business day (``only``: a subset, e.g. the intraday pair),
    less those held because a shop they depend on is stale (D45).

    Held: payment reminders for the stale shops' orders (the payment may be in what
    was not read), and cadence, repurchase and care messages and day-100 alerts for
    customers who buy there (the purchase that makes them wrong may be). Messages
    about what did happen are not held."""
    proposals = _propose(conn, as_of, now, tz, only)
    alerts = proposals.pop("_alerts", None)
    orders, customers = stale_exposure(conn, proposals, list(stale_shops))
    held: list[tuple[Proposal, str]] = []
    for kind in list(proposals):
        if kind in HELD_FOR_ORDERS:
            blocked = {p.order_key: orders[p.order_key] for p in proposals[kind] if p.order_key in orders}
            held += [(p, blocked[p.order_key]) for p in proposals[kind] if p.order_key in blocked]
            proposals[kind] = [p for p in proposals[kind] if p.order_key not in blocked]
        elif kind in HELD_FOR_CUSTOMERS:
            held += [(p, customers[p.candidate.customer_id]) for p in proposals[kind]
                     if p.candidate.customer_id in customers]
            proposals[kind] = [p for p in proposals[kind] if p.candidate.customer_id not in customers]
    alerts_held = 0
    if alerts is not None:
        kept = [a for a in alerts if a["customer_id"] not in customers]
        alerts_held = len(alerts) - len(kept)
        write_alerts(as_of, kept)
    return Proposed(proposals, held, alerts_held)


def _propose(conn, as_of: date, now: datetime, tz: str, only: tuple[str, ...] | None) -> dict[str, list]:
    cfg = load_trigger_config()
    wanted = set(only) if only else {"payment_reminder", "shipment_notice", "cadence", "birthday", "holiday",
                                     "repurchase", "care"}
    # day-based triggers: the next day, plus the days of nights that did not plan (catch-up)
    days_to_send = send_days(conn, as_of, int(cfg["schedule"]["catch_up_days"])) if only is None \
        else [as_of + timedelta(days=1)]
    out: dict[str, list] = {}
    if "payment_reminder" in wanted:
        out["payment_reminder"] = payment_reminders(conn, now, cfg["payment_reminder"])
    if "shipment_notice" in wanted:
        out["shipment_notice"] = shipment_notices(conn, now, cfg["shipment_notice"])
    if "cadence" in wanted:
        proposals, alerts = cadence(conn, days_to_send, cfg["cadence"])
        out["cadence"] = proposals
        out["_alerts"] = alerts
    if "birthday" in wanted:
        out["birthday"] = birthdays(conn, days_to_send, cfg["birthday"])
    if "holiday" in wanted:
        out["holiday"] = holidays(conn, days_to_send, cfg["holiday"])
    if "repurchase" in wanted:
        out["repurchase"] = repurchase_reminders(conn, days_to_send, cfg["repurchase"])
    if "care" in wanted:
        out["care"] = care_messages(conn, days_to_send, cfg["care"])
    return out


def write_alerts(as_of: date, alerts: list[dict]) -> Path:
    """The ops 'about to lose' list (R10 day 100), next to the call list (outreach/lists.py):
    about_to_lose.xlsx for people, never replaced once written, and about_to_lose.csv for tools."""
    from crm_pipeline.outreach.lists import write_about_to_lose

    folder = get_settings().out_dir / (as_of + timedelta(days=1)).isoformat()
    alerts = sorted(alerts, key=lambda a: (-a["net_revenue_cny"], a["customer_id"]))  # the same list, the same file
    return write_about_to_lose(folder, alerts, as_of + timedelta(days=1))
