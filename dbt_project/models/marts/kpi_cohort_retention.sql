-- Acquisition cohorts (R18, R19): customers by the month of their first paid
-- order and the platform and shop it was in, and how many of them bought again N months
-- later, with the cohort's revenue per customer so far (a lifetime-value curve).
-- Every cohort has a row for every month up to the run's business day (a month
-- nobody bought in is 0, not missing); the current month is partial.

with by_month as (
    -- one scan of the paid sequence, which carries each customer's cohort: a customer
    -- active in a month is its flagged first order of that month (no count(distinct), D23)
    select
        cohort_month,
        first_platform,
        first_shop_id,
        {{ months_between_dates('cohort_month', 'paid_date') }} as months_since_first,
        count(*) filter (where is_month_first) as active_customers,
        count(*) as paid_orders,
        sum(amount_cny) as revenue_cny
    from {{ ref('int_customer_paid_orders') }}
    group by 1, 2, 3, 4
),

grid as (
    -- every cohort x every month from its first to the run's month
    select c.cohort_month, c.first_platform, c.first_shop_id, c.active_customers as cohort_customers,
           m as months_since_first
    from by_month as c
    {{ integer_rows(months_between_dates('c.cohort_month', as_of_date()), 'm') }}
    where c.months_since_first = 0
),

final as (
    select
        g.cohort_month,
        g.first_platform,
        g.first_shop_id,
        g.months_since_first,
        cast({{ dbt.dateadd('month', 'g.months_since_first', 'g.cohort_month') }} as date) as activity_month,
        g.cohort_customers,
        coalesce(b.active_customers, 0) as active_customers,
        round(cast(coalesce(b.active_customers, 0) as numeric(18, 6)) / g.cohort_customers, 4) as retention_rate,
        coalesce(b.paid_orders, 0) as paid_orders,
        coalesce(b.revenue_cny, 0) as revenue_cny,
        round(sum(coalesce(b.revenue_cny, 0)) over (
            partition by g.cohort_month, g.first_shop_id order by g.months_since_first
        ) / g.cohort_customers, 2) as cumulative_revenue_per_customer_cny
    from grid as g
    left join by_month as b
        on b.cohort_month = g.cohort_month
        and b.first_shop_id = g.first_shop_id
        and b.months_since_first = g.months_since_first
)

select * from final
