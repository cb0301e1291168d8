{{ config(materialized='view') }}
-- Each customer's lifecycle stage on the run's business day (R17), with the
-- thresholds that decide the next transition (used by outreach, R10/R12).
-- A view over int_customer_lifecycle that adds the day counts to the run's day.
-- The day is a constant in the view, so it shows the last run's day until the
-- next run replaces it.

select
    customer_id,
    {{ as_of_date() }} as as_of_date,
    stage,
    previous_stage,
    stage_since,
    {{ days_from('stage_since_date', as_of_date()) }} as days_in_stage,
    paid_orders,
    last_paid_at,
    {{ days_from('last_paid_date', as_of_date()) }} as days_since_last_paid,
    has_own_cycle,
    own_cycle_days,
    at_risk_after_days,
    churn_after_days,
    at_risk_on,
    churned_on
from {{ ref('int_customer_lifecycle') }}
