-- Revenue and margin per platform and shop by month (R19).
-- The paid orders are aggregated straight to (month, platform, shop); each order
-- carries its lines' catalog cost (fct_orders.cost_cny, D23), so the lines are
-- not joined back.

with orders as (
    -- one scan of the paid sequence: a customer counts once per month and shop, on
    -- the order flagged is_month_shop_first (D23)
    select
        cast({{ dbt.date_trunc('month', 'paid_date') }} as date) as month,
        platform,
        shop_id,
        count(*) as paid_orders,
        count(*) filter (where is_month_shop_first) as customers,
        sum(amount_cny) as revenue_cny,
        sum(cost_cny) as cost_cny
    from {{ ref('int_customer_paid_orders') }}
    group by cast({{ dbt.date_trunc('month', 'paid_date') }} as date), platform, shop_id
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
