"""Marketing consent as a policy input (issue 31): whether a shop's marketing needs the
buyer's opt-in, and what the buyer said.

* **Who needs an opt-in**: per shop in ``config/shops.yml`` (``marketing_consent.required``);
  by default Shopify and WooCommerce shops and any shop whose ``country`` is outside
  mainland China (GDPR, CAN-SPAM/TCPA, CASL). A message is judged by the shop of its
  order, or for a customer-level message (birthday, care, campaign) the shop of the
  customer's latest order — the same shop whose time zone it is sent in — and by every shop
  that collected the address it goes to: an e-mail only the Shopify store collected stays
  under the Shopify store's rule when the customer's latest order is on Tmall.
* **What the buyer said**: ``marts.customer_consent``, one row per customer and channel with
  the latest consent fact from the platforms (Shopify's ``email_marketing_consent`` /
  ``sms_marketing_consent`` and ``buyer_accepts_marketing``, a WooCommerce order meta key;
  docs/consent.md). The latest fact wins: ``granted`` allows marketing where an opt-in is
  needed; ``withdrawn`` is an opt-out on that channel wherever the customer bought.
* Transactional messages (payment reminders, shipment notices) need no marketing consent.

Planning sets each marketing candidate's ``consent_required`` and ``consent``; the policy
suppresses with ``no_consent`` (no opt-in where one is needed) or ``opted_out`` (consent
withdrawn). The pusher asks again just before a batch leaves (``gone_at_send``).
"""

from __future__ import annotations

from dataclasses import replace

from crm_pipeline.outreach.policy import Candidate


def shop_requirements() -> dict[str, bool]:
    """shop_id -> marketing needs an opt-in (shops.yml)."""
    from crm_pipeline.config import load_shops

    return {s.shop_id: s.consent_required for s in load_shops(resolve=False)}


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def lookup(conn, items: list[tuple[str, str | None, str, str | None]]) -> tuple[dict, dict]:
    """For (customer_id, order_key, channel, recipient) items: the shops each is judged by,
    {(customer_id, order_key or "", recipient or ""): {shop_id, ...}} — the shop of the order (or of
    the customer's latest order) and every shop whose orders of the customer carry that address
    (an address a shop needing an opt-in collected stays under its rule, whichever shop sends) —
    and the latest consent, {(customer_id, channel): state}."""
    if not items or not _exists(conn, "marts.fct_orders"):
        return {}, {}
    customers = sorted({c for c, _, _, _ in items})
    orders = sorted({o for _, o, _, _ in items if o})
    shop_of_order = dict(conn.execute("select order_key, shop_id from marts.fct_orders where order_key = any(%s)",
                                      (orders,)).fetchall()) if orders else {}
    shop_of_customer = dict(conn.execute(
        "select distinct on (customer_id) customer_id, shop_id from marts.fct_orders where customer_id = any(%s)"
        " order by customer_id, created_at desc, order_key", (customers,)).fetchall())
    collected: dict[tuple[str, str], set[str]] = {}
    for customer, contact, shop in conn.execute(
            "select distinct customer_id, phone_e164, shop_id from marts.fct_orders"
            " where customer_id = any(%(c)s) and phone_e164 is not null"
            " union select distinct customer_id, email, shop_id from marts.fct_orders"
            " where customer_id = any(%(c)s) and email is not null", {"c": customers}):
        collected.setdefault((customer, contact), set()).add(shop)
    consent: dict[tuple[str, str], str] = {}
    if _exists(conn, "marts.customer_consent"):
        consent = {(c, ch): state for c, ch, state in conn.execute(
            "select customer_id, channel, consent from marts.customer_consent where customer_id = any(%s)",
            (customers,))}
    shops = {}
    for c, o, _, recipient in items:
        judged = (shop_of_order.get(o) if o else None) or shop_of_customer.get(c)
        shops[(c, o or "", recipient or "")] = ({judged} if judged else set()) | collected.get((c, recipient), set())
    return shops, consent


def annotate(conn, candidates: list[tuple[Candidate, str | None]], marketing: set[str]) -> list[Candidate]:
    """The candidates (with their order keys) with ``consent_required`` and ``consent`` set
    on the marketing ones (``marketing``: their keys)."""
    wanted = [(c, o) for c, o in candidates if c.key in marketing]
    if not wanted:
        return [c for c, _ in candidates]
    required = shop_requirements()
    shops, consent = lookup(conn, [(c.customer_id, o, c.channel, c.recipient) for c, o in wanted])
    out = []
    for c, order_key in candidates:
        if c.key in marketing:
            judged = shops.get((c.customer_id, order_key or "", c.recipient or ""), set())
            c = replace(c, consent_required=any(required.get(shop, False) for shop in judged),
                        consent=consent.get((c.customer_id, c.channel)))
        out.append(c)
    return out


def gone_at_send(conn, rows: list[tuple[str, str, str, str | None, str, str | None]]) -> dict[str, tuple[str, str]]:
    """For pending rows (key, customer_id, channel, order_key, message_class, recipient): the
    marketing ones whose consent no longer allows them -> (rule, detail)."""
    marketing = [r for r in rows if r[4] == "marketing"]
    if not marketing:
        return {}
    required = shop_requirements()
    shops, consent = lookup(conn, [(customer, order_key, channel, recipient)
                                   for _, customer, channel, order_key, _, recipient in marketing])
    gone: dict[str, tuple[str, str]] = {}
    for key, customer, channel, order_key, _, recipient in marketing:
        state = consent.get((customer, channel))
        needing = sorted(s for s in shops.get((customer, order_key or "", recipient or ""), set())
                         if required.get(s, False))
        if state == "withdrawn":
            gone[key] = ("opted_out", f"withdrew {channel} marketing consent on the platform")
        elif needing and state != "granted":
            gone[key] = ("no_consent", f"shop {needing[0]} needs the buyer's opt-in for {channel} marketing;"
                                       " none on record")
    return gone
