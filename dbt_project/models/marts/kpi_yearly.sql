-- Shop health by calendar year (R18, R19): customers, returning share, repeat
-- purchase rate, new vs churned (growth only if new > churned), win-back rate,
-- revenue. The current year runs to the run's business day.
-- Every count is of distinct customers and every rate a share of customers in
-- [0, 1] (D108; definitions in _marts__docs.md "kpi_yearly"). Customers and orders
-- come from one scan of the paid sequence (D23), churn and win-back from the
-- lifecycle intervals that touch each year.

with customers as (
    -- one scan of the paid sequence: a customer-year is its flagged first order (D23)
    select
        cast(extract(year from paid_date) as int) as year,
        count(*) filter (where is_year_first) as customers,
        count(*) filter (where n = 1) as new_customers,
        count(*) filter (where is_year_first and n > 1) as returning_customers,
        count(*) filter (where is_year_first and year_paid_orders >= 2) as repeat_customers,
        count(*) as paid_orders,
        sum(amount_cny) as revenue_cny
    from {{ ref('int_customer_paid_orders') }}
    group by 1
),

years as (
    select year, make_date(year, 1, 1) as year_start, make_date(year, 12, 31) as year_end
    from customers
),

customer_years as (
    -- one row per customer and year their lifecycle touched (D108): whether they were in a
    -- buying stage at some moment of the year, entered churned or win_back during it, or were
    -- churned at some moment of it; every KPI below counts these rows, so a customer counts
    -- once per year however often they moved
    select
        y.year,
        h.customer_id,
        max(case when h.stage in ('new', 'returning', 'loyal', 'win_back', 'at_risk') then 1 else 0 end) as was_active,
        max(case when h.stage = 'churned' and h.valid_from_date >= y.year_start then 1 else 0 end) as churned,
        max(case when h.stage = 'churned' then 1 else 0 end) as was_churned,
        max(case when h.stage = 'win_back' and h.valid_from_date >= y.year_start then 1 else 0 end) as won_back
    from {{ ref('customer_lifecycle_history') }} as h
    inner join years as y
        on h.valid_from_date <= y.year_end
        and (h.valid_to_date is null or h.valid_to_date >= y.year_start)
    where h.stage <> 'prospect'
    group by y.year, h.customer_id
),

moves as (
    select
        year,
        sum(was_active) as churn_base_customers,
        sum(churned) as churned_customers,
        sum(was_churned) as win_back_base_customers,
        sum(won_back) as won_back_customers
    from customer_years
    group by year
),

final as (
    select
        c.year,
        c.customers,
        c.new_customers,
        c.returning_customers,
        round(cast(c.returning_customers as numeric(18, 6)) / nullif(c.customers, 0), 4) as returning_share,
        c.repeat_customers,
        round(cast(c.repeat_customers as numeric(18, 6)) / nullif(c.customers, 0), 4) as repeat_purchase_rate,
        cast(coalesce(m.churn_base_customers, 0) as bigint) as churn_base_customers,
        cast(coalesce(m.churned_customers, 0) as bigint) as churned_customers,
        round(cast(coalesce(m.churned_customers, 0) as numeric(18, 6)) / nullif(m.churn_base_customers, 0), 4) as churn_rate,
        round(cast(c.new_customers as numeric(18, 6)) / nullif(m.churn_base_customers, 0), 4) as new_customer_rate,
        c.new_customers - cast(coalesce(m.churned_customers, 0) as bigint) as net_customer_growth,
        cast(coalesce(m.win_back_base_customers, 0) as bigint) as win_back_base_customers,
        cast(coalesce(m.won_back_customers, 0) as bigint) as won_back_customers,
        round(cast(coalesce(m.won_back_customers, 0) as numeric(18, 6)) / nullif(m.win_back_base_customers, 0), 4)
            as win_back_rate,
        c.paid_orders,
        c.revenue_cny,
        round(c.revenue_cny / nullif(c.paid_orders, 0), 2) as aov_cny
    from customers as c
    left join moves as m on m.year = c.year
)

select * from final
