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
    """Every CRM_INTRADAY_MINUTES in CRM_INTRADAY_HOURS (08:00 to 21:59 in the shops' zone: the
    first tick reads the night's payments before the day's first messages go out at 09:00).
    A seller with shops in other zones widens the hours so their transactional messages leave
    in those shops' daytime too; the nightly's own hour is best left out."""
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    settings = get_settings()
    minutes, spec = settings.intraday_minutes, settings.intraday_hours
    hours = intraday_hours(spec)
    if 60 % minutes == 0:
        return CronTriggerTimetable(f"*/{minutes} {spec} * * *", timezone=settings.timezone)
    if minutes % 60 == 0:  # every n hours, counted from the first hour given
        every = minutes // 60
        picked = [h for h in hours if (h - hours[0]) % every == 0]
        return CronTriggerTimetable(f"0 {','.join(map(str, picked))} * * *", timezone=settings.timezone)
    # an interval that does not fit the hour (45, 90 minutes) runs around the clock
    return DeltaTriggerTimetable(timedelta(minutes=minutes))


def intraday_hours(spec: str) -> list[int]:
    """CRM_INTRADAY_HOURS ("8-21", "4-23", "0-1,4-23") as the sorted hours it names."""
    hours: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        if not (lo.isdigit() and (hi.isdigit() or not hi)) or not 0 <= int(lo) <= int(hi or lo) <= 23:
            raise ValueError(f"CRM_INTRADAY_HOURS={spec!r}: expected hours 0-23 as ranges and lists, e.g. 8-21 or 4-23")
        hours.update(range(int(lo), int(hi or lo) + 1))
    return sorted(hours)


def push_timetable():
    """Every CRM_PUSH_MINUTES around the clock: messages wait for their send time and for their
    recipient's waking hours (shops in other zones too), not for a run of the nightly DAG."""
    from airflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

    settings = get_settings()
    minutes = settings.push_minutes
    if 60 % minutes == 0:
        return CronTriggerTimetable(f"*/{minutes} * * * *", timezone=settings.timezone)
    return DeltaTriggerTimetable(timedelta(minutes=minutes))
