-- Every landed version of every Shopify order, with its status in our vocabulary (the
-- same mapping as stg_shopify__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'shopify_orders_versions')) }}
),

fields as (
    select
        shop_id,
        order_id,
        payload_hash,
        source_updated_at,
        loaded_at,
        {{ json_text('payload', 'financial_status') }} as financial_status,
        {{ json_text('payload', 'fulfillment_status') }} as fulfillment_status,
        {{ json_text('payload', 'cancelled_at') }} as cancelled_at,
        {{ json_text('payload', 'closed_at') }} as closed_at
    from source
),

renamed as (
    select
        'shopify' as platform,
        shop_id,
        order_id,
        'shopify:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case
            when financial_status = 'refunded' then 'refunded'
            when nullif(cancelled_at, '') is not null then 'closed'
            when financial_status in ('voided', 'expired') then 'closed'
            when financial_status in ('pending', 'authorized', 'partially_paid') then 'unpaid'
            when fulfillment_status = 'fulfilled' and nullif(closed_at, '') is not null then 'completed'
            when fulfillment_status = 'fulfilled' then 'shipped'
            else 'paid'
        end as status,
        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
