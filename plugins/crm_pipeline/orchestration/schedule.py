"""Schedules in the shop time zone (default Asia/Shanghai)."""

from __future__ import annotations

from datetime import timedelta

from crm_pipeline.settings import get_settings


def nightly_timetable():
    """A cron *data interval*: the run for business day D starts at D+1 02:30 local
    with logical_date = D 02:30 local, so the as-of date is the logical date's local day.
    Switching the DAG on does not run the night that has passed (timetables.py)."""
    from crm_pipeline.orchestration.timetables import NightlyTimetable

    settings = get_settings()
    return NightlyTimetable(settings.nightly_cron, timezone=settings.timezone)


def intraday_timetable():
    """Every CRM_INTRADAY_MINUTES from 08:00 to 21:59 in the shops' zone (the first tick reads
    the night's payments before the day's first messages go out at 09:00)."""
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    settings = get_settings()
    minutes = settings.intraday_minutes
    if 60 % minutes == 0:
        return CronTriggerTimetable(f"*/{minutes} 8-21 * * *", timezone=settings.timezone)
    if minutes % 60 == 0:
        return CronTriggerTimetable(f"0 8-21/{minutes // 60} * * *", timezone=settings.timezone)
    return DeltaTriggerTimetable(timedelta(minutes=minutes))


def push_timetable():
    """Every CRM_PUSH_MINUTES around the clock: messages wait for their send time and for their
    recipient's waking hours (shops in other zones too), not for a run of the nightly DAG."""
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    settings = get_settings()
    minutes = settings.push_minutes
    if 60 % minutes == 0:
        return CronTriggerTimetable(f"*/{minutes} * * * *", timezone=settings.timezone)
    return DeltaTriggerTimetable(timedelta(minutes=minutes))
