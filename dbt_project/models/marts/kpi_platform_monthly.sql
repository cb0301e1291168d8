-- Revenue and margin per platform and shop by month (R19).
-- Orders are aggregated straight to (month, platform, shop); each order carries
-- its lines' catalog cost (fct_orders.cost_cny, D23), so the lines are not
-- joined back.

with customer_months as (
    -- distinct customers in two steps (hashing customers per group beats sorting
    -- a million orders by four keys for count(distinct))
    select
        date_trunc('month', paid_date::timestamp)::date as month,
        platform,
        shop_id,
        customer_id,
        count(*) as paid_orders,
        sum(amount_cny) as revenue_cny,
        sum(cost_cny) as cost_cny
    from {{ ref('int_customer_orders') }}
    where is_paid_as_of
    group by 1, 2, 3, 4
),

orders as (
    select month, platform, shop_id, sum(paid_orders)::bigint as paid_orders, count(*) as customers,
           sum(revenue_cny) as revenue_cny, sum(cost_cny) as cost_cny
    from customer_months
    group by 1, 2, 3
),

final as (
    select
        o.month,
        o.platform,
        o.shop_id,
        o.paid_orders,
        o.customers,
        o.revenue_cny,
        o.cost_cny,
        o.revenue_cny - o.cost_cny as margin_cny,
        round((o.revenue_cny - o.cost_cny) / nullif(o.revenue_cny, 0), 4) as margin_rate
    from orders as o
)

select * from final
