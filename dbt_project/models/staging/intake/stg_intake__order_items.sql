-- The one line of each spreadsheet order: product, quantity (default 1) and amount.

with source as (
    select * from {{ source('raw', 'intake_orders') }}
),

fields as (
    select
        'intake:' || shop_id || ':' || order_id as order_key,
        nullif({{ json_text('payload', 'product') }}, '') as product,
        coalesce(cast({{ json_text('payload', 'quantity') }} as int), 1) as quantity,
        {{ money(json_text('payload', 'amount')) }} as amount,
        loaded_at
    from source
),

items as (
    select
        order_key,
        cast(1 as bigint) as line_no,
        product as sku,
        product as title,
        quantity,
        amount / greatest(quantity, 1) as unit_price,
        amount as line_amount,
        cast(null as {{ type_money() }}) as refund_amount,
        'CNY' as currency,
        loaded_at
    from fields
)

select * from items
