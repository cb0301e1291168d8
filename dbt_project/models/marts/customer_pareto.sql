{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- The 80/20 view (R18): customers ranked by net revenue as of the run's day,
-- with the cumulative share of revenue and of customers.

with revenue as (
    select customer_id, net_revenue_cny
    from {{ ref('dim_customers') }}
    where net_revenue_cny > 0
),

ranked as (
    select
        customer_id,
        net_revenue_cny,
        row_number() over (order by net_revenue_cny desc, customer_id) as revenue_rank,
        count(*) over () as customers,
        sum(net_revenue_cny) over () as total_revenue_cny,
        sum(net_revenue_cny) over (order by net_revenue_cny desc, customer_id rows unbounded preceding) as cum_revenue_cny
    from revenue
),

final as (
    select
        customer_id,
        {{ as_of_date() }} as as_of_date,
        net_revenue_cny,
        revenue_rank,
        round(cast(revenue_rank as numeric(18, 6)) / customers, 6) as cum_customer_share,
        round(cum_revenue_cny / nullif(total_revenue_cny, 0), 6) as cum_revenue_share,
        revenue_rank <= ceil(customers * 0.2) as is_top_20pct
    from ranked
)

select * from final
