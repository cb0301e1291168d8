{{ config(indexes=[{'columns': ['customer_id']}]) }}
-- Lifecycle stage history (R17) as intervals [valid_from, valid_to): the stage
-- on any day is the row covering it. Stages:
--   prospect   ordered but never kept a purchase (unpaid, closed, or refunded)
--   new        first paid order
--   returning  a further paid order
--   loyal      lifecycle_loyal_min_orders or more paid orders
--   win_back   paid again after having churned
--   at_risk    no purchase for at_risk_after_days
--   churned    no purchase for churn_after_days
-- Thresholds follow the customer's own repurchase cycle once it has one
-- (multipliers of the median gap so far), else the shop default (R10: 100 days).
-- Rebuilt each run from the orders, so rerunning any day gives the same history.

with paid as (
    select * from {{ ref('int_customer_paid_orders') }}
),

prev as (
    select
        p.*,
        lag(churn_after_days) over (partition by customer_id order by n) as prev_churn_after_days
    from paid as p
),

first_orders as (
    -- orders that are not a kept purchase (unpaid, closed unpaid, refunded): a prospect's
    -- orders; beside the first kept purchase (the paid sequence's n = 1), in one pass
    select
        customer_id,
        min(case when not is_paid_as_of then created_at end) as first_order_at,
        min(case when is_paid_as_of then paid_at end) as first_paid_at
    from {{ ref('int_customer_orders') }}
    group by customer_id
),

events as (
    -- a purchase starts a buying stage
    select
        customer_id,
        paid_at as valid_from,
        case
            when n = 1 then 'new'
            when gap_days > prev_churn_after_days then 'win_back'
            when n >= {{ var('lifecycle_loyal_min_orders') }} then 'loyal'
            else 'returning'
        end as stage,
        n as paid_orders_so_far,
        1 as event_order
    from prev

    union all
    -- silence: at risk, then churned, unless the next purchase comes first
    select customer_id, {{ add_days('paid_at', 'at_risk_after_days') }}, 'at_risk', n, 2
    from paid
    where next_paid_at is null or {{ add_days('paid_at', 'at_risk_after_days') }} < next_paid_at

    union all
    select customer_id, {{ add_days('paid_at', 'churn_after_days') }}, 'churned', n, 3
    from paid
    where next_paid_at is null or {{ add_days('paid_at', 'churn_after_days') }} < next_paid_at

    union all
    -- ordered before paying (or never paid)
    select customer_id, first_order_at, 'prospect', 0, 0
    from first_orders
    where first_order_at is not null and (first_paid_at is null or first_order_at < first_paid_at)
),

bounded as (
    select * from events where valid_from < {{ as_of_end() }}
),

sequenced as (
    select
        customer_id,
        stage,
        valid_from,
        lead(valid_from) over (partition by customer_id order by valid_from, event_order, paid_orders_so_far) as valid_to,
        lag(stage) over (partition by customer_id order by valid_from, event_order, paid_orders_so_far) as previous_stage,
        paid_orders_so_far
    from bounded
),

final as (
    select
        {{ surrogate_key(['customer_id', timestamp_text('valid_from'), 'stage']) }} as lifecycle_key,
        customer_id,
        stage,
        previous_stage,
        coalesce(previous_stage, 'none') || '->' || stage as transition,
        valid_from,
        valid_to,
        {{ local_date('valid_from', "'" ~ var('default_timezone') ~ "'") }} as valid_from_date,
        {{ local_date('valid_to', "'" ~ var('default_timezone') ~ "'") }} as valid_to_date,
        valid_to is null as is_current,
        paid_orders_so_far
    from sequenced
    where valid_to is null or valid_to > valid_from
)

select * from final
