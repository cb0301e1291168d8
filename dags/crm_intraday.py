"""
# crm_intraday — payment reminders and shipment notices while they matter

Payment reminders (R5) and shipment notices (R6) are useless a day late. Every
`CRM_INTRADAY_MINUTES` (default 30) this DAG pulls the last window of orders
from every API shop, refreshes orders and customers in dbt, and plans and
pushes **only those two transactional types** through the same contact
policy and ledger as the nightly run (so nothing is ever sent twice).

A shop that cannot be read does not hold up the others: their messages go out,
that shop's payment reminders are held (its orders may have been paid since), and
the run then fails naming it (DECISIONLOG D45).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag
from crm_pipeline.orchestration import tasks as t
from crm_pipeline.orchestration.callbacks import notify_failure
from crm_pipeline.orchestration.schedule import intraday_timetable


@dag(
    dag_id="crm_intraday",
    schedule=intraday_timetable(),
    start_date=pendulum.datetime(2024, 6, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "intraday"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1), "on_failure_callback": notify_failure},
)
def crm_intraday():
    day = t.intraday_window()
    shops = t.shops_of.override(task_id="api_shops")(platform="*")
    extracted = t.intraday_extract.partial(as_of=day).expand(shop_id=shops)
    extracted >> t.intraday_transactional(day)


crm_intraday()
