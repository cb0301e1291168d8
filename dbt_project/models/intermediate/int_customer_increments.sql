{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['seq']}],
    post_hook=["delete from {{ this }} where seq <= (select max(seq) from {{ this }}) - {{ var('customer_increments_kept') }}",
               "{{ customer_increments_applied_create(this.incorporate(path={'identifier': 'customer_increments_applied'})) }}",
               "{{ fct_orders_changes_read() }}"]
) }}
-- The log behind the customer-scoped incremental models (DECISIONLOG D21; see
-- macros/customer_increments.sql). One generation per run: a marker row (the
-- run's as-of day, settings hash, full_rebuild) and one row per customer whose
-- per-customer tables must be rebuilt. It reads the consumers' previous state
-- directly (not by ref: they are built after it, from what it records).
-- Which orders to compare: those fct_orders logged as rewritten since the entry the
-- last generation read (fct_orders_changes, D46; an order's row changes only when
-- fct_orders rewrites it), or all of them when the log cannot say (no entry read
-- yet, or a whole rebuild of fct_orders since).
-- depends_on: {{ ref('fct_orders') }}

{%- set as_of = var('as_of_date') -%}
{%- set settings_hash = customer_increment_settings_hash() -%}
{%- set plan = {'full': true, 'seq': 1, 'prev_as_of': none, 'log_read': none, 'log_to': none, 'changed_keys': none} -%}
{%- if execute -%}
    {%- set log_rel = fct_orders_changes(this.schema) -%}
    {%- if side_table_exists(log_rel) -%}
        {#- the last entry ever logged (its identity sequence: the entries read are removed) -#}
        {%- do plan.update({'log_to': run_query("select coalesce(pg_sequence_last_value(pg_get_serial_sequence('"
                                                ~ log_rel ~ "', 'seq')), 0)").columns[0].values()[0]}) -%}
    {%- endif -%}
{%- endif -%}
{%- if execute and is_incremental() -%}
    {%- set read_col = this_has_column('fct_orders_change_seq') -%}
    {%- set last = run_query("select seq, as_of_date::text, settings_hash, "
                             ~ ("fct_orders_change_seq" if read_col else "null::bigint") ~ " from " ~ this
                             ~ " where is_marker order by seq desc limit 1").rows -%}
    {%- set orders_rel = adapter.get_relation(this.database, this.schema, 'int_customer_orders') -%}
    {%- set paid_rel = adapter.get_relation(this.database, this.schema, 'int_customer_paid_orders') -%}
    {%- if last | length > 0 -%}
        {%- do plan.update({'seq': last[0][0] + 1, 'prev_as_of': last[0][1], 'log_read': last[0][3],
                            'full': last[0][2] != settings_hash or orders_rel is none or paid_rel is none}) -%}
    {%- endif -%}
    {%- if not plan.full and plan.log_read is not none and plan.log_to is not none and plan.log_to >= plan.log_read -%}
        {#- the entries since the one read last, unless a whole rebuild is among them or
            the log is not the one read (each generation removes what it read, so an
            entry at or before it means the log was recreated) -#}
        {%- set check = run_query("select count(*) filter (where order_key is null and seq > " ~ plan.log_read
                                  ~ "), count(*) filter (where seq <= " ~ plan.log_read ~ ") from " ~ log_rel).rows[0] -%}
        {%- if check[0] == 0 and check[1] == 0 -%}
            {%- do plan.update({'changed_keys': "any(array(select order_key from " ~ log_rel ~ " where seq > "
                                                ~ plan.log_read ~ " and seq <= " ~ plan.log_to ~ "))"}) -%}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}
{%- set cols = customer_order_columns() %}

with marker as (
    select
        {{ plan.seq }}::bigint as seq,
        '{{ invocation_id }}'::text as invocation_id,
        cast('{{ as_of }}' as date) as as_of_date,
        '{{ settings_hash }}'::text as settings_hash,
        {{ plan.full }} as full_rebuild,
        true as is_marker,
        null::text as customer_id,
        -- the last fct_orders_changes entry this generation has seen
        {{ plan.log_to if plan.log_to is not none else 'null' }}::bigint as fct_orders_change_seq
),

{% if not plan.full %}
desired as (
    {{ customer_order_rows('true' if plan.changed_keys is none else 'f.order_key = ' ~ plan.changed_keys) }}
),

current_rows as (
    select {{ cols | join(', ') }} from {{ orders_rel }}
    where {{ 'true' if plan.changed_keys is none else 'order_key = ' ~ plan.changed_keys }}
),

differing as (
    -- orders new, gone, changed or moved to another customer since the last build
    select d.customer_id as now_customer, c.customer_id as was_customer
    from desired as d
    full join current_rows as c on c.order_key = d.order_key
    where row({% for c in cols %}d.{{ c }}{{ ', ' if not loop.last }}{% endfor %})
          is distinct from row({% for c in cols %}c.{{ c }}{{ ', ' if not loop.last }}{% endfor %})
),

touched as (
    select now_customer as customer_id from differing where now_customer is not null
    union
    select was_customer from differing where was_customer is not null
    {%- if plan.prev_as_of != as_of %}
    {%- set prev_end = "((cast('" ~ plan.prev_as_of ~ "' as date) + 1)::timestamp at time zone '" ~ var('default_timezone') ~ "')" %}
    {%- set lo = 'least(' ~ prev_end ~ ', ' ~ as_of_end() ~ ')' %}
    {%- set hi = 'greatest(' ~ prev_end ~ ', ' ~ as_of_end() ~ ')' %}
    union
    -- the as-of day moved: a lifecycle event (at risk, churned) between the two days' ends
    select customer_id from {{ paid_rel }}
    where (paid_at + at_risk_after_days * interval '1 day' >= {{ lo }}
           and paid_at + at_risk_after_days * interval '1 day' < {{ hi }})
       or (paid_at + churn_after_days * interval '1 day' >= {{ lo }}
           and paid_at + churn_after_days * interval '1 day' < {{ hi }})
    union
    -- a paid order entering or leaving the RFM or tier window (int_customer_totals'
    -- window totals): paid_date > day - window holds on one of the two days only
    {%- set lo_day = "least(cast('" ~ plan.prev_as_of ~ "' as date), " ~ as_of_date() ~ ")" %}
    {%- set hi_day = "greatest(cast('" ~ plan.prev_as_of ~ "' as date), " ~ as_of_date() ~ ")" %}
    select customer_id from {{ paid_rel }}
    where {% for days in [var('rfm_window_days'), var('tier_window_days')] | unique -%}
          {{ 'or ' if not loop.first }}(paid_date > {{ lo_day }} - {{ days }} and paid_date <= {{ hi_day }} - {{ days }})
          {% endfor %}
    union
    -- and any order event between them (created, paid, refunded)
    select customer_id from {{ ref('fct_orders') }}
    where (created_at >= {{ lo }} and created_at < {{ hi }})
       or (paid_at >= {{ lo }} and paid_at < {{ hi }})
       or (refunded_at >= {{ lo }} and refunded_at < {{ hi }})
    {%- endif %}
),
{% endif %}

final as (
    select * from marker
    {%- if not plan.full %}
    union all
    select m.seq, m.invocation_id, m.as_of_date, m.settings_hash, m.full_rebuild, false, t.customer_id, null
    from marker as m
    cross join touched as t
    {%- endif %}
)

select * from final
