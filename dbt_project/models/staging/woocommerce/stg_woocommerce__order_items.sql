-- Line items of the current version of each WooCommerce order (line_items).

with source as (
    select * from {{ source('raw', 'woocommerce_orders') }}
),

items as (
    select
        'woocommerce:' || s.shop_id || ':' || s.order_id as order_key,
        {{ json_array_position('line_no') }} as line_no,
        {{ json_text('item', 'sku') }} as sku,
        {{ json_text('item', 'name') }} as title,
        cast({{ json_text('item', 'quantity') }} as int) as quantity,
        {{ money(json_text('item', 'price')) }} as unit_price,
        {{ money(json_text('item', 'total')) }} as line_amount,
        -- the order's refunds[] say how much, not for which line (the refunds endpoint would)
        cast(null as {{ type_money() }}) as refund_amount,
        coalesce({{ json_text('s.payload', 'currency') }}, 'CNY') as currency,
        s.loaded_at
    from source as s
    {{ json_array_rows('s.payload', 'line_items', 'item', 'line_no') }}
)

select * from items
