-- Shop health by calendar year (R18, R19): customers, returning share, repeat
-- purchase rate, new vs churned (growth only if new > churned), win-back rate,
-- revenue. The current year runs to the run's business day.

-- Customers and orders come from one scan of the paid sequence, stage moves and
-- the stage on 1 January from lifecycle_daily (D23).

with customers as (
    -- one scan of the paid sequence: a customer-year is its flagged first order (D23)
    select
        extract(year from paid_date)::int as year,
        count(*) filter (where is_year_first) as customers,
        count(*) filter (where n = 1) as new_customers,
        count(*) filter (where is_year_first and n > 1) as returning_customers,
        count(*) filter (where is_year_first and year_paid_orders >= 2) as repeat_customers,
        count(*) as paid_orders,
        sum(amount_cny) as revenue_cny
    from {{ ref('int_customer_paid_orders') }}
    group by 1
),

churn as (
    -- stage entries by year, from lifecycle_daily's per-day counts
    select extract(year from kpi_date)::int as year,
           coalesce(sum(entered) filter (where stage = 'churned'), 0)::bigint as churned_customers,
           coalesce(sum(entered) filter (where stage = 'win_back'), 0)::bigint as won_back_customers
    from {{ ref('lifecycle_daily') }}
    group by 1
),

at_start as (
    -- customers in a buying stage or churned on 1 January (lifecycle_daily counts
    -- the history intervals covering each day; no row before the first one: 0)
    select
        c.year,
        coalesce(sum(l.customers) filter (where l.stage = 'churned'), 0)::bigint as churned_at_start,
        coalesce(sum(l.customers) filter (where l.stage in ('new', 'returning', 'loyal', 'win_back', 'at_risk')), 0)::bigint
            as active_at_start
    from customers as c
    left join {{ ref('lifecycle_daily') }} as l on l.kpi_date = make_date(c.year, 1, 1)
    group by c.year
),

final as (
    select
        c.year,
        c.customers,
        c.new_customers,
        c.returning_customers,
        round(c.returning_customers::numeric / nullif(c.customers, 0), 4) as returning_share,
        c.repeat_customers,
        round(c.repeat_customers::numeric / nullif(c.customers, 0), 4) as repeat_purchase_rate,
        coalesce(ch.churned_customers, 0) as churned_customers,
        round(coalesce(ch.churned_customers, 0)::numeric / nullif(s.active_at_start + c.new_customers, 0), 4) as churn_rate,
        round(c.new_customers::numeric / nullif(s.active_at_start + c.new_customers, 0), 4) as new_customer_rate,
        c.new_customers - coalesce(ch.churned_customers, 0) as net_customer_growth,
        coalesce(ch.won_back_customers, 0) as won_back_customers,
        round(coalesce(ch.won_back_customers, 0)::numeric
              / nullif(s.churned_at_start + coalesce(ch.churned_customers, 0), 0), 4) as win_back_rate,
        c.paid_orders,
        c.revenue_cny,
        round(c.revenue_cny / nullif(c.paid_orders, 0), 2) as aov_cny
    from customers as c
    left join churn as ch on ch.year = c.year
    left join at_start as s on s.year = c.year
)

select * from final
