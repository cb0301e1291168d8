-- Line items of the current version of each Shopify order (line_items), with what was
-- refunded on each: the subtotals of the refunds' refund_line_items for the line (D100).

with source as (
    select * from {{ source('raw', 'shopify_orders') }}
),

items as (
    select
        'shopify:' || s.shop_id || ':' || s.order_id as order_key,
        {{ json_array_position('line_no') }} as line_no,
        {{ json_text('item', 'sku') }} as sku,
        {{ json_text('item', 'title') }} as title,
        cast({{ json_text('item', 'quantity') }} as int) as quantity,
        {{ money(json_text('item', 'price')) }} as unit_price,
        {{ money(json_text('item', 'price')) }} * cast({{ json_text('item', 'quantity') }} as int) as line_amount,
        {{ json_elements_sum('s.payload', ['refunds', 'refund_line_items'], 'subtotal',
                             [('line_item_id', 'in', [json_text('item', 'id')])]) }} as refund_amount,
        coalesce({{ json_text('s.payload', 'currency') }}, 'USD') as currency,
        s.loaded_at
    from source as s
    {{ json_array_rows('s.payload', 'line_items', 'item', 'line_no') }}
)

select * from items
