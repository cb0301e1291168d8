"""The nightly timetable: Airflow's cron data interval, without a run for the night that has passed
when the DAG is first switched on.

Airflow's ``CronDataIntervalTimetable`` with ``catchup=False`` schedules the latest complete
interval as soon as the DAG is unpaused: switching crm_nightly on at 15:00 ran (and sent)
yesterday's night there and then. Until the DAG has had a scheduled run, this one starts
with the interval in progress, so the first scheduled run is the coming 02:30. After that it
is Airflow's own rule (a scheduler down at 02:30 still runs the night when it comes back).
Registered with Airflow by ``plugins/crm_timetables.py``: a custom timetable must be, to be
serialized.
"""

from __future__ import annotations

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable


class NightlyTimetable(CronDataIntervalTimetable):
    description = "every night, the first run the night after the DAG is switched on"

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: TimeRestriction) -> DagRunInfo | None:
        if last_automated_data_interval is not None or restriction.catchup:
            return super().next_dagrun_info(last_automated_data_interval=last_automated_data_interval,
                                            restriction=restriction)
        start = self._align_to_prev(pendulum.now("UTC"))  # the interval in progress
        if restriction.earliest is not None and start < restriction.earliest:
            start = self._align_to_next(restriction.earliest)
        if restriction.latest is not None and start > restriction.latest:
            return None
        return DagRunInfo.interval(start=start, end=self._get_next(start))
