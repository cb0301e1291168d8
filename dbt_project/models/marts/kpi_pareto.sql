-- One row: how concentrated revenue is (R18). Share of revenue from the top 20%
-- of customers, and the share of customers that brings 80% of revenue.

with p as (
    select * from {{ ref('customer_pareto') }}
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        count(*) as paying_customers,
        count(*) filter (where is_top_20pct) as top_20pct_customers,
        coalesce(max(cum_revenue_share) filter (where is_top_20pct), 0) as top_20pct_revenue_share,
        coalesce(min(cum_customer_share) filter (where cum_revenue_share >= 0.8), 0) as customer_share_for_80pct_revenue
    from p
)

select * from final
