"""Which shops' data is current for a business day, and what a night does about the rest (D45).

A shop is *current* for business day D when everything it holds up to the end of D
(in the shop's time zone) has landed:

* an API shop: its warehouse watermark (advanced only by a successful extraction,
  never by a failed one) has reached the end of D in the shop's zone or in the schedule's
  zone (CRM_TIMEZONE), whichever comes first. A shop west of the schedule's zone (Los
  Angeles, read at 02:30 Shanghai) is still inside D when the night runs and is read up to
  now (extract/run.py); the night needs it read past the schedule's midnight, and the rest
  of its D is read the next night;
* a spreadsheet (intake) shop: no file in its inbox is waiting to be imported (a
  file that failed to import stays pending).

A shop that is not current is *stale*. The night carries on for the others when
``CRM_ON_SHOP_FAILURE=continue`` (the default): the stale shop's data stays as it
was after its last good run, and the messages whose reason is that something did
*not* happen are held for it, because the missing data may hold the thing that did
happen (a payment, a repurchase): payment reminders for its orders (R5), and the
cadence, repurchase and care messages and the day-100 alert (R10-R12) for customers
who buy there. Messages about what did happen (shipment notices, birthdays,
holidays, campaigns) go out. The run still ends failed so nobody mistakes it for a
full night. ``CRM_ON_SHOP_FAILURE=stop`` stops the night before anything is
modelled, as a critical quality failure does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from crm_pipeline.pii import redact

POLICIES = ("continue", "stop")
# what a stale shop holds back, by trigger kind (outreach/triggers.py)
HELD_FOR_ORDERS = ("payment_reminder",)  # by the order's shop (flash-sale reminders included)
HELD_FOR_CUSTOMERS = ("cadence", "repurchase", "care")  # by any order of the customer's there
HOLD_RULE = "shop_data_stale"
STEP = "check:freshness"  # the ops.run_log step check_extraction records


def recorded_stale(conn, as_of: date) -> list[dict]:
    """The stale shops check_extraction recorded for the day (``as_fact`` dicts; [] if none or not run)."""
    row = conn.execute("select facts from ops.run_log where as_of_date = %s and step = %s", (as_of, STEP)).fetchone()
    return (row[0] if row else {}).get("stale") or []


class StaleShopsError(RuntimeError):
    """The night cannot (or, by policy, must not) go on with these shops stale."""

    def __init__(self, message: str, stale: list[ShopFreshness]):
        super().__init__(message)
        self.stale = stale


@dataclass(frozen=True)
class ShopFreshness:
    shop_id: str
    platform: str
    due: datetime | None  # API shops: the end of the business day (shop's or schedule's zone, the earlier)
    read_to: datetime | None  # API shops: the watermark (None: never read)
    pending_files: tuple[str, ...] = ()  # intake shops: inbox files not imported
    last_error: str | None = None  # the latest failed run's error since the last good one (redacted)
    on_failure: str | None = None  # the shop's own policy (shops.yml ``on_failure``), else the global one

    @property
    def stale(self) -> bool:
        if self.due is not None:
            return self.read_to is None or self.read_to < self.due
        return bool(self.pending_files)

    def describe(self) -> str:
        """One line for logs, alerts and the report (no contact data)."""
        if self.due is not None:
            where = ("never read" if self.read_to is None
                     else f"read up to {self.read_to.astimezone(self.due.tzinfo):%Y-%m-%d %H:%M %Z}")
            what = f"{self.platform}/{self.shop_id}: {where}, needs {self.due:%Y-%m-%d %H:%M %Z}"
        else:
            what = f"{self.platform}/{self.shop_id}: {len(self.pending_files)} file(s) not imported " \
                   f"({', '.join(self.pending_files[:3])}{', ...' if len(self.pending_files) > 3 else ''})"
        return what + (f"; last error: {self.last_error}" if self.last_error else "")

    def as_fact(self) -> dict:
        return {"shop_id": self.shop_id, "platform": self.platform, "stale": self.stale,
                "read_to": self.read_to.isoformat() if self.read_to else None,
                "due": self.due.isoformat() if self.due else None,
                "pending_files": list(self.pending_files), "last_error": self.last_error,
                "describe": self.describe()}


def _last_error(conn, platform: str, shop_id: str) -> str | None:
    """The newest failed run's error, if it is newer than the newest good run."""
    row = conn.execute(
        "select error from ops.load_batches f where f.platform = %s and f.shop_id = %s and f.status = 'failed'"
        " and f.started_at > coalesce((select max(started_at) from ops.load_batches g where g.platform = f.platform"
        "   and g.shop_id = f.shop_id and g.status = 'succeeded'), '-infinity')"
        " order by f.started_at desc limit 1", (platform, shop_id)).fetchone()
    if not row or not row[0]:
        return None
    text = redact(" ".join(str(row[0]).split()))
    return text if len(text) <= 300 else text[:297] + "..."


def shop_freshness(conn, as_of: date, shops=None, inbox=None, due_at: datetime | None = None) -> list[ShopFreshness]:
    """Freshness of every configured shop (or of ``shops``) for business day ``as_of``.

    ``due_at``: the moment API shops must have been read up to instead of the end of the
    day (intraday runs); spreadsheet shops are then left out (they are read nightly)."""
    from crm_pipeline.config import load_shops
    from crm_pipeline.extract.base import local_day_bounds
    from crm_pipeline.extract.run import pending_intake_files
    from crm_pipeline.platforms import PLATFORMS
    from crm_pipeline.settings import get_settings

    shops = load_shops(resolve=False) if shops is None else shops
    inbox = get_settings().intake_dir if inbox is None else inbox
    schedule_day_end = local_day_bounds(as_of, ZoneInfo(get_settings().timezone))[1]
    watermarks = {(p, s): w for p, s, w in conn.execute("select platform, shop_id, watermark from ops.watermarks")}
    out = []
    for shop in shops:
        error = _last_error(conn, shop.platform, shop.shop_id)
        if PLATFORMS[shop.platform].kind == "api":
            due = due_at.astimezone(shop.tz) if due_at else min(
                local_day_bounds(as_of, shop.tz)[1], schedule_day_end).astimezone(shop.tz)
            out.append(ShopFreshness(shop.shop_id, shop.platform, due,
                                     watermarks.get((shop.platform, shop.shop_id)), last_error=error,
                                     on_failure=shop.on_failure))
        elif due_at is None:
            pending = tuple(p.name for p in pending_intake_files(shop, inbox, conn=conn))
            out.append(ShopFreshness(shop.shop_id, shop.platform, None, None, pending, error if pending else None,
                                     shop.on_failure))
    return out


def on_shop_failure() -> str:
    """``CRM_ON_SHOP_FAILURE``, checked."""
    from crm_pipeline.settings import get_settings

    value = get_settings().on_shop_failure
    if value not in POLICIES:
        from crm_pipeline.extract.base import ConfigError

        raise ConfigError("-", "-", f"CRM_ON_SHOP_FAILURE={value!r}: expected one of {', '.join(POLICIES)}")
    return value


def gate(freshness: list[ShopFreshness], policy: str) -> list[ShopFreshness]:
    """After extraction: the stale shops the night goes on without, or StaleShopsError.

    The night stops when a stale shop's policy says so (its own ``on_failure`` in
    shops.yml, else ``policy``), or when no API shop is current (there
    would be nothing new to model: a warehouse or network failure, not one shop)."""
    stale = [f for f in freshness if f.stale]
    if not stale:
        return []
    lines = "\n  ".join(f.describe() for f in stale)
    stops = [f for f in stale if (f.on_failure or policy) == "stop"]
    if stops:
        why = "\n  ".join(f"{f.describe()} (" + ("on_failure: stop in shops.yml" if f.on_failure
                                                 else "CRM_ON_SHOP_FAILURE=stop") + ")" for f in stops)
        raise StaleShopsError(f"{len(stops)} shop(s) not current whose policy is to stop the night:\n  {why}", stale)
    api = [f for f in freshness if f.due is not None]
    if api and all(f.stale for f in api):
        raise StaleShopsError(f"no API shop is current, nothing new to model (a manual or backfill run for a day "
                              f"not yet over: set as_of_date to a closed day):\n  {lines}", stale)
    return stale
