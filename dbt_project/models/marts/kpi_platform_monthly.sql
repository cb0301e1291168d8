-- Revenue and margin per platform and shop by month (R19).

with items as (
    select * from {{ ref('fct_order_items') }}
),

orders as (
    select * from {{ ref('int_customer_orders') }} where is_paid_as_of
),

order_margin as (
    select order_key, sum(line_margin_cny) as margin_cny, sum(line_cost_cny) as cost_cny
    from items group by order_key
),

final as (
    select
        date_trunc('month', o.paid_date)::date as month,
        o.platform,
        o.shop_id,
        count(*) as paid_orders,
        count(distinct o.customer_id) as customers,
        sum(o.amount_cny) as revenue_cny,
        sum(coalesce(m.cost_cny, 0)) as cost_cny,
        sum(o.amount_cny) - sum(coalesce(m.cost_cny, 0)) as margin_cny,
        round((sum(o.amount_cny) - sum(coalesce(m.cost_cny, 0))) / nullif(sum(o.amount_cny), 0), 4) as margin_rate
    from orders as o
    left join order_margin as m on m.order_key = o.order_key
    group by 1, 2, 3
)

select * from final
