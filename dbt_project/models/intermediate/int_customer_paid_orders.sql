{{ config(indexes=[{'columns': ['customer_id']}]) }}
-- Paid orders per customer in sequence, with the gap to the previous one and
-- the customer's own repurchase cycle known at that moment (median gap so far),
-- and the silences after which the customer is at risk and churned (R17, D107).
-- The is_*_first flags mark one order per customer and day / year / month and
-- shop, so the KPI tables count distinct customers by counting flagged rows (D23).

{% set own_churn = 'greatest(' ~ var('lifecycle_churn_floor_days') ~ ', ' ~ var('lifecycle_cycle_churn_multiplier') ~ ' * median_gap_days)' %}

with paid as (
    select * from {{ ref('int_customer_orders') }}
    where is_paid_as_of
),

gaps as (
    -- sequence, gap to the previous paid order and the next one, in one window pass
    select
        customer_id,
        order_key,
        platform,
        shop_id,
        paid_at,
        paid_date,
        amount_cny,
        cost_cny,
        row_number() over w as n,
        -- the customer's first paid order: its month, platform and shop are the acquisition cohort
        cast({{ dbt.date_trunc('month', 'first_value(paid_date) over w') }} as date) as cohort_month,
        first_value(platform) over w as first_platform,
        first_value(shop_id) over w as first_shop_id,
        {{ days_between('paid_at', 'lag(paid_at) over w') }} as gap_days,
        lead(paid_at) over w as next_paid_at
    from paid
    window w as (partition by customer_id order by paid_at, order_key)
),

running as (
    -- the gaps so far (for the running median) and the first paid order of the
    -- customer's day, year, and month in a shop; the first repeat order of the day
    select
        *,
        {{ running_median_window('gap_days', 'customer_id', 'paid_at, order_key') }} as gaps_so_far,
        n = min(n) over d as is_day_first,
        coalesce(n = min(case when n > 1 then n end) over d, false) as is_day_first_repeat,
        n = min(n) over y as is_year_first,
        count(*) over y as year_paid_orders,
        n = min(n) over m as is_month_first,
        n = min(n) over (partition by customer_id, extract(year from paid_date), extract(month from paid_date), platform, shop_id)
            as is_month_shop_first
    from gaps
    window y as (partition by customer_id, extract(year from paid_date)),
           m as (partition by customer_id, extract(year from paid_date), extract(month from paid_date)),
           d as (partition by customer_id, paid_date)
),

with_median as {{ materialized_cte() }} (
    -- computed once: final reads the median three times
    select
        *,
        {{ running_median_value('gaps_so_far', 'n') }} as median_gap_days
    from running
),

final as (
    select
        customer_id,
        order_key,
        n,
        paid_at,
        paid_date,
        platform,
        shop_id,
        amount_cny,
        cost_cny,
        is_day_first,
        is_day_first_repeat,
        is_year_first,
        year_paid_orders,
        cohort_month,
        first_platform,
        first_shop_id,
        is_month_first,
        is_month_shop_first,
        gap_days,
        next_paid_at,
        median_gap_days,
        n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }} as has_own_cycle,
        -- own cycle (D107): at risk after multiplier x median gap, never sooner than
        -- lifecycle_min_cycle_days; churned after multiplier x median gap, never sooner than
        -- lifecycle_churn_floor_days (and never before at risk)
        case when n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then least({{ own_churn }},
                        greatest({{ var('lifecycle_min_cycle_days') }}, {{ var('lifecycle_cycle_at_risk_multiplier') }} * median_gap_days))
             else {{ var('lifecycle_at_risk_days') }} end as at_risk_after_days,
        case when n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then {{ own_churn }}
             else {{ var('lifecycle_churn_days') }} end as churn_after_days
    from with_median
)

select * from final
