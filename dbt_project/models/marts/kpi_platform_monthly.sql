-- Revenue and margin per platform and shop by month (R19).
-- Orders and line costs are aggregated straight to (month, platform, shop): a
-- per-order margin table joined back was built once per parallel worker.

with customer_months as (
    -- distinct customers in two steps (hashing customers per group beats sorting
    -- a million orders by four keys for count(distinct))
    select
        date_trunc('month', paid_date::timestamp)::date as month,
        platform,
        shop_id,
        customer_id,
        count(*) as paid_orders,
        sum(amount_cny) as revenue_cny
    from {{ ref('int_customer_orders') }}
    where is_paid_as_of
    group by 1, 2, 3, 4
),

orders as (
    select month, platform, shop_id, sum(paid_orders)::bigint as paid_orders, count(*) as customers,
           sum(revenue_cny) as revenue_cny
    from customer_months
    group by 1, 2, 3
),

costs as (
    -- line costs of the paid orders (a line without a catalog cost counts as 0)
    select
        date_trunc('month', o.paid_date::timestamp)::date as month,
        o.platform,
        o.shop_id,
        coalesce(sum(i.line_cost_cny), 0) as cost_cny
    from {{ ref('fct_order_items') }} as i
    inner join {{ ref('int_customer_orders') }} as o on o.order_key = i.order_key
    where o.is_paid_as_of
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
        coalesce(c.cost_cny, 0) as cost_cny,
        o.revenue_cny - coalesce(c.cost_cny, 0) as margin_cny,
        round((o.revenue_cny - coalesce(c.cost_cny, 0)) / nullif(o.revenue_cny, 0), 4) as margin_rate
    from orders as o
    left join costs as c on c.month = o.month and c.platform = o.platform and c.shop_id = o.shop_id
)

select * from final
