{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}], **customer_incremental_config()) }}
-- Each customer's current lifecycle stage (R17) and the thresholds that decide
-- the next transition (R10/R12): everything marts.customer_lifecycle shows except
-- what only counts days to the run's business day, which the mart (a view) adds.
-- Customer-scoped incremental (D21): the stage and the last paid order change only
-- for the customers int_customer_increments lists (it lists the at-risk and churn
-- crossings when the day moves), so a night rewrites those, not all (D46).

{%- set rebuilt = customer_increment_filter() %}

with current_stage as (
    select * from {{ ref('customer_lifecycle_history') }}
    where is_current and {{ rebuilt }}
),

last_paid as (
    -- the last paid order is the one with no next (no sort of every paid order)
    select * from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null and {{ rebuilt }}
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
        round(p.median_gap_days::numeric, 1) as own_cycle_days,
        round(p.at_risk_after_days::numeric, 1) as at_risk_after_days,
        round(p.churn_after_days::numeric, 1) as churn_after_days,
        case when p.paid_at is not null then ((p.paid_at + p.at_risk_after_days * interval '1 day')
             at time zone '{{ var("default_timezone") }}')::date end as at_risk_on,
        case when p.paid_at is not null then ((p.paid_at + p.churn_after_days * interval '1 day')
             at time zone '{{ var("default_timezone") }}')::date end as churned_on
    from current_stage as c
    left join last_paid as p on p.customer_id = c.customer_id
)

select * from final
