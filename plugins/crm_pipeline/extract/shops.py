"""`crm shops status|check`: how current each shop is, and whether it can be read now.

``status`` reads the warehouse only: per shop, how far it has been read, whether
that covers a business day (D45), its last good run and its last error since.
``check`` asks each platform for the last hour of orders with the shop's
credentials (one page, nothing landed), so a new shop or a renewed token is
known to work before the night, not at 02:30.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from crm_pipeline.extract.base import ExtractError, RetryPolicy, Window, local_day_bounds


@dataclass(frozen=True)
class ShopStatus:
    shop_id: str
    platform: str
    current: bool
    read_to: datetime | None
    pending_files: int
    last_good: datetime | None  # the last successful run's end
    last_counts: tuple[int, int, int] | None  # received, landed, quarantined of that run
    detail: str  # ShopFreshness.describe() when stale, else ""


def status(conn, as_of: date, shops=None) -> list[ShopStatus]:
    from crm_pipeline.config import load_shops
    from crm_pipeline.extract.freshness import shop_freshness

    shops = load_shops(resolve=False) if shops is None else shops
    tz = {s.shop_id: s.tz for s in shops}
    last = {(r[0], r[1]): r[2:] for r in conn.execute(
        "select platform, shop_id, finished_at, received, landed, quarantined from ops.v_latest_load_batches")}
    out = []
    for f in shop_freshness(conn, as_of, shops):
        good = last.get((f.platform, f.shop_id))
        local = tz[f.shop_id]  # times in the shop's own time zone, as its day is judged
        out.append(ShopStatus(f.shop_id, f.platform, not f.stale, f.read_to and f.read_to.astimezone(local),
                              len(f.pending_files), good[0].astimezone(local) if good and good[0] else None,
                              tuple(good[1:]) if good else None,
                              f.describe() if f.stale else ""))
    return out


@dataclass(frozen=True)
class Probe:
    shop_id: str
    platform: str
    ok: bool
    seconds: float
    orders: int | None  # orders in the first page of the last hour (None: not asked)
    message: str  # the error, or what was checked


def probe(shop_id: str, now: datetime, watermark: datetime | None, attempts: int = 2) -> Probe:
    """One authenticated read of the last hour's first page; never lands anything.

    Also asks what the next nightly run would: whether the platform serves the history
    it will read from (``watermark``: the shop's, None for a shop never read, whose
    first run reads from its start_date; e.g. Shopify's read_all_orders scope, D35)."""
    from crm_pipeline.config import get_shop, load_shops
    from crm_pipeline.extract.run import connector_for, plan_range
    from crm_pipeline.platforms import PLATFORMS
    from crm_pipeline.settings import get_settings

    t0 = time.monotonic()
    platform = next((s.platform for s in load_shops(resolve=False) if s.shop_id == shop_id), "?")
    try:
        shop = get_shop(shop_id)  # resolves credentials: a missing one fails here
        if PLATFORMS[shop.platform].kind != "api":
            folder = get_settings().intake_dir / shop.shop_id
            return Probe(shop_id, platform, True, 0.0, None,
                         f"spreadsheet shop: inbox {folder}" + ("" if folder.is_dir() else " (not created yet)"))
        connector = connector_for(shop, retry=RetryPolicy(attempts=attempts, timeout=15.0))
        today = now.astimezone(shop.tz).date()  # the next night closes today, once it is over
        start, _ = plan_range(shop, "nightly", watermark, as_of=today, now=local_day_bounds(today, shop.tz)[1])
        connector.check_history(start, "nightly", now)
        window = Window(now - timedelta(hours=1), now)
        pages = connector.fetch(window, "nightly")
        try:
            first = next(pages, [])
        finally:
            pages.close()
        return Probe(shop_id, platform, True, time.monotonic() - t0, len(first),
                     f"read {len(first)} order(s) of the last hour ({connector.requests_made} request(s));"
                     f" the next night reads from {start.astimezone(shop.tz):%Y-%m-%d %H:%M}")
    except ExtractError as exc:
        return Probe(shop_id, platform, False, time.monotonic() - t0, None, str(exc))
