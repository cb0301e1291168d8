"""Schedules in the shop time zone (default Asia/Shanghai)."""

from __future__ import annotations

from datetime import timedelta

from crm_pipeline.settings import get_settings


def nightly_timetable():
    """A cron *data interval*: the run for business day D starts at D+1 02:30 local
    with logical_date = D 02:30 local, so the as-of date is the logical date's local day."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    settings = get_settings()
    return CronDataIntervalTimetable(settings.nightly_cron, timezone=settings.timezone)


def intraday_timetable():
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    settings = get_settings()
    minutes = settings.intraday_minutes
    if 60 % minutes == 0:
        return CronTriggerTimetable(f"*/{minutes} 8-21 * * *", timezone=settings.timezone)
    return DeltaTriggerTimetable(timedelta(minutes=minutes))
