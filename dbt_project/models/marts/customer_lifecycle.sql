{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- Each customer's lifecycle stage on the run's business day (R17), with the
-- thresholds that decide the next transition (used by outreach, R10/R12).

with current_stage as (
    select * from {{ ref('customer_lifecycle_history') }}
    where is_current
),

last_paid as (
    -- the last paid order is the one with no next (no sort of every paid order)
    select * from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null
),

final as (
    select
        c.customer_id,
        {{ as_of_date() }} as as_of_date,
        c.stage,
        c.previous_stage,
        c.valid_from as stage_since,
        ({{ as_of_date() }} - c.valid_from_date) as days_in_stage,
        coalesce(p.n, 0) as paid_orders,
        p.paid_at as last_paid_at,
        ({{ as_of_date() }} - p.paid_date) as days_since_last_paid,
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
