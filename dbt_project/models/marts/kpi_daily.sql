-- Shop health by day (R19), from the first order to the run's business day.
-- Revenue is net of refunds (as of the run's day); new = first paid order ever.

-- Each CTE reads its table directly: a CTE referenced several times is
-- materialized, which cost more than scanning the table again.

with created as (
    select order_date as kpi_date, count(*) as orders_created
    from {{ ref('int_customer_orders') }} group by order_date
),

days as (
    -- from the first order (every order has a created day) to the run's day
    select generate_series(min(kpi_date), {{ as_of_date() }}, interval '1 day')::date as kpi_date
    from created
    having min(kpi_date) is not null
),

paid as (
    -- one scan of the paid sequence: distinct customers are its flagged rows (D23)
    select paid_date as kpi_date, count(*) as orders_paid, sum(amount_cny) as revenue_cny,
           count(*) filter (where is_day_first) as buying_customers,
           count(*) filter (where n = 1) as new_customers,
           count(*) filter (where is_day_first_repeat) as returning_customers
    from {{ ref('int_customer_paid_orders') }} group by paid_date
),

refunds as (
    select (refunded_at at time zone '{{ var("default_timezone") }}')::date as kpi_date, count(*) as orders_refunded,
           sum(amount_cny) as refunded_cny
    from {{ ref('int_customer_orders') }} where is_refunded_as_of group by 1
),

lifecycle_moves as (
    -- stage entries per day, already counted by lifecycle_daily
    select kpi_date,
           sum(entered) filter (where stage = 'churned')::bigint as customers_churned,
           sum(entered) filter (where stage = 'win_back')::bigint as customers_won_back,
           sum(entered) filter (where stage = 'at_risk')::bigint as customers_at_risk_entered
    from {{ ref('lifecycle_daily') }} group by kpi_date
),

final as (
    select
        d.kpi_date,
        coalesce(c.orders_created, 0) as orders_created,
        coalesce(p.orders_paid, 0) as orders_paid,
        coalesce(p.revenue_cny, 0) as revenue_cny,
        coalesce(p.buying_customers, 0) as buying_customers,
        coalesce(p.new_customers, 0) as new_customers,
        coalesce(p.returning_customers, 0) as returning_customers,
        coalesce(r.orders_refunded, 0) as orders_refunded,
        coalesce(r.refunded_cny, 0) as refunded_cny,
        coalesce(l.customers_churned, 0) as customers_churned,
        coalesce(l.customers_won_back, 0) as customers_won_back,
        coalesce(l.customers_at_risk_entered, 0) as customers_at_risk_entered
    from days as d
    left join created as c on c.kpi_date = d.kpi_date
    left join paid as p on p.kpi_date = d.kpi_date
    left join refunds as r on r.kpi_date = d.kpi_date
    left join lifecycle_moves as l on l.kpi_date = d.kpi_date
)

select * from final
