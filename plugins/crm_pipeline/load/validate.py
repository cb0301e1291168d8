"""Per-platform inspection of one raw record: its key, its version time, and
whether it is fit to land.

A record that fails lands in ``raw.quarantine`` with the reason returned here
(unparseable, no order id, negative or absurd amount, impossible date,
before the shop start_date, unknown status, bad phone). Nothing is dropped silently.

Dates have no calendar floor: a date is *impossible* when it cannot exist
(2026-02-30, 0000-00-00) or lies in the future (beyond ``FUTURE_TOLERANCE``, which
absorbs time zones and clock skew). A seller importing a 1990s ledger keeps it.
An order dated before its shop's ``start_date`` is a different matter, with its own
reason: see ``before_start``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from crm_pipeline.load.normalize import masked_key, normalize_email, normalize_phone

CN = ZoneInfo("Asia/Shanghai")
FUTURE_TOLERANCE = timedelta(days=2)  # a platform's clock, time zones and date-only values
MAX_AMOUNT = Decimal("1000000")  # per order, in the order's currency; configurable per shop

TAOBAO_STATUSES = {
    "TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO",
    "SELLER_CONSIGNED_PART", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM", "PAID_FORBID_CONSIGN",
}
JD_STATUSES = {
    "WAIT_SELLER_STOCK_OUT", "WAIT_GOODS_RECEIVE_CONFIRM", "WAIT_SELLER_DELIVERY", "PAUSE", "FINISHED_L",
    "TRADE_CANCELED", "LOCKED", "POP_ORDER_PAUSE",
}
SHOPIFY_FINANCIAL = {
    "pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded", "voided", "expired",
}
WOO_STATUSES = {
    "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash", "checkout-draft",
}
INTAKE_STATUSES = {"unpaid", "paid", "shipped", "completed", "closed", "refunded"}
# reference §5: only TRADE_SUCCESS was seen; the rest of the list is UNCONFIRMED
YOUZAN_STATUSES = {
    "WAIT_BUYER_PAY", "TRADE_PAID", "WAIT_CONFIRM", "WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_SUCCESS", "TRADE_CLOSE",
}


class Invalid(ValueError):
    pass


@dataclass(frozen=True)
class Inspected:
    order_id: str | None
    updated_at: datetime | None
    derived: dict
    reason: str | None  # None = fit to land
    ordered: tuple[str, datetime] | None = None  # (field, value) of the order's own date


def _time_top(value: object, field: str, tz=CN) -> datetime:
    text = str(value)
    try:
        # exactly "YYYY-MM-DD HH:MM:SS" (fromisoformat is C-fast; strptime was a third of parse time)
        if len(text) != 19 or text[10] != " ":
            raise ValueError(text)
        dt = datetime.fromisoformat(text).replace(tzinfo=tz)
    except ValueError:
        raise Invalid(f"impossible date in {field}: {value!r}") from None
    return dt


def _time_iso(value: object, field: str, default_tz=CN) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"impossible date in {field}: {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=default_tz)


def _plausible(dt: datetime, field: str, now: datetime) -> datetime:
    """A date that exists (it parsed) and is not in the future; no calendar floor."""
    if dt > now + FUTURE_TOLERANCE:
        raise Invalid(f"impossible date in {field}: {dt.isoformat()} lies in the future")
    return dt


@dataclass(frozen=True)
class StartDateRule:
    """Orders dated before a shop's ``start_date`` (shops.yml): quarantined with their own
    reason, or landed (``options.before_start_date: land``).

    Spreadsheet shops quarantine them by default: a typed 2014 for 2024 is the likely
    cause, and the reason says how to keep an old ledger on purpose. API shops land them
    by default: there start_date is where reading begins, and an older order the platform
    sends (modified since, e.g. refunded) is the platform's record, not a typo.
    """

    shop_id: str
    start: datetime  # the first moment of start_date in the shop's time zone

    def check(self, ordered: tuple[str, datetime] | None) -> None:
        if ordered is not None and ordered[1] < self.start:
            field, value = ordered
            raise Invalid(
                f"before the shop start_date in {field}: {value.date().isoformat()} is before start_date "
                f"{self.start.date().isoformat()} of shop {self.shop_id} (shops.yml: set an earlier start_date "
                f"to keep older orders, or options.before_start_date: land)")


def _amount(value: object, field: str, limit: Decimal) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", "").replace("¥", "").replace("￥", "").strip())
    except (InvalidOperation, ValueError):
        raise Invalid(f"unparseable amount in {field}: {value!r}") from None
    if not amount.is_finite():
        raise Invalid(f"unparseable amount in {field}: {value!r}")
    if amount < 0:
        raise Invalid(f"negative amount in {field}: {amount}")
    if amount > limit:
        raise Invalid(f"absurd amount in {field}: {amount} > {limit}")
    return amount


def _phones(*values: object) -> dict:
    """Normalize candidate phones; any present-but-invalid phone is a bad record."""
    phones: list[str] = []
    masked: list[str] = []
    for value in values:
        result = normalize_phone(value)
        if result.status == "ok" and result.e164 not in phones:
            phones.append(result.e164)
        elif result.status == "masked":
            masked.append(masked_key(value))
        elif result.status == "invalid":
            raise Invalid(f"bad phone: {str(value)[:3]}*** does not parse as a phone number")
    out: dict = {}
    if phones:
        out["phones"] = phones
    if masked:
        out["masked_phones"] = sorted(set(masked))
    return out


def _require_id(value: object) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise Invalid("no order id")
    return text


def inspect_taobao(r: dict, now: datetime, limit: Decimal) -> Inspected:
    oid = _require_id(r.get("tid_str") or r.get("tid"))
    if r.get("status") not in TAOBAO_STATUSES:
        raise Invalid(f"unknown status {r.get('status')!r}")
    updated = _plausible(_time_top(r.get("modified"), "modified"), "modified", now)
    created = _plausible(_time_top(r.get("created"), "created"), "created", now)
    _amount(r.get("payment", "0"), "payment", limit)
    receiver = (r.get("__enrichment__") or {}).get("receiver") or {}
    derived = _phones(r.get("receiver_mobile"), receiver.get("mobile"), r.get("receiver_phone"))
    return Inspected(oid, updated, derived, None, ("created", created))


def inspect_jd(r: dict, now: datetime, limit: Decimal) -> Inspected:
    oid = _require_id(r.get("orderId"))
    if r.get("orderState") not in JD_STATUSES:
        raise Invalid(f"unknown status {r.get('orderState')!r}")
    updated = _plausible(_time_top(r.get("modified"), "modified"), "modified", now)
    created = _plausible(_time_top(r.get("orderStartTime"), "orderStartTime"), "orderStartTime", now)
    _amount(r.get("orderPayment", "0"), "orderPayment", limit)
    consignee = r.get("consigneeInfo") or {}
    derived = _phones(consignee.get("mobile"), consignee.get("telephone"))
    return Inspected(oid, updated, derived, None, ("orderStartTime", created))


def inspect_shopify(r: dict, now: datetime, limit: Decimal) -> Inspected:
    oid = _require_id(r.get("id"))
    if r.get("financial_status") not in SHOPIFY_FINANCIAL:
        raise Invalid(f"unknown status {r.get('financial_status')!r}")
    updated = _plausible(_time_iso(r.get("updated_at"), "updated_at"), "updated_at", now)
    created = _plausible(_time_iso(r.get("created_at"), "created_at"), "created_at", now)
    _amount(r.get("total_price", "0"), "total_price", limit)
    customer = r.get("customer") or {}
    shipping = r.get("shipping_address") or {}
    derived = _phones(customer.get("phone"), r.get("phone"), shipping.get("phone"))
    emails = [e for e in (normalize_email(customer.get("email")), normalize_email(r.get("email"))) if e]
    if emails:
        derived["emails"] = sorted(set(emails))
    return Inspected(oid, updated, derived, None, ("created_at", created))


def inspect_woocommerce(r: dict, now: datetime, limit: Decimal) -> Inspected:
    oid = _require_id(r.get("id"))
    if r.get("status") not in WOO_STATUSES:
        raise Invalid(f"unknown status {r.get('status')!r}")
    updated = _plausible(_time_iso(r.get("date_modified_gmt"), "date_modified_gmt", UTC),
                         "date_modified_gmt", now)
    created = _plausible(_time_iso(r.get("date_created_gmt"), "date_created_gmt", UTC), "date_created_gmt", now)
    _amount(r.get("total", "0"), "total", limit)
    billing = r.get("billing") or {}
    derived = _phones(billing.get("phone"))
    email = normalize_email(billing.get("email"))
    if email:
        derived["emails"] = [email]
    return Inspected(oid, updated, derived, None, ("date_created_gmt", created))


def inspect_intake(r: dict, now: datetime, limit: Decimal) -> Inspected:
    if r.get("__error__"):
        raise Invalid(str(r["__error__"]))
    oid = _require_id(r.get("order_id"))
    if r.get("status") not in INTAKE_STATUSES:
        raise Invalid(f"unknown status {r.get('status')!r}")
    updated = _plausible(_time_iso(r.get("paid_at"), "paid_at"), "paid_at", now)
    _amount(r.get("amount", "0"), "amount", limit)
    derived = _phones(r.get("phone"))
    email = normalize_email(r.get("email"))
    if email:
        derived["emails"] = [email]
    return Inspected(oid, updated, derived, None, ("paid_at", updated))


def inspect_youzan(r: dict, now: datetime, limit: Decimal) -> Inspected:
    """One ``full_order_info``. Encrypted fields (``$...$1$``) are not phones: the
    decrypted values come as enrichment (extract/youzan.py), plain ones are read as sent."""
    from crm_pipeline.extract.youzan import is_ciphertext

    info = r.get("order_info")
    if not isinstance(info, dict):
        raise Invalid("unparseable: no order_info")
    oid = _require_id(info.get("tid"))
    if info.get("status") not in YOUZAN_STATUSES:
        raise Invalid(f"unknown status {info.get('status')!r}")
    created = _plausible(_time_top(info.get("created"), "created"), "created", now)
    # an order never changed may come without update_time (Youzan sends "" for unset times)
    updated = (_plausible(_time_top(info["update_time"], "update_time"), "update_time", now)
               if info.get("update_time") else created)
    _amount((r.get("pay_info") or {}).get("payment", "0"), "payment", limit)
    enrichment = r.get("__enrichment__") or {}
    address, buyer = r.get("address_info") or {}, r.get("buyer_info") or {}
    plain = [v for v in (address.get("receiver_tel"), buyer.get("buyer_phone")) if not is_ciphertext(v)]
    derived = _phones(*plain, (enrichment.get("receiver") or {}).get("mobile"), (enrichment.get("buyer") or {}).get("phone"))
    return Inspected(oid, updated, derived, None, ("created", created))


INSPECTORS: dict[str, Callable[[dict, datetime, Decimal], Inspected]] = {
    "taobao": inspect_taobao,
    "jd": inspect_jd,
    "shopify": inspect_shopify,
    "woocommerce": inspect_woocommerce,
    "intake": inspect_intake,
    "youzan": inspect_youzan,
}

_ID_FIELDS = ("tid_str", "tid", "orderId", "id", "order_id")


def inspect(platform: str, record: object, now: datetime, limit: Decimal = MAX_AMOUNT,
            start_rule: StartDateRule | None = None) -> Inspected:
    """Never raises for bad data: returns an Inspected with a reason instead."""
    if not isinstance(record, dict):
        return Inspected(None, None, {}, f"unparseable: record is {type(record).__name__}, not an object")
    try:
        result = INSPECTORS[platform](record, now, limit)
        if start_rule is not None:
            start_rule.check(result.ordered)
        return result
    except Invalid as exc:
        ref = next((str(record[k]) for k in _ID_FIELDS if record.get(k) not in (None, "")), None)
        info = record.get("order_info")  # Youzan keeps its id one level down
        if ref is None and isinstance(info, dict) and info.get("tid") not in (None, ""):
            ref = str(info["tid"])
        return Inspected(ref, None, {}, str(exc))
    except (TypeError, AttributeError, KeyError) as exc:
        return Inspected(None, None, {}, f"unparseable: {exc.__class__.__name__}: {exc}")
