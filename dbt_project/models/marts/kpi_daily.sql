-- Shop health by day (R19), from the first order to the run's business day.
-- Revenue is net of refunds (as of the run's day, partial ones too: D100); new = first
-- paid order ever. Refunds count on the day of the order's latest refund: orders
-- refunded in full, and all money given back (whole and partial refunds).

with created as (
    select order_date as kpi_date, count(*) as orders_created
    from {{ ref('int_customer_orders') }}
    group by order_date
),

days as (
    -- from the first order (every order has a created day) to the run's day
    {{ day_rows('(select min(kpi_date) from created)', as_of_date(), 'kpi_date') }}
),

paid as (
    -- one scan of the paid sequence: distinct customers are its flagged rows (D23)
    select
        paid_date as kpi_date,
        count(*) as orders_paid,
        sum(amount_cny) as revenue_cny,
        count(case when is_day_first then 1 end) as buying_customers,
        count(case when n = 1 then 1 end) as new_customers,
        count(case when is_day_first_repeat then 1 end) as returning_customers
    from {{ ref('int_customer_paid_orders') }}
    group by paid_date
),

refunds as (
    select
        {{ local_date('refunded_at', "'" ~ var('default_timezone') ~ "'") }} as kpi_date,
        count(case when is_refunded_as_of then 1 end) as orders_refunded,
        sum(refund_cny_as_of) as refunded_cny
    from {{ ref('int_customer_orders') }}
    where refund_cny_as_of > 0
    group by {{ local_date('refunded_at', "'" ~ var('default_timezone') ~ "'") }}
),

lifecycle_moves as (
    -- stage entries per day, already counted by lifecycle_daily
    select
        kpi_date,
        cast(sum(case when stage = 'churned' then entered end) as bigint) as customers_churned,
        cast(sum(case when stage = 'win_back' then entered end) as bigint) as customers_won_back,
        cast(sum(case when stage = 'at_risk' then entered end) as bigint) as customers_at_risk_entered
    from {{ ref('lifecycle_daily') }}
    group by kpi_date
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
