"""Airflow plugin: registers the pipeline's nightly timetable (crm_pipeline/orchestration/timetables.py).

Airflow serializes a DAG's timetable by its import path and accepts only its own classes
and those a plugin registers; the scheduler and dag-processor load this file from the
plugins folder.
"""

from airflow.plugins_manager import AirflowPlugin
from crm_pipeline.orchestration.timetables import NightlyTimetable


class CrmTimetablesPlugin(AirflowPlugin):
    name = "crm_timetables"
    timetables = [NightlyTimetable]
