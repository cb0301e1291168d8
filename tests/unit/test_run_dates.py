"""Which business day a nightly run closes, however it was started (scheduled, `dags test`, the UI's ▶)."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.pipeline import as_of_from_logical

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def clock(monkeypatch):
    def at(moment: str):
        monkeypatch.setenv("CRM_NOW", moment)

    return at


def test_a_scheduled_run_closes_its_logical_day(clock):
    clock("2026-11-21T02:30:00+08:00")  # the run for D starts at D+1 02:30 with logical date D 02:30
    assert as_of_from_logical(datetime(2026, 11, 20, 2, 30, tzinfo=SH)) == date(2026, 11, 20)


def test_a_run_for_a_past_day_closes_that_day(clock):
    clock("2026-12-06T15:00:00+08:00")  # `airflow dags test crm_nightly 2026-11-20` weeks later
    assert as_of_from_logical(datetime(2026, 11, 20, 2, 30, tzinfo=SH)) == date(2026, 11, 20)


def test_a_run_triggered_by_hand_closes_the_last_day_that_is_over(clock):
    clock("2026-12-06T15:00:00+08:00")  # ▶ in the UI: logical date "now"
    assert as_of_from_logical(datetime(2026, 12, 6, 7, 0, tzinfo=ZoneInfo("UTC"))) == date(2026, 12, 5)
    # Airflow 3 may leave the logical date empty: the run's run_after decides
    assert as_of_from_logical(None, run_after=datetime(2026, 12, 6, 7, 0, tzinfo=ZoneInfo("UTC"))) == date(2026, 12, 5)
    assert as_of_from_logical(None, override="2026-11-30") == date(2026, 11, 30)
    with pytest.raises(ValueError):
        as_of_from_logical(None)
