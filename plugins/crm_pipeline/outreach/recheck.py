"""Send-time re-check: is the reason a message was planned for still true?

A message can wait in the ledger for hours between planning and sending: a payment
reminder planned at 21:30 waits for the end of quiet hours, a cadence message for its
send time, a campaign batch behind a throttled gateway. Meanwhile the buyer pays, the
order is refunded, the customer buys again. Just before a batch is claimed, the pusher
asks the warehouse's latest facts (``marts.fct_orders`` and ``marts.fct_order_items``,
refreshed by the nightly and intraday runs) whether each message's trigger still holds;
a message whose reason is gone is cancelled, with the reason, in
``outreach.suppressions`` (rule ``reason_gone``). Opt-outs are checked by
:class:`crm_pipeline.outreach.push.OptOutWatch` the same way, and marketing consent by
:func:`crm_pipeline.outreach.consent.gone_at_send` (rules ``no_consent`` / ``opted_out``).

One entry per message type, here and nowhere else: each is a SQL query over the ledger
rows of one batch (``%(keys)s``) that returns ``(idempotency_key, detail)`` for the rows
whose reason is gone. Types without an entry (birthday, holiday, campaigns) do not depend
on an order's state.
"""

from __future__ import annotations

from dataclasses import dataclass

RULE = "reason_gone"


@dataclass(frozen=True)
class Check:
    what: str  # the trigger condition, for the docs and the report
    sql: str  # -> (idempotency_key, detail) of the keys in %(keys)s whose condition no longer holds


_ORDER = "from outreach.message_ledger l left join marts.fct_orders o on o.order_key = l.order_key"

CHECKS: dict[str, Check] = {
    # R5: one reminder for an order that is still unpaid, unless the buyer paid another
    # order in the shop around it (the same rule the trigger applies when planning)
    "payment_reminder": Check(
        "the order is still unpaid and the buyer paid no other order in the shop within the window",
        f"""
        select l.idempotency_key,
               case when o.order_key is null then 'the order is no longer in the warehouse'
                    when o.status <> 'unpaid' then 'the order is ' || o.status || ' now'
                    else 'the buyer paid another order in the shop since' end
        {_ORDER}
        where l.idempotency_key = any(%(keys)s)
          and (o.order_key is null or o.status <> 'unpaid' or exists (
              select 1 from marts.fct_orders p
              where p.customer_id = o.customer_id and p.shop_id = o.shop_id and p.order_key <> o.order_key
                and p.paid_at is not null
                and p.paid_at between o.created_at - make_interval(days => %(paid_other_within_days)s)
                                  and o.created_at + make_interval(days => %(paid_other_within_days)s)))
        """,
    ),
    # R6: only for an order that really shipped and was not refunded or closed since
    "shipment_notice": Check(
        "the order shipped and is neither refunded nor closed",
        f"""
        select l.idempotency_key,
               case when o.order_key is null then 'the order is no longer in the warehouse'
                    when o.shipped_at is null then 'the order has not shipped'
                    else 'the order is ' || o.status || ' now' end
        {_ORDER}
        where l.idempotency_key = any(%(keys)s)
          and (o.order_key is null or o.shipped_at is null or o.status not in ('shipped', 'completed'))
        """,
    ),
    # R10: the cadence follows the customer's latest paid order; a refund ends it, and a
    # newer purchase starts a new cadence from that order
    "cadence": Check(
        "the order is still paid and is still the customer's latest paid order",
        f"""
        select l.idempotency_key,
               case when o.order_key is null then 'the order is no longer in the warehouse'
                    when not o.is_paid then 'the order is ' || o.status || ' now'
                    else 'the customer bought again since: the cadence follows the new order' end
        {_ORDER}
        where l.idempotency_key = any(%(keys)s)
          and (o.order_key is null or not o.is_paid or exists (
              select 1 from marts.fct_orders p
              where p.customer_id = o.customer_id and p.is_paid and p.order_key <> o.order_key
                and p.paid_at > o.paid_at))
        """,
    ),
    # R11: the product's usage period is running out, unless the order was refunded or the
    # customer bought the same product again
    "repurchase_reminder": Check(
        "the order is still paid and the customer has not bought the product again",
        f"""
        select l.idempotency_key,
               case when o.order_key is null then 'the order is no longer in the warehouse'
                    when not o.is_paid then 'the order is ' || o.status || ' now'
                    else 'the customer bought the product again since' end
        {_ORDER}
        where l.idempotency_key = any(%(keys)s)
          and (o.order_key is null or not o.is_paid or exists (
              select 1 from marts.fct_order_items i
              join marts.fct_order_items j on j.customer_id = i.customer_id and j.sku = i.sku
              where i.order_key = l.order_key and j.is_paid and j.order_date > i.order_date
                and l.idempotency_key like 'repurchase:' || i.order_key || ':' || i.sku || ':%%'))
        """,
    ),
    # R12: a caring note to a customer drifting away; moot once they have bought again
    "care": Check(
        "the customer has not bought since the business day that planned it",
        """
        select l.idempotency_key, 'the customer bought again since'
        from outreach.message_ledger l
        where l.idempotency_key = any(%(keys)s)
          and exists (select 1 from marts.fct_orders p
                      where p.customer_id = l.customer_id and p.is_paid and p.paid_date > l.as_of_date)
        """,
    ),
}
CHECKS["payment_reminder_flash"] = CHECKS["payment_reminder"]


def check_for(message_type: str) -> Check | None:
    """The check of a message type (``cadence_d7`` -> ``cadence``), or None."""
    if message_type in CHECKS:
        return CHECKS[message_type]
    base = message_type.split("_d")[0] if message_type.startswith("cadence_d") else message_type
    return CHECKS.get(base)


def reasons_gone(conn, keys_by_type: dict[str, list[str]], params: dict | None = None) -> dict[str, str]:
    """idempotency_key -> why its reason is gone, for the given pending keys (by message type)."""
    from crm_pipeline.outreach.triggers import load_trigger_config

    cfg = load_trigger_config()
    base = {"paid_other_within_days": int(cfg["payment_reminder"]["paid_other_within_days"]), **(params or {})}
    gone: dict[str, str] = {}
    for message_type, keys in keys_by_type.items():
        check = check_for(message_type)
        if check is None or not keys:
            continue
        for key, detail in conn.execute(check.sql, {**base, "keys": keys}).fetchall():
            gone[key] = detail
    return gone


def cancel(conn, gone: dict[str, str], rule: str = RULE) -> int:
    """Cancel pending rows whose reason is gone, each with a suppression (``rule``, default
    ``reason_gone``; the consent check uses ``no_consent`` / ``opted_out``). Caller commits."""
    if not gone:
        return 0
    keys = list(gone)
    rows = conn.execute(
        "update outreach.message_ledger set status = 'cancelled', error = 'reason gone before sending',"
        " updated_at = now() where status = 'pending' and idempotency_key = any(%s)"
        " returning idempotency_key, as_of_date, message_type, channel, customer_id, campaign", (keys,)).fetchall()
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into outreach.suppressions (idempotency_key, as_of_date, message_type, channel, customer_id,"
                " campaign, rule, detail) values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                [(*r, rule, gone[r[0]]) for r in rows])
    return len(rows)
