-- Shop health by calendar year (R18, R19): customers, returning share, repeat
-- purchase rate, new vs churned (growth only if new > churned), win-back rate,
-- revenue. The current year runs to the run's business day.

with paid as (
    select customer_id, paid_date, n, amount_cny from {{ ref('int_customer_paid_orders') }}
),

history as (
    select * from {{ ref('customer_lifecycle_history') }}
),

years as (
    select distinct extract(year from paid_date)::int as year from paid
),

per_customer_year as (
    select
        extract(year from paid_date)::int as year,
        customer_id,
        count(*) as orders,
        sum(amount_cny) as revenue_cny,
        min(n) as first_n
    from paid
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
    from history
    group by 1
),

churned_at_start as (
    -- customers whose stage on 1 January was 'churned' (the pool a win-back can come from)
    select y.year, count(h.customer_id) as churned_at_start
    from years as y
    left join history as h
        on h.stage = 'churned'
       and h.valid_from_date <= make_date(y.year, 1, 1)
       and (h.valid_to_date is null or h.valid_to_date > make_date(y.year, 1, 1))
    group by y.year
),

active_at_start as (
    select y.year, count(h.customer_id) as active_at_start
    from years as y
    left join history as h
        on h.stage in ('new', 'returning', 'loyal', 'win_back', 'at_risk')
       and h.valid_from_date <= make_date(y.year, 1, 1)
       and (h.valid_to_date is null or h.valid_to_date > make_date(y.year, 1, 1))
    group by y.year
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
        round(coalesce(ch.churned_customers, 0)::numeric / nullif(a.active_at_start + c.new_customers, 0), 4) as churn_rate,
        round(c.new_customers::numeric / nullif(a.active_at_start + c.new_customers, 0), 4) as new_customer_rate,
        c.new_customers - coalesce(ch.churned_customers, 0) as net_customer_growth,
        coalesce(ch.won_back_customers, 0) as won_back_customers,
        round(coalesce(ch.won_back_customers, 0)::numeric
              / nullif(s.churned_at_start + coalesce(ch.churned_customers, 0), 0), 4) as win_back_rate,
        c.paid_orders,
        c.revenue_cny,
        round(c.revenue_cny / nullif(c.paid_orders, 0), 2) as aov_cny
    from customers as c
    left join churn as ch on ch.year = c.year
    left join churned_at_start as s on s.year = c.year
    left join active_at_start as a on a.year = c.year
)

select * from final
