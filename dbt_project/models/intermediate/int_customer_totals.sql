{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}], **customer_incremental_config()) }}
-- Per customer, the totals the ranked marts rank as of the run's day: the last
-- paid day, paid orders and spend inside the RFM window (R16) and the tier
-- window (R20), and the points balance. customer_rfm, customer_tiers and
-- customer_tier_thresholds read these 200k rows instead of aggregating every
-- order each night (D37).
-- Customer-scoped incremental (D21): a night rebuilds the customers
-- int_customer_increments lists, which include those with a paid order entering
-- or leaving a window when the day moves.

{%- set rebuilt = customer_increment_filter() %}

with orders as (
    select customer_id, is_paid_as_of, paid_date, amount_cny
    from {{ ref('int_customer_orders') }}
    where {{ rebuilt }}
),

totals as (
    select
        customer_id,
        max(paid_date) filter (where is_paid_as_of) as last_paid_date,
        {%- for name, days in [('rfm', var('rfm_window_days')), ('tier', var('tier_window_days'))] %}
        count(*) filter (where is_paid_as_of and paid_date > {{ as_of_date() }} - {{ days }}) as {{ name }}_window_orders,
        coalesce(sum(amount_cny) filter (where is_paid_as_of and paid_date > {{ as_of_date() }} - {{ days }}), 0)
            as {{ name }}_window_cny{{ ',' if not loop.last }}
        {%- endfor %}
    from orders
    group by customer_id
),

points as (
    select customer_id, sum(points) as points_balance
    from {{ ref('points_ledger') }}
    where {{ rebuilt }}
    group by customer_id
),

final as (
    select
        t.customer_id,
        t.last_paid_date,
        t.rfm_window_orders,
        t.rfm_window_cny,
        t.tier_window_orders,
        t.tier_window_cny,
        coalesce(p.points_balance, 0) as points_balance
    from totals as t
    left join points as p on p.customer_id = t.customer_id
)

select * from final
