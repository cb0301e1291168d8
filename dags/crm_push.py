"""
# crm_push — every planned message goes out in its window, with no one at the keyboard

The nightly DAG plans the day's messages at 02:30, inside quiet hours: cadence, birthday,
holiday, repurchase, care and campaign messages wait in `outreach.message_ledger` for their
send time (09:00–15:00 in the recipient's own time zone), and payment reminders planned late
in the evening wait for the morning. This DAG sends whatever is due, every
`CRM_PUSH_MINUTES` (default 10) around the clock:

- a message goes out only outside quiet hours **in its recipient's zone** (their shop's,
  `config/shops.yml`), so a customer of a shop abroad is reached in their daytime;
- just before a batch is claimed its reason is checked again against the latest facts
  (paid, refunded, shipped, bought again, opted out): a message whose reason is gone is
  cancelled with that reason in `outreach.suppressions`;
- a message past its window (`valid_hours` in `config/policy.yml`) is cancelled as
  `expired`, never sent late.

Exactly once, whoever else pushes at the same time (the nightly and intraday DAGs, a
retry of this one, `crm push`): rows are claimed with a fencing token and reconciled with
the gateway about the day of the claim (DECISIONLOG D52).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag
from crm_pipeline.orchestration import tasks as t
from crm_pipeline.orchestration.callbacks import notify_failure
from crm_pipeline.orchestration.schedule import push_timetable


@dag(
    dag_id="crm_push",
    schedule=push_timetable(),
    start_date=pendulum.datetime(2024, 6, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "outreach"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1), "on_failure_callback": notify_failure},
)
def crm_push():
    t.push_due()


crm_push()
