-- Shop health by calendar year (R18, R19): customers, returning share, repeat
-- purchase rate, new vs churned (growth only if new > churned), win-back rate,
-- revenue. The current year runs to the run's business day.

-- Each input is scanned once by the CTE that needs it (a CTE read twice is
-- materialized, and scanning the materialized copy cost more than the table).

with per_customer_year as (
    select
        extract(year from paid_date)::int as year,
        customer_id,
        count(*) as orders,
        sum(amount_cny) as revenue_cny,
        min(n) as first_n
    from {{ ref('int_customer_paid_orders') }}
    group by 1, 2
),

customers as (
    select
        year,
        count(*) as customers,
        count(*) filter (where first_n = 1) as new_customers,
        count(*) filter (where first_n > 1) as returning_customers,
        count(*) filter (where orders >= 2) as repeat_customers,
        sum(orders) as paid_orders,
        sum(revenue_cny) as revenue_cny
    from per_customer_year
    group by year
),

churn as (
    select extract(year from valid_from_date)::int as year,
           count(*) filter (where stage = 'churned') as churned_customers,
           count(*) filter (where stage = 'win_back') as won_back_customers
    from {{ ref('customer_lifecycle_history') }}
    group by 1
),

spanning_new_year as (
    -- stage intervals that contain a 1 January (the first one on or after valid_from
    -- comes before valid_to); most intervals are shorter than a year and contain none
    select stage, customer_id, valid_from_date, valid_to_date
    from {{ ref('customer_lifecycle_history') }}
    where stage in ('churned', 'new', 'returning', 'loyal', 'win_back', 'at_risk')
      and (valid_to_date is null
           or (date_trunc('year', valid_from_date - 1) + interval '1 year')::date < valid_to_date)
),

at_start as (
    -- customers churned / active on 1 January of each year (the pools win-back and
    -- churn rates are measured against)
    select
        c.year,
        count(h.customer_id) filter (where h.stage = 'churned') as churned_at_start,
        count(h.customer_id) filter (where h.stage <> 'churned') as active_at_start
    from customers as c
    left join spanning_new_year as h
        on h.valid_from_date <= make_date(c.year, 1, 1)
       and (h.valid_to_date is null or h.valid_to_date > make_date(c.year, 1, 1))
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
