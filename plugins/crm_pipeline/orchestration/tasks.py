"""Airflow tasks: thin wrappers around crm_pipeline.pipeline (the only package importing airflow).

Every task takes the business day (``as_of``, an ISO date string from
``resolve_as_of``) so reruns and backfills of a day give the same result.
"""

from __future__ import annotations

from airflow.sdk import Asset, get_current_context, task

from crm_pipeline.platforms import PLATFORMS


def raw_asset(platform: str) -> Asset:
    table = PLATFORMS[platform].raw_table
    return Asset(name=f"raw.{table}", uri=f"postgres://warehouse/crm/raw/{table}", group="crm_raw")


MARTS_ASSET = Asset(name="marts", uri="postgres://warehouse/crm/marts/dim_customers", group="crm_marts")
OUTREACH_ASSET = Asset(name="outreach.message_ledger", uri="postgres://warehouse/crm/outreach/message_ledger",
                       group="crm_outreach")


def _date(value: str):
    from datetime import date

    return date.fromisoformat(value)


@task
def resolve_as_of() -> str:
    """The business day this run closes (param ``as_of_date`` or the local date of the logical date)."""
    from crm_pipeline.pii import install_log_masking
    from crm_pipeline.pipeline import as_of_from_logical

    install_log_masking()
    ctx = get_current_context()
    params = ctx.get("params") or {}
    run = ctx.get("dag_run")
    return as_of_from_logical(ctx.get("logical_date"), params.get("as_of_date"),
                              getattr(run, "run_after", None)).isoformat()


@task
def prepare_warehouse() -> dict:
    from crm_pipeline.pipeline import prepare

    return prepare()


@task
def shops_of(platform: str) -> list[str]:
    """Shop ids of a platform ("*": every API shop), narrowed by the ``shops`` param."""
    from crm_pipeline.config import load_shops

    params = (get_current_context().get("params") or {})
    wanted = set(params.get("shops") or [])
    return [s.shop_id for s in load_shops(resolve=False)
            if (s.platform == platform or (platform == "*" and PLATFORMS[s.platform].kind == "api"))
            and (not wanted or s.shop_id in wanted)]


def extract_task(platform: str):
    """A mapped extraction task per platform, with that platform's raw table as outlet."""

    @task(task_id=f"extract_{platform}", outlets=[raw_asset(platform)], map_index_template="{{ shop_id }}",
          max_active_tis_per_dagrun=4)
    def _extract(shop_id: str, as_of: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from crm_pipeline.errors import BadInputFile
        from crm_pipeline.extract.base import ConfigError
        from crm_pipeline.pii import install_log_masking
        from crm_pipeline.pipeline import extract_shop, intake_shop

        install_log_masking()
        params = (get_current_context().get("params") or {})
        try:
            if platform == "intake":
                return intake_shop(shop_id, _date(as_of))
            if params.get("backfill_from"):
                return extract_shop(shop_id, _date(as_of), "backfill", _date(params["backfill_from"]),
                                    _date(params.get("backfill_to") or as_of))
            return extract_shop(shop_id, _date(as_of))
        except (ConfigError, BadInputFile) as exc:  # a missing credential, a refused file: a retry cannot help
            raise AirflowFailException(str(exc)) from exc

    return _extract


@task(trigger_rule="all_done_min_one_success")
def check_extraction(as_of: str) -> dict:
    """Runs whatever the extract tasks ended in (D45): one shop that cannot be read does not
    stop the others' night (CRM_ON_SHOP_FAILURE=continue); it stops here when the policy
    is ``stop`` or no API shop is current. The failed extract tasks already alerted."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm_pipeline.extract.base import ConfigError
    from crm_pipeline.extract.freshness import StaleShopsError
    from crm_pipeline.pipeline import check_extraction as check

    try:
        return check(_date(as_of))
    except (StaleShopsError, ConfigError) as exc:
        raise AirflowFailException(str(exc)) from exc


@task
def finish_night(as_of: str) -> dict:
    """The last task: the run ends failed when it went on without some shops (D45)."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm_pipeline.extract.freshness import StaleShopsError
    from crm_pipeline.pipeline import finish_night as finish

    try:
        return finish(_date(as_of))
    except StaleShopsError as exc:
        raise AirflowFailException(str(exc)) from exc


@task
def quality_check(checkpoint: str, as_of: str) -> dict:
    """A critical GX failure fails the task without retries: retrying cannot fix data."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm_pipeline.pipeline import quality
    from crm_pipeline.quality.runner import QualityError

    try:
        return quality(checkpoint, _date(as_of))
    except QualityError as exc:
        raise AirflowFailException(str(exc)) from exc


@task
def dbt_unit_tests() -> None:
    """dbt unit tests (Cosmos does not render them): scoring, segments, lifecycle, identity.

    Run with the project's default vars, not the day's: each test pins its own
    ``as_of_date`` (or the project default's fixed date applies), so the result never
    depends on the day, and dbt reuses the partial parse ``make`` left in target/.
    """
    from crm_pipeline.transform.dbt import run_dbt

    run_dbt(["test", "--select", "test_type:unit"])


@task
def refresh_analyst_views() -> list[str]:
    """Re-create the masked analyst.* views (dbt's table swaps drop dependent views)."""
    from crm_pipeline.warehouse import connect
    from crm_pipeline.warehouse.roles import refresh_masked_views

    with connect() as conn:
        return refresh_masked_views(conn)


@task
def customer_clv(as_of: str) -> dict:
    """BG/NBD + Gamma-Gamma on the marts: clv.customer_scores (marts.customer_clv) and the backtest."""
    from crm_pipeline.pipeline import customer_clv as fit

    return fit(_date(as_of))


@task(outlets=[OUTREACH_ASSET])
def plan_outreach(as_of: str) -> dict:
    from crm_pipeline.pipeline import plan_outreach as plan

    return plan(_date(as_of))


@task
def push_messages(as_of: str) -> dict:
    from crm_pipeline.pipeline import push_messages as push

    return push(_date(as_of))


@task
def call_list(as_of: str) -> dict:
    from crm_pipeline.pipeline import call_list as build

    return build(_date(as_of))


@task
def daily_report(as_of: str) -> str:
    """out/<date>/report.html, then dbt docs and GX Data Docs into out/docs/."""
    from crm_pipeline.reporting.report import publish_docs, write_report

    path = str(write_report(_date(as_of)))
    publish_docs(_date(as_of))
    return path


@task
def intraday_window() -> str:
    from crm_pipeline.clock import local_today

    return local_today().isoformat()


@task(map_index_template="{{ shop_id }}")
def intraday_extract(shop_id: str, as_of: str) -> dict:
    from crm_pipeline.pipeline import extract_shop

    return extract_shop(shop_id, _date(as_of), mode="intraday")


@task(trigger_rule="all_done_min_one_success")
def intraday_transactional(as_of: str) -> dict:
    """Payment reminders and shipment notices only, through the same policy and ledger.

    Runs for the shops that were read even when others failed; payment reminders of
    a shop not read this window are held, and the task then fails naming it (D45)."""
    from airflow.sdk.exceptions import AirflowFailException

    from crm_pipeline.pipeline import intraday_transactional as run

    facts = run(_date(as_of))
    if facts["stale_shops"]:
        raise AirflowFailException(f"sent for the shops that were read; not read this window, their payment "
                                   f"reminders held: {', '.join(facts['stale_shops'])}")
    return facts


@task(outlets=[OUTREACH_ASSET])
def push_due() -> dict:
    """Every due message, whatever its type: the daytime sender (send-time re-checks included)."""
    from crm_pipeline.pii import install_log_masking
    from crm_pipeline.pipeline import push_due as push

    install_log_masking()
    return push()
