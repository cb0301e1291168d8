{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- Per customer, the totals the ranked marts rank as of the run's day: the last
-- paid day, paid orders and net spend over the whole history (RFM's frequency and
-- monetary, R16, D105) and inside the RFM window (R16) and the tier window (R20),
-- and the points balance. customer_rfm, customer_tiers and
-- customer_tier_thresholds read one row per customer (D37).

with orders as (
    select customer_id, is_paid_as_of, paid_date, amount_cny
    from {{ ref('int_customer_orders') }}
),

totals as (
    select
        customer_id,
        max(case when is_paid_as_of then paid_date end) as last_paid_date,
        count(case when is_paid_as_of then 1 end) as lifetime_orders,
        coalesce(sum(case when is_paid_as_of then amount_cny end), 0) as lifetime_cny,
        {%- for name, days in [('rfm', var('rfm_window_days')), ('tier', var('tier_window_days'))] %}
        {%- set in_window = "is_paid_as_of and paid_date > " ~ dbt.dateadd('day', -1 * days, as_of_date()) %}
        count(case when {{ in_window }} then 1 end) as {{ name }}_window_orders,
        coalesce(sum(case when {{ in_window }} then amount_cny end), 0) as {{ name }}_window_cny{{ ',' if not loop.last }}
        {%- endfor %}
    from orders
    group by customer_id
),

points as (
    select customer_id, sum(points) as points_balance
    from {{ ref('points_ledger') }}
    group by customer_id
),

final as (
    select
        t.customer_id,
        t.last_paid_date,
        t.lifetime_orders,
        t.lifetime_cny,
        t.rfm_window_orders,
        t.rfm_window_cny,
        t.tier_window_orders,
        t.tier_window_cny,
        coalesce(p.points_balance, 0) as points_balance
    from totals as t
    left join points as p on p.customer_id = t.customer_id
)

select * from final
