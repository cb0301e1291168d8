{{ config(indexes=[{'columns': ['customer_id']}], **customer_incremental_config()) }}
-- Paid orders per customer in sequence, with the gap to the previous one and
-- the customer's own repurchase cycle known at that moment (median gap so far).
-- Customer-scoped incremental (D21): see macros/customer_increments.sql.

with paid as (
    select
        customer_id,
        order_key,
        paid_at,
        paid_date,
        amount_cny,
        row_number() over (partition by customer_id order by paid_at, order_key) as n
    from {{ ref('int_customer_orders') }}
    where is_paid_as_of and {{ customer_increment_filter() }}
),

gaps as (
    select
        *,
        {{ days_between('paid_at', 'lag(paid_at) over (partition by customer_id order by n)') }} as gap_days,
        lead(paid_at) over (partition by customer_id order by n) as next_paid_at
    from paid
),

running as (
    -- the gaps so far, for the running median (a self-join of each order with
    -- its predecessors is quadratic in a customer's orders and twice as slow)
    select *, array_agg(gap_days) over (partition by customer_id order by n) as gaps_so_far
    from gaps
),

medians as materialized (
    -- materialized: the median is used three times below and must be computed once
    select
        running.*,
        case when n >= 2 then
            (select percentile_cont(0.5) within group (order by x) from unnest(gaps_so_far) as x)
        end as median_gap_days
    from running
),

final as (
    select
        g.customer_id,
        g.order_key,
        g.n,
        g.paid_at,
        g.paid_date,
        g.amount_cny,
        g.gap_days,
        g.next_paid_at,
        g.median_gap_days,
        g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }} as has_own_cycle,
        case when g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then greatest({{ var('lifecycle_min_cycle_days') }}, {{ var('lifecycle_cycle_at_risk_multiplier') }} * g.median_gap_days)
             else {{ var('lifecycle_at_risk_days') }} end as at_risk_after_days,
        case when g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then greatest({{ var('lifecycle_min_cycle_days') }} * 2, {{ var('lifecycle_cycle_churn_multiplier') }} * g.median_gap_days)
             else {{ var('lifecycle_churn_days') }} end as churn_after_days
    from medians as g
)

select * from final
