-- Every landed version of every WooCommerce order, with its status in our vocabulary
-- (the same mapping as stg_woocommerce__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'woocommerce_orders_versions')) }}
),

fields as (
    select
        shop_id,
        order_id,
        payload_hash,
        source_updated_at,
        loaded_at,
        {{ json_text('payload', 'status') }} as order_status
    from source
),

renamed as (
    select
        'woocommerce' as platform,
        shop_id,
        order_id,
        'woocommerce:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case order_status
            when 'pending' then 'unpaid'
            when 'on-hold' then 'unpaid'
            when 'checkout-draft' then 'unpaid'
            when 'processing' then 'paid'
            when 'completed' then 'completed'
            when 'refunded' then 'refunded'
            else 'closed'
        end as status,
        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
