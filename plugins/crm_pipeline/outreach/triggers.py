"""Triggered messages (R5, R6, R9-R12): who should get what, read from the marts.

Each trigger returns proposals; the contact policy and the ledger decide what
actually goes out. Settings live in config/triggers.yml. Idempotency keys name
the trigger and its subject (an order, or a customer and a date), never a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.extract.freshness import HELD_FOR_CUSTOMERS, HELD_FOR_ORDERS
from crm_pipeline.outreach.ledger import Proposal
from crm_pipeline.outreach.policy import Candidate
from crm_pipeline.settings import get_settings

DEFAULTS = {
    "payment_reminder": {"delay_minutes": 30, "flash_delay_minutes": 5, "flash_close_minutes": 30,
                         "paid_other_within_days": 2, "lookback_hours": 24},
    "shipment_notice": {"lookback_hours": 36},
    "cadence": {"days": [1, 7, 20, 60], "alert_day": 100, "coupon": 20, "coupon_days": 14,
                "tips": {"护肤": "洁面后先用化妆水再用精华,吸收更好。", "彩妆": "上妆前做好保湿,妆容更服帖。",
                         "个护": "洗发时按摩头皮一分钟,清洁更彻底。", "食品": "开封后请密封冷藏,尽快食用。",
                         "母婴": "请按宝宝体重选择尺码,及时更换更舒适。", "other": "按说明使用,效果更好哦。"}},
    "birthday": {"enabled": True},
    "holiday": {"stages": ["new", "returning", "loyal", "win_back"]},
    "repurchase": {"lead_days": 3},
    "care": {"stages": ["at_risk"]},
}


def load_trigger_config(path: Path | None = None) -> dict:
    import yaml

    path = path or get_settings().config_dir / "triggers.yml"
    config = {k: dict(v) for k, v in DEFAULTS.items()}
    if path.exists():
        for key, values in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            config.setdefault(key, {}).update(values or {})
    return config


def _tz(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _sms(key: str, mtype: str, customer: str, phone: str | None, earliest: datetime, template: str, params: dict,
         order_key: str | None = None) -> Proposal:
    return Proposal(Candidate(key=key, message_type=mtype, channel="sms", customer_id=customer, recipient=phone,
                              earliest=earliest), template, params, order_key)


def payment_reminders(conn, now: datetime, cfg: dict) -> list[Proposal]:
    """R5: unpaid orders after a delay; not when the buyer paid another order in the shop within 2 days."""
    rows = conn.execute(
        """
        select o.order_key, o.order_id, o.customer_id, c.phone_e164, o.created_at, o.is_flash_sale
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
    for order_key, order_id, customer, phone, created, flash in rows:
        delay = cfg["flash_delay_minutes"] if flash else cfg["delay_minutes"]
        earliest = created + timedelta(minutes=int(delay))
        if earliest > now:
            continue  # not yet: the intraday run will pick it up
        mtype = "payment_reminder_flash" if flash else "payment_reminder"
        elapsed = (now - created).total_seconds() / 60
        params = {"order_tail": str(order_id)[-4:],
                  "minutes_left": max(5, int(cfg["flash_close_minutes"] - elapsed)) if flash else ""}
        out.append(_sms(f"{mtype}:{order_key}:sms", mtype, customer, phone, earliest, mtype,
                        {k: v for k, v in params.items() if v != ""}, order_key))
    return out


def shipment_notices(conn, now: datetime, cfg: dict) -> list[Proposal]:
    """R6: only orders that really shipped; carrier and tracking number are placeholders."""
    rows = conn.execute(
        """
        select o.order_key, o.customer_id, c.phone_e164, o.shipped_at, o.carrier, o.tracking_no
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
                 {"carrier": carrier or "", "tracking_no": tracking or ""}, ok)
            for ok, cust, phone, shipped, carrier, tracking in rows]


def cadence(conn, send_day: date, tz: str, cfg: dict) -> tuple[list[Proposal], list[dict]]:
    """R10: day 1/7/20/60 messages after a customer's latest paid order; day 100 -> ops alert list."""
    days = [int(d) for d in cfg["days"]]
    alert_day = int(cfg["alert_day"])
    rows = conn.execute(
        """
        with latest as (
            select distinct on (o.customer_id) o.customer_id, o.order_key, o.paid_date
            from marts.fct_orders o
            where o.is_paid and o.paid_date < %(send_day)s
            order by o.customer_id, o.paid_at desc, o.order_key
        )
        select l.customer_id, l.order_key, l.paid_date, (%(send_day)s - l.paid_date) as age, c.name, c.phone_e164,
               (select i.title from marts.fct_order_items i where i.order_key = l.order_key
                order by i.line_amount_cny desc, i.line_no limit 1),
               (select i.category from marts.fct_order_items i where i.order_key = l.order_key
                order by i.line_amount_cny desc, i.line_no limit 1),
               c.net_revenue_cny
        from latest l
        join marts.dim_customers c on c.customer_id = l.customer_id
        where (%(send_day)s - l.paid_date) = any(%(days)s)
        """,
        {"send_day": send_day, "days": days + [alert_day]},
    ).fetchall()
    earliest = datetime.combine(send_day, datetime.min.time(), _tz(tz)).replace(hour=10)
    proposals, alerts = [], []
    for customer, order_key, paid_date, age, name, phone, product, category, revenue in rows:
        if age == alert_day:
            alerts.append({"customer_id": customer, "name": name, "phone": phone, "last_order": order_key,
                           "paid_date": paid_date.isoformat(), "net_revenue_cny": float(revenue or 0),
                           "reason": f"no purchase for {alert_day} days (R10)"})
            continue
        mtype = f"cadence_d{age}"
        params = {"name": name or "亲", "product": product or "宝贝",
                  "tip": cfg["tips"].get(category or "other", cfg["tips"].get("other", "")),
                  "coupon": cfg["coupon"], "coupon_days": cfg["coupon_days"]}
        proposals.append(_sms(f"{mtype}:{order_key}:sms", mtype, customer, phone, earliest, mtype, params, order_key))
    return proposals, alerts


def birthdays(conn, send_day: date, tz: str, cfg: dict) -> list[Proposal]:
    """R9: on the customer's birthday (known from calls)."""
    if not cfg.get("enabled", True):
        return []
    rows = conn.execute(
        "select customer_id, name, phone_e164 from marts.dim_customers where birthday is not null"
        " and extract(month from birthday) = %s and extract(day from birthday) = %s",
        (send_day.month, send_day.day),
    ).fetchall()
    earliest = datetime.combine(send_day, datetime.min.time(), _tz(tz)).replace(hour=9)
    return [_sms(f"birthday:{c}:{send_day.year}:sms", "birthday", c, phone, earliest, "birthday", {"name": name or "亲"})
            for c, name, phone in rows]


def holidays(conn, send_day: date, tz: str, cfg: dict) -> list[Proposal]:
    """R9: greetings on holidays from the calendar seed (lunar holidays included), to active customers."""
    holiday = conn.execute("select holiday, name_zh from reference.holidays where holiday_date = %s",
                           (send_day,)).fetchone()
    if not holiday:
        return []
    rows = conn.execute(
        "select c.customer_id, c.name, c.phone_e164 from marts.dim_customers c"
        " join marts.customer_lifecycle l on l.customer_id = c.customer_id where l.stage = any(%s)",
        (list(cfg["stages"]),),
    ).fetchall()
    earliest = datetime.combine(send_day, datetime.min.time(), _tz(tz)).replace(hour=9)
    return [_sms(f"holiday:{holiday[0]}:{c}:{send_day.year}:sms", "holiday", c, phone, earliest, "holiday",
                 {"name": name or "亲", "holiday_name": holiday[1]}) for c, name, phone in rows]


def repurchase_reminders(conn, send_day: date, tz: str, cfg: dict) -> list[Proposal]:
    """R11: near the end of a product's usage period, unless bought again since."""
    rows = conn.execute(
        """
        select i.customer_id, i.order_key, i.sku, i.title, i.order_date, c.name, c.phone_e164
        from marts.fct_order_items i
        join marts.dim_customers c on c.customer_id = i.customer_id
        where i.is_paid and i.usage_days is not null
          and i.order_date + i.usage_days - %(lead)s = %(send_day)s
          and not exists (select 1 from marts.fct_order_items j where j.customer_id = i.customer_id
                          and j.sku = i.sku and j.is_paid and j.order_date > i.order_date)
        """,
        {"lead": int(cfg["lead_days"]), "send_day": send_day},
    ).fetchall()
    earliest = datetime.combine(send_day, datetime.min.time(), _tz(tz)).replace(hour=11)
    return [_sms(f"repurchase:{ok}:{sku}:sms", "repurchase_reminder", c, phone, earliest, "repurchase_reminder",
                 {"name": name or "亲", "product": title, "days_ago": (send_day - day).days}, ok)
            for c, ok, sku, title, day, name, phone in rows]


def care_messages(conn, as_of: date, send_day: date, tz: str, cfg: dict) -> list[Proposal]:
    """R12: a caring, non-promotional note when a customer goes quiet (enters at_risk)."""
    rows = conn.execute(
        "select l.customer_id, c.name, c.phone_e164, l.stage from marts.customer_lifecycle l"
        " join marts.dim_customers c on c.customer_id = l.customer_id"
        " where l.stage = any(%s) and (l.stage_since at time zone %s)::date = %s",
        (list(cfg["stages"]), tz, as_of),
    ).fetchall()
    earliest = datetime.combine(send_day, datetime.min.time(), _tz(tz)).replace(hour=15)
    return [_sms(f"care:{c}:{stage}:{as_of.isoformat()}:sms", "care", c, phone, earliest, "care",
                 {"name": name or "亲"}) for c, name, phone, stage in rows]


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
    send_day = as_of + timedelta(days=1)
    wanted = set(only) if only else {"payment_reminder", "shipment_notice", "cadence", "birthday", "holiday",
                                     "repurchase", "care"}
    out: dict[str, list] = {}
    if "payment_reminder" in wanted:
        out["payment_reminder"] = payment_reminders(conn, now, cfg["payment_reminder"])
    if "shipment_notice" in wanted:
        out["shipment_notice"] = shipment_notices(conn, now, cfg["shipment_notice"])
    if "cadence" in wanted:
        proposals, alerts = cadence(conn, send_day, tz, cfg["cadence"])
        out["cadence"] = proposals
        out["_alerts"] = alerts
    if "birthday" in wanted:
        out["birthday"] = birthdays(conn, send_day, tz, cfg["birthday"])
    if "holiday" in wanted:
        out["holiday"] = holidays(conn, send_day, tz, cfg["holiday"])
    if "repurchase" in wanted:
        out["repurchase"] = repurchase_reminders(conn, send_day, tz, cfg["repurchase"])
    if "care" in wanted:
        out["care"] = care_messages(conn, as_of, send_day, tz, cfg["care"])
    return out


def write_alerts(as_of: date, alerts: list[dict]) -> Path:
    """The ops 'about to lose' list (R10 day 100), next to the call list."""
    import csv

    folder = get_settings().out_dir / (as_of + timedelta(days=1)).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "about_to_lose.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=["customer_id", "name", "phone", "last_order", "paid_date",
                                                "net_revenue_cny", "reason"])
        writer.writeheader()
        writer.writerows(sorted(alerts, key=lambda a: -a["net_revenue_cny"]))
    return path
