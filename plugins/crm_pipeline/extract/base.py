"""What every platform connector shares: windows, pages, retries, clear errors.

A connector turns a time window into pages of raw order records (dicts exactly
as the platform sent them). It knows the wire format, authentication, signing,
paging and throttling of its platform, and nothing about the warehouse: the
driver in ``extract/run.py`` hands pages to the lander.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from crm_pipeline.pii import get_logger, redact

log = get_logger(__name__)
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class ExtractError(RuntimeError):
    """A failure that names platform, shop and what was being fetched."""

    def __init__(self, platform: str, shop_id: str, message: str):
        self.platform = platform
        self.shop_id = shop_id
        self.message = redact(message)
        super().__init__(f"[{platform}/{shop_id}] {self.message}")


class ConfigError(ExtractError):
    pass


class Retryable(Exception):
    """Raised inside a request attempt: wait ``wait`` seconds (or back off) and retry."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass(frozen=True)
class ShopConfig:
    shop_id: str
    platform: str
    name: str = ""
    timezone: str = "Asia/Shanghai"
    start_date: date = date(2024, 1, 1)
    base_url: str = ""
    credentials: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    overlap_hours: float = 24.0
    on_failure: str | None = None  # "stop" | "continue": overrides CRM_ON_SHOP_FAILURE for this shop (D45)
    country: str = ""  # ISO 3166 code of where the shop's buyers are ("" = not said; consent law follows them)
    consent_required: bool = False  # marketing needs the buyer's opt-in (GDPR, CAN-SPAM/TCPA, CASL)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def credential(self, name: str) -> str:
        value = self.credentials.get(name)
        if not value:
            raise ConfigError(
                self.platform,
                self.shop_id,
                f"missing credential {name!r}: set it in the environment variable named in config/shops.yml "
                f"(or the Airflow connection) for this shop",
            )
        return value


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def split_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """Cut [start, end] into consecutive windows no longer than ``size``."""
    windows = []
    cursor = start
    while cursor < end:
        nxt = min(cursor + size, end)
        windows.append(Window(cursor, nxt))
        cursor = nxt
    return windows


@dataclass
class RetryPolicy:
    attempts: int = 6
    backoff: float = 0.25
    max_backoff: float = 8.0
    timeout: float = 30.0


class Connector(ABC):
    """Base class; subclasses implement the platform's wire format."""

    platform: str = ""
    #: longest window the API accepts per query (nightly mode / backfill mode)
    max_window: timedelta = timedelta(days=31)
    max_backfill_window: timedelta = timedelta(days=31)

    def __init__(self, shop: ShopConfig, session=None, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):

        self.shop = shop
        self.session = session or _session_for(shop.base_url)
        self.retry = retry or RetryPolicy(timeout=float(shop.options.get("timeout", 30)))
        self.sleep = sleep
        self.requests_made = 0
        self._count_lock = threading.Lock()  # calls may run in parallel threads (decrypt batches)
        self._rng = random.Random(hash((shop.platform, shop.shop_id)) & 0xFFFF)

    # -- interface ----------------------------------------------------------------
    def windows(self, start: datetime, end: datetime, mode: str = "nightly") -> list[Window]:
        size = self.max_backfill_window if mode == "backfill" else self.max_window
        return split_windows(start, end, size)

    @abstractmethod
    def fetch(self, window: Window, mode: str = "nightly") -> Iterator[list[dict]]:
        """Yield the pages of raw records modified (or, for backfill, created) in the window."""

    def count(self, window: Window, mode: str = "nightly") -> int | None:
        """How many distinct orders the platform says the window holds (None: unknown)."""
        return None

    def enrich(self, records: list[dict]) -> list[dict]:
        """Second-call enrichment of a page (e.g. TOP oaid decrypt). Default: none."""
        return records

    def check_history(self, start: datetime, mode: str, now: datetime) -> None:
        """Fail before reading when the platform would not serve orders back to ``start``.

        Platforms keep only part of a shop's history behind their APIs (Taobao's
        backfill API the last 3 months; Shopify 60 days without ``read_all_orders``).
        Reading past that would "succeed" with the older orders silently missing.
        Default: no known limit.
        """
        return None

    # -- HTTP with retries -----------------------------------------------------------
    def post_form(self, params: dict[str, str]):
        """POST ``params`` as an urlencoded form (TOP and JD routers).

        The body is encoded here in one ``urlencode`` call: requests' own form
        encoding walks the dict through several generic helpers and cost more
        CPU per call than parsing a page of orders.
        """
        return self.session.post(self.shop.base_url, data=urlencode(params), headers=_FORM,
                                 timeout=self.retry.timeout)

    def fail(self, message: str) -> ExtractError:
        return ExtractError(self.platform, self.shop.shop_id, message)

    def request(self, what: str, send: Callable[[], Any], check: Callable[[Any], Any]) -> Any:
        """Run ``send`` (one HTTP call) and ``check`` (parse/validate) with retries.

        Transient failures (connection errors, timeouts, 429/5xx, throttling
        replies, truncated bodies) are retried with exponential backoff or the
        wait the platform asks for; anything else fails at once, naming
        platform, shop and ``what``.
        """
        import requests

        last = "no attempt"
        for attempt in range(1, self.retry.attempts + 1):
            wait: float | None = None
            try:
                with self._count_lock:
                    self.requests_made += 1
                response = send()
                return check(response)
            except Retryable as exc:
                last, wait = exc.reason, exc.wait
            except requests.Timeout:
                last = f"timed out after {self.retry.timeout:g}s"
            except requests.ConnectionError as exc:
                last = f"cannot connect to {self.shop.base_url or 'the API'} ({exc.__class__.__name__})"
            if attempt == self.retry.attempts:
                break
            if wait is None:
                wait = min(self.retry.max_backoff, self.retry.backoff * 2 ** (attempt - 1))
                wait *= 0.5 + self._rng.random()  # jitter
            log.warning("[%s/%s] %s: %s; retry %d/%d in %.2fs", self.platform, self.shop.shop_id, what, last,
                        attempt, self.retry.attempts - 1, wait)
            self.sleep(wait)
        raise self.fail(f"{what}: {last} (gave up after {self.retry.attempts} attempts)")

    def parse_json(self, response, what: str) -> Any:
        """Decode a body; a truncated or non-JSON body is retryable."""
        import orjson

        if response.status_code == 429:
            raise Retryable("HTTP 429 throttled", _retry_after(response))
        if response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.status_code >= 400:
                raise self.fail(f"{what}: HTTP {response.status_code}: {response.text[:200]}") from None
            raise Retryable(f"malformed JSON ({len(response.content)} bytes)") from None
        if response.status_code in (401, 403):
            raise self.fail(f"{what}: authentication rejected (HTTP {response.status_code}): {str(body)[:200]}; "
                            "check this shop's credentials")
        if response.status_code >= 400:
            raise self.fail(f"{what}: HTTP {response.status_code}: {str(body)[:300]}")
        return body


T = TypeVar("T")


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead.

    The next page's HTTP round trip (and the platform's think time) overlaps with
    landing the current one; memory stays bounded by ``depth`` pages. An error in
    the producer is raised here, in the consumer; if the consumer stops early the
    producer stops after its current item.
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((None, item)):
                    return
            put((None, done))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((exc, None))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            exc, item = box.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
POOL_THREADS = 16  # shared by every connector of the process; each call uses at most its ``workers``


def _forget_pool() -> None:
    """A forked child (an Airflow task) starts its own pool: the parent's threads are not in it."""
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="call")
        return _POOL


def in_parallel(calls: Iterable[Callable[[], T]], workers: int) -> list[T]:
    """Run independent calls (e.g. a page's decrypt batches) at most ``workers`` at
    a time; results in call order; the first error is raised after all finished.

    The threads are the process's shared pool, not a pool per call: a Tmall night is
    ~900 pages, and starting and joining four threads per page cost 1.8 ms of the
    reading thread's wall time each (D49). ``workers`` runners take the next call as
    they finish one.
    """
    calls = list(calls)
    if workers <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    results: list = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)
    pending = iter(range(len(calls)))
    lock = threading.Lock()

    def runner() -> None:
        while True:
            with lock:
                i = next(pending, None)
            if i is None:
                return
            try:
                results[i] = calls[i]()
            except BaseException as exc:  # raised in the caller, after the others finished
                errors[i] = exc

    for future in [_pool().submit(runner) for _ in range(min(workers, len(calls)))]:
        future.result()
    for exc in errors:
        if exc is not None:
            raise exc
    return results


def _session_for(base_url: str):
    """A session with the environment's proxy / CA bundle / netrc settings read once.

    requests re-reads them from ``os.environ`` on every call (``trust_env``), which
    cost more CPU than parsing the orders; a connector talks to one base URL, so
    resolving them once for it is equivalent.
    """
    import requests

    session = requests.Session()
    if base_url:
        env = session.merge_environment_settings(base_url, {}, None, None, None)
        session.proxies.update(env.get("proxies") or {})
        session.verify = env.get("verify", True)
        session.auth = requests.utils.get_netrc_auth(base_url)
        session.trust_env = False
    return session


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tz)
    return start, start + timedelta(days=1)


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's end)."""
    import calendar

    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
