-- Line items of the current version of each Youzan order (orders).

with source as (
    select * from {{ source('raw', 'youzan_orders') }}
),

items as (
    select
        'youzan:' || s.shop_id || ':' || s.order_id as order_key,
        {{ json_array_position('line_no') }} as line_no,
        {{ json_text('item', 'outer_sku_id') }} as sku,
        {{ json_text('item', 'title') }} as title,
        cast({{ json_text('item', 'num') }} as int) as quantity,
        {{ money(json_text('item', 'price')) }} as unit_price,
        {{ money(json_text('item', 'payment')) }} as line_amount,
        {{ json_elements_sum('s.payload', ['refund_order'], 'refunded_fee',
                             [('refund_state', 'in', ["'SAFE_FINISHED'"]), ('oid', 'in', [json_text('item', 'oid')])]) }}
            as refund_amount,
        'CNY' as currency,
        s.loaded_at
    from source as s
    {{ json_array_rows('s.payload', 'orders', 'item', 'line_no') }}
)

select * from items
