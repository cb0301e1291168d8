"""crm_nightly: the nightly CRM pipeline (its documentation page is
crm_pipeline.orchestration.nightly.NIGHTLY_DOC, shown in the Airflow UI)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag
from crm_pipeline.orchestration import tasks as t
from crm_pipeline.orchestration.callbacks import notify_failure
from crm_pipeline.orchestration.nightly import NIGHTLY_DOC, NIGHTLY_PARAMS, extract_group, outreach_group
from crm_pipeline.orchestration.schedule import nightly_timetable
from crm_pipeline.orchestration.transform import dbt_task_group


@dag(
    dag_id="crm_nightly",
    schedule=nightly_timetable(),
    start_date=pendulum.datetime(2024, 6, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=NIGHTLY_DOC,
    tags=["crm", "nightly"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2), "on_failure_callback": notify_failure},
    params=NIGHTLY_PARAMS,
)
def crm_nightly():
    as_of = t.resolve_as_of()
    prepared = t.prepare_warehouse()
    landed = extract_group(as_of)
    as_of >> prepared >> landed
    checked = t.check_extraction(as_of)
    quality_raw = t.quality_check.override(task_id="quality_raw")("raw_landing", as_of)
    unit_tests = t.dbt_unit_tests()
    landed >> checked >> quality_raw >> dbt_task_group() >> unit_tests >> t.refresh_analyst_views()
    clv = t.customer_clv(as_of)  # after the marts, before outreach (which may use P(alive), CLV)
    unit_tests >> clv >> outreach_group(as_of) >> t.daily_report(as_of) >> t.finish_night(as_of)


crm_nightly()
