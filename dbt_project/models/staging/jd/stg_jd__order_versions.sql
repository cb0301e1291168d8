-- Every landed version of every JD order, with its status in our vocabulary (the
-- same mapping as stg_jd__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'jd_orders_versions')) }}
),

fields as (
    select
        shop_id,
        order_id,
        payload_hash,
        source_updated_at,
        loaded_at,
        {{ json_text('payload', 'orderState') }} as order_state,
        {{ json_text('payload', 'paymentConfirmTime') }} as payment_confirm_time
    from source
),

renamed as (
    select
        'jd' as platform,
        shop_id,
        order_id,
        'jd:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case order_state
            when 'WAIT_SELLER_STOCK_OUT' then 'paid'
            when 'WAIT_SELLER_DELIVERY' then 'paid'
            when 'LOCKED' then 'paid'
            when 'PAUSE' then 'paid'
            when 'POP_ORDER_PAUSE' then 'paid'
            when 'WAIT_GOODS_RECEIVE_CONFIRM' then 'shipped'
            when 'FINISHED_L' then 'completed'
            when 'TRADE_CANCELED' then case when nullif(payment_confirm_time, '') is not null then 'refunded' else 'closed' end
        end as status,
        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
