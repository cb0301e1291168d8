-- Line items of the current version of each JD order (itemInfoList).

with source as (
    select * from {{ source('raw', 'jd_orders') }}
),

items as (
    select
        'jd:' || s.shop_id || ':' || s.order_id as order_key,
        {{ json_array_position('line_no') }} as line_no,
        {{ json_text('item', 'outerSkuId') }} as sku,
        {{ json_text('item', 'skuName') }} as title,
        cast({{ json_text('item', 'itemTotal') }} as int) as quantity,
        {{ money(json_text('item', 'jdPrice')) }} as unit_price,
        {{ money(json_text('item', 'jdPrice')) }} * cast({{ json_text('item', 'itemTotal') }} as int) as line_amount,
        cast(null as {{ type_money() }}) as refund_amount,
        'CNY' as currency,
        s.loaded_at
    from source as s
    {{ json_array_rows('s.payload', 'itemInfoList', 'item', 'line_no') }}
)

select * from items
