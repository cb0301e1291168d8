"""The extraction driver: windows -> pages -> lander, one transaction per run.

* ``nightly``: from the warehouse watermark minus the shop's overlap (or the
  shop's first day) up to the end of the business day in the shop's zone, or
  now if that is earlier; advances the watermark.
* ``intraday``: same, up to "now" (transactional triggers need fresh orders).
* ``backfill``: an explicit date range through the platform's backfill API;
  leaves the watermark alone.

Every window is read, then checked against the platform's own count; if the
window changed while we paged (an order updated mid-read shifts offset pages),
the pass is thrown away and read again. Either everything lands and the
watermark moves, or nothing does and the batch row says why.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from crm_pipeline import clock
from crm_pipeline.errors import BadInputFile, UsageError
from crm_pipeline.extract.base import (
    ConfigError,
    Connector,
    ExtractError,
    ShopConfig,
    Window,
    local_day_bounds,
    prefetched,
)
from crm_pipeline.load.landing import Lander, LandingCounts
from crm_pipeline.pii import get_logger

log = get_logger(__name__)
MAX_PASSES = 4
PREFETCH_PAGES = 4  # pages read ahead of the lander (memory stays bounded by this)


class ShopUsageError(ExtractError, UsageError):
    """The wrong kind of shop for the operation, or a file that is not there (exit 2)."""


def connector_for(shop: ShopConfig, **kwargs) -> Connector:
    from crm_pipeline.extract.jd import JdConnector
    from crm_pipeline.extract.shopify import ShopifyConnector
    from crm_pipeline.extract.taobao import TaobaoConnector
    from crm_pipeline.extract.woocommerce import WooCommerceConnector
    from crm_pipeline.extract.youzan import YouzanConnector

    classes = {
        "taobao": TaobaoConnector,
        "jd": JdConnector,
        "shopify": ShopifyConnector,
        "woocommerce": WooCommerceConnector,
        "youzan": YouzanConnector,
    }
    if shop.platform not in classes:
        raise ShopUsageError(shop.platform, shop.shop_id, f"no API connector for platform {shop.platform!r}"
                           + (" (spreadsheet shops are read with `crm intake`)" if shop.platform == "intake" else ""))
    return classes[shop.platform](shop, **kwargs)


@dataclass
class BatchResult:
    batch_id: str
    platform: str
    shop_id: str
    mode: str
    window_start: datetime | None
    window_end: datetime | None
    pages: int = 0
    requests: int = 0
    passes_retried: int = 0
    counts: LandingCounts = field(default_factory=LandingCounts)
    seconds: float = 0.0
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # a sample: (order id, reason)

    def summary(self) -> str:
        c = self.counts
        return (f"{self.platform}/{self.shop_id} {self.mode}: received={c.received} landed={c.landed} "
                f"new_versions={c.new_versions} quarantined={c.quarantined} pages={self.pages} "
                f"in {self.seconds:.1f}s")


def _batch_start(url: str, batch_id: str, shop: ShopConfig, mode: str, start, end, source: str) -> None:
    from crm_pipeline.warehouse import connect

    with connect(url, autocommit=True) as conn:
        # a batch left 'running' by a killed process is marked so, never resumed
        conn.execute(
            "update ops.load_batches set status = 'abandoned', finished_at = now(),"
            " error = 'process ended without finishing' where platform = %s and shop_id = %s"
            " and status = 'running' and started_at < now() - interval '6 hours'",
            (shop.platform, shop.shop_id),
        )
        conn.execute(
            "insert into ops.load_batches (batch_id, platform, shop_id, mode, window_start, window_end, source)"
            " values (%s, %s, %s, %s, %s, %s, %s)",
            (batch_id, shop.platform, shop.shop_id, mode, start, end, source),
        )


def _batch_failed(url: str, batch_id: str, error: str) -> None:
    from crm_pipeline.warehouse import connect

    try:
        with connect(url, autocommit=True) as conn:
            conn.execute(
                "update ops.load_batches set status = 'failed', finished_at = now(), error = %s where batch_id = %s",
                (error[:2000], batch_id),
            )
    except Exception:  # the warehouse itself may be what failed
        log.exception("could not record failure of batch %s", batch_id)


def _batch_done(conn, result: BatchResult) -> None:
    c = result.counts
    conn.execute(
        "update ops.load_batches set status = 'succeeded', finished_at = now(), pages = %s, received = %s,"
        " landed = %s, new_versions = %s, quarantined = %s where batch_id = %s",
        (result.pages, c.received, c.landed, c.new_versions, c.quarantined, result.batch_id),
    )


def read_watermark(conn, platform: str, shop_id: str) -> datetime | None:
    row = conn.execute(
        "select watermark from ops.watermarks where platform = %s and shop_id = %s", (platform, shop_id)
    ).fetchone()
    return row[0] if row else None


def plan_range(shop: ShopConfig, mode: str, watermark: datetime | None, as_of: date | None = None,
               start_date: date | None = None, end_date: date | None = None,
               now: datetime | None = None) -> tuple[datetime, datetime]:
    """The [start, end] a run reads (see module doc)."""
    tz = shop.tz
    overlap = timedelta(hours=shop.overlap_hours)
    if mode == "backfill":
        if not start_date or not end_date or end_date < start_date:
            raise ExtractError(shop.platform, shop.shop_id, "backfill needs --from <= --to")
        return local_day_bounds(start_date, tz)[0], local_day_bounds(end_date, tz)[1]
    current = now or clock.now()
    if mode == "intraday":
        end = current
    else:
        if as_of is None:
            raise ExtractError(shop.platform, shop.shop_id, "nightly run needs an as-of date")
        # never past now: a shop west of the schedule's zone (Los Angeles, read at 02:30 Shanghai)
        # is still inside its business day; its remaining hours are read the next night
        end = min(local_day_bounds(as_of, tz)[1], current)
    first = local_day_bounds(shop.start_date, tz)[0]
    if watermark is None:
        start = first  # R2: a shop's first run reads from the day it opened
    else:
        # never read past the end: a rerun of an older date re-reads its own overlap
        start = max(first, min(watermark, end) - overlap)
    return start, end


def run_extract(shop: ShopConfig, mode: str = "nightly", as_of: date | None = None,
                start_date: date | None = None, end_date: date | None = None, url: str | None = None,
                connector: Connector | None = None, now: datetime | None = None,
                verify_counts: bool = True) -> BatchResult:
    """Extract and land one shop; returns what happened. Raises ExtractError on failure."""
    import psycopg

    from crm_pipeline.warehouse import warehouse_url

    url = url or warehouse_url()
    connector = connector or connector_for(shop)
    t0 = time.monotonic()
    batch_id = f"{shop.platform}-{shop.shop_id}-{mode}-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url) as probe:
        watermark = read_watermark(probe, shop.platform, shop.shop_id)
    start, end = plan_range(shop, mode, watermark, as_of, start_date, end_date, now)
    result = BatchResult(batch_id, shop.platform, shop.shop_id, mode, start, end)
    _batch_start(url, batch_id, shop, mode, start, end, shop.base_url)
    try:
        connector.check_history(start, mode, now or clock.now())
        with psycopg.connect(url) as conn:
            lander = Lander(conn, shop.platform, shop.shop_id, batch_id,
                            max_amount=_max_amount(shop), start_rule=start_date_rule(shop))
            windows = connector.windows(start, end, "backfill" if mode == "backfill" else "nightly")
            _read_windows(connector, lander, windows, mode, result, verify_counts)
            result.counts = lander.finalize()
            if mode != "backfill":
                conn.execute(
                    "insert into ops.watermarks (platform, shop_id, watermark, batch_id) values (%s, %s, %s, %s)"
                    " on conflict (platform, shop_id) do update set"
                    " watermark = greatest(ops.watermarks.watermark, excluded.watermark),"
                    " batch_id = excluded.batch_id, updated_at = now()",
                    (shop.platform, shop.shop_id, end, batch_id),
                )
            result.requests = connector.requests_made
            result.seconds = time.monotonic() - t0
            _batch_done(conn, result)
            conn.commit()
    except ExtractError as exc:
        _batch_failed(url, batch_id, str(exc))
        raise
    except psycopg.Error as exc:
        _batch_failed(url, batch_id, f"warehouse error: {exc}")
        raise ExtractError(shop.platform, shop.shop_id, f"warehouse error while landing: {exc}") from exc
    except Exception as exc:
        _batch_failed(url, batch_id, f"{exc.__class__.__name__}: {exc}")
        raise ExtractError(shop.platform, shop.shop_id, f"{exc.__class__.__name__}: {exc}") from exc
    log.info("%s", result.summary())
    return result


def _window_stream(connector: Connector, windows: list[Window], first: int, api_mode: str, verify: bool):
    """("page", i, records) for every page of windows[first:], then ("end", i, expected count)."""
    for i in range(first, len(windows)):
        for page in connector.fetch(windows[i], api_mode):
            yield "page", i, page
        yield "end", i, connector.count(windows[i], api_mode) if verify else None


def _read_windows(connector: Connector, lander: Lander, windows: list[Window], mode: str, result: BatchResult,
                  verify: bool) -> None:
    """Stage every window, pages fetched ahead in a background thread across window
    boundaries (a nightly Taobao history is hundreds of one-page windows). A window
    whose pages fall short of the platform's count stops the read-ahead and is read
    again on its own; the read-ahead then resumes after it."""
    api_mode = "backfill" if mode == "backfill" else "nightly"
    pass_no, i = 0, 0
    progress = Progress(connector, len(windows))
    while i < len(windows):
        stream = prefetched(_window_stream(connector, windows, i, api_mode, verify), depth=PREFETCH_PAGES)
        current = -1
        try:
            for kind, idx, item in stream:
                if idx != current:  # first page (or end) of the next window: a new pass
                    current, pass_no = idx, pass_no + 1
                if kind == "page":
                    lander.stage(item, pass_no)
                    result.pages += 1
                    progress.page(idx, result.pages, len(item))
                    continue
                i = idx + 1
                if verify and not _window_complete(connector, lander, windows[idx], pass_no, item, 1, result):
                    pass_no = _read_window(connector, lander, windows[idx], api_mode, pass_no, result, first_attempt=2)
                    break  # resume the read-ahead after the re-read window
        finally:
            stream.close()


class Progress:
    """A line every ``every`` seconds while a shop is read (a backfill takes minutes): windows, pages, orders."""

    def __init__(self, connector: Connector, windows: int, every: float = 10.0):
        self.connector, self.windows, self.every = connector, windows, every
        self.records = 0
        self.started = self.last = time.monotonic()

    def page(self, window: int, pages: int, records: int) -> None:
        self.records += records
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("[%s/%s] reading: window %d of %d, %d pages, %d orders so far (%.0fs)",
                     self.connector.platform, self.connector.shop.shop_id, window + 1, self.windows, pages,
                     self.records, now - self.started)


def _window_complete(connector: Connector, lander: Lander, window: Window, pass_no: int, expected: int | None,
                     attempt: int, result: BatchResult) -> bool:
    _rows, distinct = lander.pass_stats(pass_no)
    if expected is None or distinct >= expected:
        return True
    log.warning("[%s/%s] window %s: read %d distinct orders but the platform counts %d "
                "(changed while paging); re-reading (%d/%d)", connector.platform, connector.shop.shop_id,
                window, distinct, expected, attempt, MAX_PASSES)
    result.passes_retried += 1
    lander.discard_pass(pass_no)
    return False


def _read_window(connector: Connector, lander: Lander, window: Window, api_mode: str, pass_no: int,
                 result: BatchResult, first_attempt: int = 1) -> int:
    """Read one window again until its pages match the platform's count (verified reads only)."""
    for attempt in range(first_attempt, MAX_PASSES + 1):
        pass_no += 1
        for page in prefetched(connector.fetch(window, api_mode)):
            lander.stage(page, pass_no)
            result.pages += 1
        if _window_complete(connector, lander, window, pass_no, connector.count(window, api_mode), attempt, result):
            return pass_no
    raise connector.fail(f"window {window} kept changing while paging ({MAX_PASSES} reads); nothing landed")


BEFORE_START_DATE = ("quarantine", "land")


def start_date_rule(shop: ShopConfig):
    """What happens to an order dated before the shop's start_date (validate.StartDateRule):
    ``options.before_start_date``, by default ``quarantine`` for spreadsheet shops and
    ``land`` for API shops."""
    from crm_pipeline.load.validate import StartDateRule
    from crm_pipeline.platforms import PLATFORMS

    default = "land" if PLATFORMS[shop.platform].kind == "api" else "quarantine"
    choice = shop.options.get("before_start_date", default)
    if choice not in BEFORE_START_DATE:
        raise ConfigError(shop.platform, shop.shop_id, f"options.before_start_date is {choice!r}; expected "
                                                       f"{' or '.join(BEFORE_START_DATE)}")
    if choice == "land":
        return None
    return StartDateRule(shop.shop_id, datetime.combine(shop.start_date, datetime.min.time(), shop.tz))


def _max_amount(shop: ShopConfig):
    from decimal import Decimal

    from crm_pipeline.load.validate import MAX_AMOUNT

    value = shop.options.get("max_order_amount")
    return Decimal(str(value)) if value else MAX_AMOUNT


# -- intake -------------------------------------------------------------------------
class IntakeRejected(ExtractError, BadInputFile):
    """An intake file refused as a whole (exit 4); its batch is marked failed, nothing landed."""




def run_intake(path, shop: ShopConfig, mapping: dict[str, str] | None = None, url: str | None = None,
               force: bool = False) -> BatchResult:
    """Import one spreadsheet into raw.intake_orders (idempotent; see extract/intake.py)."""
    from pathlib import Path

    import psycopg

    from crm_pipeline.extract.intake import IntakeError, file_digest, read_intake
    from crm_pipeline.warehouse import warehouse_url

    path = Path(path)
    if shop.platform != "intake":
        raise ShopUsageError(shop.platform, shop.shop_id, f"shop {shop.shop_id} is a {shop.platform} shop, not a "
                                                           "spreadsheet (intake) shop")
    if not path.is_file():
        raise ShopUsageError("intake", shop.shop_id, f"no such file: {path}")
    url = url or warehouse_url()
    t0 = time.monotonic()
    digest = file_digest(path)
    batch_id = f"intake-{shop.shop_id}-{uuid.uuid4().hex[:12]}"
    result = BatchResult(batch_id, "intake", shop.shop_id, "intake", None, None)
    _batch_start(url, batch_id, shop, "intake", None, None, str(path))
    try:
        with psycopg.connect(url) as conn:
            lander = Lander(conn, "intake", shop.shop_id, batch_id, max_amount=_max_amount(shop),
                            start_rule=start_date_rule(shop))
            page: list[dict] = []
            for record in read_intake(path, shop.shop_id, mapping, shop.tz):
                page.append(record)
                if len(page) >= 1000:
                    lander.stage(page, 1)
                    result.pages += 1
                    page = []
            if page:
                lander.stage(page, 1)
                result.pages += 1
            result.counts = lander.finalize()
            result.rejected = lander.rejected
            conn.execute(
                "insert into ops.intake_files (shop_id, file_name, sha256, batch_id, received, landed, quarantined)"
                " values (%s, %s, %s, %s, %s, %s, %s) on conflict (shop_id, sha256) do update set"
                " file_name = excluded.file_name, batch_id = excluded.batch_id",
                (shop.shop_id, path.name, digest, batch_id, result.counts.received, result.counts.landed,
                 result.counts.quarantined),
            )
            result.seconds = time.monotonic() - t0
            _batch_done(conn, result)
            conn.commit()
    except IntakeError as exc:
        _batch_failed(url, batch_id, str(exc))
        raise IntakeRejected("intake", shop.shop_id, str(exc)) from exc
    except ExtractError as exc:
        _batch_failed(url, batch_id, str(exc))
        raise
    except Exception as exc:
        _batch_failed(url, batch_id, f"{exc.__class__.__name__}: {exc}")
        raise ExtractError("intake", shop.shop_id, f"{path.name}: {exc.__class__.__name__}: {exc}") from exc
    log.info("%s", result.summary())
    return result


def pending_intake_files(shop: ShopConfig, inbox, url: str | None = None, conn=None) -> list:
    """Files in <inbox>/<shop_id>/ whose content has not been imported yet (``conn``: on this connection)."""
    from pathlib import Path

    from crm_pipeline.extract.intake import file_digest
    from crm_pipeline.warehouse import connect

    folder = Path(inbox) / shop.shop_id
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".xlsx", ".csv") and not p.name.startswith("~$"))
    if not files:
        return []
    sql = "select sha256 from ops.intake_files where shop_id = %s"
    if conn is not None:
        done = {r[0] for r in conn.execute(sql, (shop.shop_id,))}
    else:
        with connect(url) as own:
            done = {r[0] for r in own.execute(sql, (shop.shop_id,))}
    return [p for p in files if file_digest(p) not in done]


def utcnow() -> datetime:
    return datetime.now(UTC)
