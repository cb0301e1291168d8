"""The pipeline's notion of "now".

Real time, unless it is pinned. Two ways to pin it:

* ``CRM_NOW`` (ISO 8601 with offset) for a whole process: the demo and the
  end-to-end tests replay a past business day "as if it were the next morning",
  so what goes out (quiet hours, message windows) does not depend on when
  someone happens to run them;
* :func:`set_now` / :func:`advance` / :func:`frozen` inside one process: a test
  drives the clock through a day and across days (the schedules, midnight,
  quiet hours, a skipped night) without libfaketime, which breaks
  ``time.sleep`` here. The sandbox platforms and gateways read the same clock.

An in-process setting wins over ``CRM_NOW``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

_lock = threading.Lock()
_pinned: datetime | None = None


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{what} must carry a UTC offset, e.g. 2026-11-21T10:30:00+08:00")
    return value


def now() -> datetime:
    with _lock:
        if _pinned is not None:
            return _pinned
    pinned = os.environ.get("CRM_NOW")
    if pinned:
        return _aware(datetime.fromisoformat(pinned), "CRM_NOW")
    return datetime.now(UTC)


def set_now(value: datetime | None) -> None:
    """Pin the clock of this process at ``value`` (aware); None returns to CRM_NOW / real time."""
    global _pinned
    with _lock:
        _pinned = None if value is None else _aware(value, "the pipeline clock")


def advance(delta: timedelta) -> datetime:
    """Move the pinned clock on by ``delta`` (pins it at now() first if it was not pinned)."""
    global _pinned
    current = now()
    with _lock:
        _pinned = current + delta
        return _pinned


@contextmanager
def frozen(value: datetime) -> Iterator[None]:
    """``with clock.frozen(t): ...`` pins the clock at t for the block, then restores it."""
    global _pinned
    with _lock:
        before = _pinned
    set_now(value)
    try:
        yield
    finally:
        with _lock:
            _pinned = before


def local_today(tz: str | None = None) -> date:
    """Today in ``tz`` (default: the shops' default time zone ``CRM_TIMEZONE``), by the pipeline clock.

    A server keeps UTC: at 07:30 in Beijing its own date is still yesterday's, and a
    ``crm push`` or ``crm campaign push`` run then would send for the wrong day.
    """
    from zoneinfo import ZoneInfo

    from crm_pipeline.settings import get_settings

    return now().astimezone(ZoneInfo(tz or get_settings().timezone)).date()
