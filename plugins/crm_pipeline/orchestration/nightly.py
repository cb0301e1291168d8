"""What crm_nightly is made of (dags/crm_nightly.py only wires it): its documentation
page, its params and its two task groups."""

from __future__ import annotations

from airflow.sdk import Param, task_group

from crm_pipeline.orchestration import tasks as t
from crm_pipeline.platforms import PLATFORMS

NIGHTLY_DOC = """
# crm_nightly — the nightly CRM pipeline

Closes one **business day** (the local date of the logical date in the shop
time zone, or the `as_of_date` param) and has the day's work ready before 08:00:

1. **extract** — every shop in `config/shops.yml`, mapped per platform
   (Taobao/Tmall, JD, Shopify, WooCommerce, Youzan) plus spreadsheets from the intake
   inbox; incremental from the warehouse watermark; outlets = raw tables.
   Malformed records go to `raw.quarantine` with their reason, never dropped
   (`crm quarantine list` shows what is still open).
   A shop that cannot be read (after retries) does not stop the others: with
   `CRM_ON_SHOP_FAILURE=continue` (default) **check_extraction** lets the night go on,
   its data stays as of its last good run, and messages that its missing data could
   contradict (payment reminders for its orders; cadence, repurchase and care
   messages for its buyers) are held. **finish_night** then fails the run, naming
   the shop: fix it and clear the failed extract task with its downstream.
   `stop` (or `on_failure: stop` on that shop in shops.yml) ends the night at
   check_extraction, as does no API shop being current.
2. **quality_raw** — Great Expectations `raw_landing` checkpoint; a critical
   failure stops the run here: nothing is modelled or sent.
3. **transform** — the dbt project via Cosmos (model, then its tests), then
   the dbt unit tests; then **customer_clv** (BG/NBD + Gamma-Gamma per customer into
   `marts.customer_clv`, and the nightly backtest).
4. **outreach** — triggers and campaigns planned into the ledger, the
   `outbound` GX checkpoint, the push to the gateways; the call list.
5. **report** — `out/<date>/report.html` (shops not current are named at the top).

Params: `as_of_date` (YYYY-MM-DD), `shops` (subset), `backfill_from` /
`backfill_to` (re-extract a date range through the platforms' backfill APIs).
A run triggered by hand (▶ in the UI) closes the last business day that is over;
`as_of_date` chooses another. Switching the DAG on does not run the night that has
passed: the first scheduled run is the coming 02:30.
Reruns of a day are idempotent: same tables, lists and ledger, nothing sent twice.
"""

NIGHTLY_PARAMS = {
    "as_of_date": Param(None, type=["null", "string"], description="business day to close (YYYY-MM-DD)"),
    "shops": Param([], type="array", description="only these shop_ids (default: all)"),
    "backfill_from": Param(None, type=["null", "string"], description="re-extract from this day"),
    "backfill_to": Param(None, type=["null", "string"], description="... up to this day"),
}


@task_group(group_id="extract")
def extract_group(as_of):
    """One mapped extract task per platform, over that platform's shops."""
    for platform in PLATFORMS:
        t.extract_task(platform).partial(as_of=as_of).expand(shop_id=t.shops_of.override(
            task_id=f"shops_{platform}")(platform))


@task_group(group_id="outreach")
def outreach_group(as_of):
    """Plan, the call list, the outbound checkpoint, then the push."""
    planned = t.plan_outreach(as_of)
    outbound = t.quality_check.override(task_id="quality_outbound")("outbound", as_of)
    calls = t.call_list(as_of)
    planned >> calls >> outbound >> t.push_messages(as_of)
