{{ config(materialized='view') }}
-- Each customer's lifecycle stage on the run's business day (R17), with the
-- thresholds that decide the next transition (used by outreach, R10/R12).
-- A view over int_customer_lifecycle (customer-scoped incremental, D46) that adds
-- the day counts: a night rewrites the customers whose stage or last order
-- changed, not every customer because the day moved. The day is a constant in
-- the view, so it shows the last run's day until the next run replaces it.

select
    customer_id,
    {{ as_of_date() }} as as_of_date,
    stage,
    previous_stage,
    stage_since,
    ({{ as_of_date() }} - stage_since_date) as days_in_stage,
    paid_orders,
    last_paid_at,
    ({{ as_of_date() }} - last_paid_date) as days_since_last_paid,
    has_own_cycle,
    own_cycle_days,
    at_risk_after_days,
    churn_after_days,
    at_risk_on,
    churned_on
from {{ ref('int_customer_lifecycle') }}
