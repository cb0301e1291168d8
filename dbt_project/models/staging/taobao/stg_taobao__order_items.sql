-- Line items of the current version of each Taobao/Tmall order (the trade's orders.order);
-- a sub-order whose refund_status is SUCCESS was refunded what was paid for it (D100).

with source as (
    select * from {{ source('raw', 'taobao_trades') }}
),

items as (
    select
        'taobao:' || s.shop_id || ':' || s.order_id as order_key,
        {{ json_array_position('line_no') }} as line_no,
        {{ json_text('item', 'outer_iid') }} as sku,
        {{ json_text('item', 'title') }} as title,
        cast({{ json_text('item', 'num') }} as int) as quantity,
        {{ money(json_text('item', 'price')) }} as unit_price,
        {{ money(json_text('item', 'payment')) }} as line_amount,
        case when {{ json_text('item', 'refund_status') }} = 'SUCCESS'
             then {{ money(json_text('item', 'payment')) }} end as refund_amount,
        'CNY' as currency,
        s.loaded_at
    from source as s
    {{ json_array_rows('s.payload', 'orders.order', 'item', 'line_no') }}
)

select * from items
