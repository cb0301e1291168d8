{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- Each customer's current lifecycle stage (R17) and the thresholds that decide
-- the next transition (R10/R12): everything marts.customer_lifecycle shows except
-- what only counts days to the run's business day, which the mart (a view) adds.

with current_stage as (
    select * from {{ ref('customer_lifecycle_history') }}
    where is_current
),

last_paid as (
    -- the last paid order is the one with no next
    select * from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null
),

final as (
    select
        c.customer_id,
        c.stage,
        c.previous_stage,
        c.valid_from as stage_since,
        c.valid_from_date as stage_since_date,
        coalesce(p.n, 0) as paid_orders,
        p.paid_at as last_paid_at,
        p.paid_date as last_paid_date,
        coalesce(p.has_own_cycle, false) as has_own_cycle,
        round(cast(p.median_gap_days as numeric(18, 6)), 1) as own_cycle_days,
        round(cast(p.at_risk_after_days as numeric(18, 6)), 1) as at_risk_after_days,
        round(cast(p.churn_after_days as numeric(18, 6)), 1) as churn_after_days,
        {{ local_date(add_days('p.paid_at', 'p.at_risk_after_days'), "'" ~ var('default_timezone') ~ "'") }} as at_risk_on,
        {{ local_date(add_days('p.paid_at', 'p.churn_after_days'), "'" ~ var('default_timezone') ~ "'") }} as churned_on
    from current_stage as c
    left join last_paid as p on p.customer_id = c.customer_id
)

select * from final
