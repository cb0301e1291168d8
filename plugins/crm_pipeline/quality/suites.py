"""The Great Expectations suites, declared once, written as files into expectations/.

``crm quality scaffold`` (re)writes the File Data Context under
``expectations/gx`` from these declarations; the JSON files are committed and
reviewed like code, and the runner only loads them. GX guards the boundaries:
what lands from the platforms (``raw_landing``) and what leaves
(``outbound``: message batches and call lists, R13-R15).

Queries must not contain braces other than ``{batch}`` (GX formats them).

Severity: ``critical`` failures fail the task and block outreach downstream;
``warning`` ones are reported (daily report) but do not stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_pipeline.platforms import PLATFORMS

DATASOURCE = "warehouse"
CONNECTION_ENV = "CRM_GX_WAREHOUSE_URL"

# per platform: (amount JSON expression, status JSON expression, allowed statuses)
_PLATFORM_CHECKS = {
    "taobao": ("payload->>'payment'", "payload->>'status'"),
    "jd": ("payload->>'orderPayment'", "payload->>'orderState'"),
    "shopify": ("payload->>'total_price'", "payload->>'financial_status'"),
    "woocommerce": ("payload->>'total'", "payload->>'status'"),
    "youzan": ("payload->'pay_info'->>'payment'", "payload->'order_info'->>'status'"),
    "intake": ("payload->>'amount'", "payload->>'status'"),
}


@dataclass
class Check:
    type: str
    kwargs: dict
    severity: str = "critical"
    description: str = ""


@dataclass
class Suite:
    name: str
    schema: str
    table: str
    checks: list[Check] = field(default_factory=list)


def _raw_suite(platform: str) -> Suite:
    from crm_pipeline.load.validate import (
        INTAKE_STATUSES,
        JD_STATUSES,
        SHOPIFY_FINANCIAL,
        TAOBAO_STATUSES,
        WOO_STATUSES,
        YOUZAN_STATUSES,
    )

    allowed = {
        "taobao": TAOBAO_STATUSES,
        "jd": JD_STATUSES,
        "shopify": SHOPIFY_FINANCIAL,
        "woocommerce": WOO_STATUSES,
        "youzan": YOUZAN_STATUSES,
        "intake": INTAKE_STATUSES,
    }[platform]
    amount, status = _PLATFORM_CHECKS[platform]
    status_list = ", ".join(f"'{s}'" for s in sorted(allowed))
    table = PLATFORMS[platform].raw_table
    return Suite(
        name=f"raw_{table}",
        schema="raw",
        table=table,
        checks=[
            Check("expect_column_values_to_not_be_null", {"column": "order_id"}, description="every order has an id"),
            Check("expect_column_values_to_not_be_null", {"column": "source_updated_at"}),
            Check("expect_column_values_to_not_be_null", {"column": "payload_hash"}),
            Check("expect_compound_columns_to_be_unique", {"column_list": ["shop_id", "order_id"]},
                  description="one current row per order"),
            Check("unexpected_rows_expectation",
                  {"unexpected_rows_query": f"select * from {{batch}} where coalesce(({amount})::numeric, 0) < 0"},
                  description="no negative order amount"),
            Check("unexpected_rows_expectation",
                  {"unexpected_rows_query": f"select * from {{batch}} where ({status}) not in ({status_list})"},
                  description="status is one the platform documents"),
            Check("unexpected_rows_expectation",
                  {"unexpected_rows_query": "select * from {batch} where exists (select 1 from "
                                            "jsonb_array_elements_text(coalesce(derived->'phones', '[]'::jsonb)) p "
                                            "where p !~ '^\\+[1-9][0-9]+$' or length(p) not between 9 and 16)"},
                  description="normalized phones are E.164"),
            Check("expect_table_row_count_to_be_between", {"min_value": 1}, severity="warning",
                  description="the shop delivered orders at all"),
        ],
    )


# A shop's last run quarantining this share of what it received (with at least
# QUARANTINE_MIN_RECEIVED records) is a warning; QUARANTINE_CRITICAL_SHARE stops the
# run before anything is modelled or sent: a platform that changed its status list or
# date format would otherwise leave paid orders unpaid in the marts, and payment
# reminders would go to customers who paid (D44).
QUARANTINE_WARNING_SHARE = 0.05
QUARANTINE_CRITICAL_SHARE = 0.5
QUARANTINE_MIN_RECEIVED = 20


def quarantine_share_suite() -> Suite:
    def over(share: float) -> str:
        return (f"select * from {{batch}} where received >= {QUARANTINE_MIN_RECEIVED}"
                f" and quarantined > {share} * received")

    return Suite(
        name="raw_quarantine_share",
        schema="ops",
        table="v_latest_load_batches",
        checks=[
            Check("unexpected_rows_expectation", {"unexpected_rows_query": over(QUARANTINE_CRITICAL_SHARE)},
                  description=f"no shop's last run quarantined over {QUARANTINE_CRITICAL_SHARE:.0%} of what it"
                              " received (a platform format change?); crm quarantine list --shop SHOP"),
            Check("unexpected_rows_expectation", {"unexpected_rows_query": over(QUARANTINE_WARNING_SHARE)},
                  severity="warning",
                  description=f"no shop's last run quarantined over {QUARANTINE_WARNING_SHARE:.0%} of what it"
                              " received"),
        ],
    )


# where a failed suite's rows are, said in its error (GX reports only how many)
FAILURE_WHERE = {
    "raw_quarantine_share": (f"select platform || '/' || shop_id from ops.v_latest_load_batches"
                             f" where received >= {QUARANTINE_MIN_RECEIVED}"
                             f" and quarantined > {QUARANTINE_CRITICAL_SHARE} * received order by 1"),
}


def raw_suites() -> list[Suite]:
    return [_raw_suite(p) for p in PLATFORMS] + [quarantine_share_suite()]


def outbound_suites() -> list[Suite]:
    return [
        Suite(
            name="outbound_messages",
            schema="outreach",
            table="v_outbound_pending",
            checks=[
                Check("expect_column_values_to_be_unique", {"column": "idempotency_key"}, description="no duplicate key"),
                Check("expect_column_values_to_not_be_null", {"column": "recipient"}),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where opted_out"},
                      description="no opted-out recipient (R13)"),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where channel = 'sms' and (recipient !~ '^\\+[1-9][0-9]+$' "
                                                "or length(recipient) not between 9 and 16)"},
                      description="valid phone for SMS"),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where channel = 'email' and recipient !~ '^[^@ ]+@[^@ ]+\\.[a-z][a-z]+$'"},
                      description="valid e-mail for email"),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where over_budget"},
                      description="campaign stays within its channel budget (R21)"),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where over_frequency_cap"},
                      description="marketing frequency cap holds (R14)"),
            ],
        ),
        Suite(
            name="outbound_call_list",
            schema="outreach",
            table="v_call_list_latest",
            checks=[
                Check("expect_compound_columns_to_be_unique", {"column_list": ["customer_id", "call_round"]}),
                Check("unexpected_rows_expectation",
                      {"unexpected_rows_query": "select * from {batch} where opted_out"},
                      description="no customer who asked not to be called (R13)"),
                Check("expect_column_values_to_not_be_null", {"column": "agent"}),
            ],
        ),
    ]


CHECKPOINTS = {
    "raw_landing": [s.name for s in raw_suites()],
    "outbound": [s.name for s in outbound_suites()],
}


def all_suites() -> list[Suite]:
    return raw_suites() + outbound_suites()


def scaffold(project_root) -> list[str]:
    """Write datasource, assets, suites, validation definitions and checkpoints."""
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    ctx = gx.get_context(mode="file", project_root_dir=str(project_root))
    ds = ctx.data_sources.add_or_update_sql(name=DATASOURCE, connection_string="${" + CONNECTION_ENV + "}")
    written = []
    definitions = {}
    for suite_def in all_suites():
        try:
            asset = ds.get_asset(suite_def.name)
        except LookupError:
            asset = ds.add_table_asset(name=suite_def.name, table_name=suite_def.table, schema_name=suite_def.schema)
        try:
            batch = asset.get_batch_definition("whole_table")
        except KeyError:
            batch = asset.add_batch_definition_whole_table("whole_table")
        suite = gx.ExpectationSuite(name=suite_def.name)
        for check in suite_def.checks:
            impl = get_expectation_impl(check.type)
            kwargs = dict(check.kwargs)
            if check.description:
                kwargs["description"] = check.description
            suite.add_expectation(impl(severity=check.severity, **kwargs))
        suite = ctx.suites.add_or_update(suite)
        vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(data=batch, suite=suite, name=suite_def.name))
        definitions[suite_def.name] = vd
        written.append(suite_def.name)
    for name, suite_names in CHECKPOINTS.items():
        ctx.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definitions[s] for s in suite_names],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format="SUMMARY",
            )
        )
    return written
