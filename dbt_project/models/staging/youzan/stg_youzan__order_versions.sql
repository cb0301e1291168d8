-- Every landed version of every Youzan order, with its status in our vocabulary (the
-- same mapping as stg_youzan__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'youzan_orders_versions')) }}
),

fields as (
    select
        shop_id,
        order_id,
        payload_hash,
        source_updated_at,
        loaded_at,
        {{ json_text('payload', 'order_info', 'status') }} as order_status,
        {{ json_text('payload', 'order_info', 'refund_state') }} as refund_state,
        {{ json_text('payload', 'order_info', 'pay_time') }} as pay_time
    from source
),

renamed as (
    select
        'youzan' as platform,
        shop_id,
        order_id,
        'youzan:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case
            when refund_state = '2' then 'refunded'
            when order_status = 'TRADE_CLOSE'
                 then case when nullif(pay_time, '') is not null then 'refunded' else 'closed' end
            when order_status = 'WAIT_BUYER_PAY' then 'unpaid'
            when order_status in ('TRADE_PAID', 'WAIT_CONFIRM', 'WAIT_SELLER_SEND_GOODS') then 'paid'
            when order_status = 'WAIT_BUYER_CONFIRM_GOODS' then 'shipped'
            when order_status = 'TRADE_SUCCESS' then 'completed'
        end as status,
        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
