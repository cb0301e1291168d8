-- Every landed version of every Taobao/Tmall order, with its status in our vocabulary
-- (the same mapping as stg_taobao__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'taobao_trades_versions')) }}
),

fields as (
    select
        shop_id,
        order_id,
        payload_hash,
        source_updated_at,
        loaded_at,
        {{ json_text('payload', 'status') }} as trade_status,
        {{ json_text('payload', 'pay_time') }} as pay_time
    from source
),

renamed as (
    select
        'taobao' as platform,
        shop_id,
        order_id,
        'taobao:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case trade_status
            when 'WAIT_BUYER_PAY' then 'unpaid'
            when 'TRADE_NO_CREATE_PAY' then 'unpaid'
            when 'PAY_PENDING' then 'unpaid'
            when 'TRADE_CLOSED_BY_TAOBAO' then 'closed'
            when 'WAIT_SELLER_SEND_GOODS' then 'paid'
            when 'WAIT_PRE_AUTH_CONFIRM' then 'paid'
            when 'PAID_FORBID_CONSIGN' then 'paid'
            when 'SELLER_CONSIGNED_PART' then 'shipped'
            when 'WAIT_BUYER_CONFIRM_GOODS' then 'shipped'
            when 'TRADE_BUYER_SIGNED' then 'shipped'
            when 'TRADE_FINISHED' then 'completed'
            when 'TRADE_CLOSED' then case when nullif(pay_time, '') is not null then 'refunded' else 'closed' end
        end as status,
        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
