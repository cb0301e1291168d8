{{ config(
    indexes=[{'columns': ['order_key']}, {'columns': ['customer_id']}],
    **order_model_config('order_key')
) }}
-- One row per order line, with product category, usage period and margin.
-- Incremental (delete+insert by order): the lines of the orders fct_orders rewrote
-- since this table last ran (its modeled_at stamp): changed orders and orders that
-- moved to another customer.

with items as (
    select * from {{ ref('int_order_items') }}
    {% if is_incremental() %}
    where order_key in (
        select order_key from {{ ref('fct_orders') }}
        where {{ modeled_since() }}
    )
    {% endif %}
),

orders as (
    select order_key, customer_id, platform, shop_id, order_date, paid_at, is_paid, status
    from {{ ref('fct_orders') }}
),

catalog as (
    select sku, unit_cost from {{ ref('product_catalog') }}
),

final as (
    select
        {{ surrogate_key(['i.order_key', 'i.line_no']) }} as order_item_key,
        i.order_key,
        i.line_no,
        o.customer_id,
        o.platform,
        o.shop_id,
        o.order_date,
        o.paid_at,
        o.is_paid,
        o.status,
        i.sku,
        i.title,
        i.category,
        i.usage_days,
        i.quantity,
        i.unit_price,
        i.line_amount,
        i.currency,
        i.line_amount_cny,
        i.line_refund_cny,
        i.net_line_amount_cny,
        round(c.unit_cost * i.quantity, 2) as line_cost_cny,
        round(i.line_amount_cny - c.unit_cost * i.quantity, 2) as line_margin_cny,
        i.loaded_at,
        {{ modeled_at() }} as modeled_at
    from items as i
    inner join orders as o on o.order_key = i.order_key
    left join catalog as c on c.sku = i.sku
)

select * from final
