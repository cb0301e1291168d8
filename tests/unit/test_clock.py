"""The pipeline clock a test can drive inside one process (issue 30 §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

CN = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def unpinned(monkeypatch):
    from crm_pipeline import clock

    monkeypatch.delenv("CRM_NOW", raising=False)
    clock.set_now(None)
    yield
    clock.set_now(None)


def test_the_clock_is_real_time_unless_pinned():
    from crm_pipeline import clock

    before = datetime.now(UTC)
    assert before <= clock.now() <= datetime.now(UTC)


def test_set_advance_and_frozen_drive_it_and_win_over_crm_now(monkeypatch):
    from crm_pipeline import clock

    monkeypatch.setenv("CRM_NOW", "2026-11-21T10:30:00+08:00")
    assert clock.now() == datetime(2026, 11, 21, 10, 30, tzinfo=CN)
    clock.set_now(datetime(2026, 11, 21, 23, 55, tzinfo=CN))
    assert clock.local_today().isoformat() == "2026-11-21"
    assert clock.advance(timedelta(minutes=10)) == datetime(2026, 11, 22, 0, 5, tzinfo=CN)
    assert clock.local_today().isoformat() == "2026-11-22"
    assert clock.local_today("America/Los_Angeles").isoformat() == "2026-11-21"
    with clock.frozen(datetime(2027, 1, 1, tzinfo=CN)):
        assert clock.now().year == 2027
    assert clock.now() == datetime(2026, 11, 22, 0, 5, tzinfo=CN)
    clock.set_now(None)
    assert clock.now() == datetime(2026, 11, 21, 10, 30, tzinfo=CN)


def test_a_naive_time_is_refused():
    from crm_pipeline import clock

    with pytest.raises(ValueError, match="UTC offset"):
        clock.set_now(datetime(2026, 11, 21, 10, 30))
