{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['seq']}],
    post_hook=["delete from {{ this }} where seq <= (select max(seq) from {{ this }}) - {{ var('customer_increments_kept') }}",
               "{{ customer_increments_applied_create(this.incorporate(path={'identifier': 'customer_increments_applied'})) }}"]
) }}
-- The log behind the customer-scoped incremental models (DECISIONLOG D21; see
-- macros/customer_increments.sql). One generation per run: a marker row (the
-- run's as-of day, settings hash, full_rebuild) and one row per customer whose
-- per-customer tables must be rebuilt. It reads the consumers' previous state
-- directly (not by ref: they are built after it, from what it records).
-- depends_on: {{ ref('fct_orders') }}

{%- set as_of = var('as_of_date') -%}
{%- set settings_hash = customer_increment_settings_hash() -%}
{%- set plan = {'full': true, 'seq': 1, 'prev_as_of': none} -%}
{%- if execute and is_incremental() -%}
    {%- set last = run_query("select seq, as_of_date::text, settings_hash from " ~ this
                             ~ " where is_marker order by seq desc limit 1").rows -%}
    {%- set orders_rel = adapter.get_relation(this.database, this.schema, 'int_customer_orders') -%}
    {%- set paid_rel = adapter.get_relation(this.database, this.schema, 'int_customer_paid_orders') -%}
    {%- if last | length > 0 -%}
        {%- do plan.update({'seq': last[0][0] + 1, 'prev_as_of': last[0][1],
                            'full': last[0][2] != settings_hash or orders_rel is none or paid_rel is none}) -%}
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
        null::text as customer_id
),

{% if not plan.full %}
desired as (
    {{ customer_order_rows() }}
),

current_rows as (
    select {{ cols | join(', ') }} from {{ orders_rel }}
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
    select m.seq, m.invocation_id, m.as_of_date, m.settings_hash, m.full_rebuild, false, t.customer_id
    from marker as m
    cross join touched as t
    {%- endif %}
)

select * from final
