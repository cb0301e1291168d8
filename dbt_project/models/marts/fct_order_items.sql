{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['order_key']}, {'columns': ['customer_id']}, {'columns': ['modeled_at']}],
    on_schema_change='append_new_columns',
    pre_hook=["{{ customer_increment_scope() }}", "{{ fct_order_items_changed() }}"],
    post_hook=["{{ customer_increment_record() }}"]
) }}
-- depends_on: {{ ref('int_orders') }} (the pre-hook finds the orders of moved nodes by its node_key index)
-- One row per order line, with product category, usage period and margin.
-- Incremental, keyed by order: the lines int_order_items (re)wrote since this
-- model last ran (its modeled_at stamp, no lookback), and of orders whose
-- customer changed in fct_orders: those of the identity nodes fct_orders applied
-- since (a merge or split; its identity record's stamp, D48). The pre-hook
-- (fct_order_items_changed) lists them.

{% if is_incremental() %}
with items as (
    -- the pre-hook's analyzed set of orders: a semi-join by the order_key index (D48)
    select * from {{ ref('int_order_items') }}
    where order_key in (select order_key from fct_order_items__changed)
),
{% else %}
with items as (
    select * from {{ ref('int_order_items') }}
),
{% endif %}

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
        round(c.unit_cost * i.quantity, 2) as line_cost_cny,
        round(i.line_amount_cny - c.unit_cost * i.quantity, 2) as line_margin_cny,
        i.loaded_at,
        {{ modeled_at() }} as modeled_at
    from items as i
    inner join orders as o on o.order_key = i.order_key
    left join catalog as c on c.sku = i.sku
)

select * from final
