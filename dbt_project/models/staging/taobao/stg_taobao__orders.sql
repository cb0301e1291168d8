-- Current state of every Taobao/Tmall order (TOP trades, the latest landed version),
-- in the columns every platform shares. The trade's fields as TOP sends them, then
-- renames, casts and TOP's trade status mapped to our vocabulary.

with source as (
    {{ raw_rows(source('raw', 'taobao_trades')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        derived,
        {{ json_text('payload', 'status') }} as trade_status,
        {{ json_text('payload', 'buyer_open_uid') }} as buyer_open_uid,
        {{ json_text('payload', 'buyer_nick') }} as buyer_nick,
        -- receiver: masked by TOP, decrypted by the second call when the shop is authorised
        coalesce({{ json_text('derived', 'enrichment', 'receiver', 'name') }},
                 {{ json_text('payload', 'receiver_name') }}) as receiver_name,
        {{ json_text('payload', 'receiver_state') }} as receiver_state,
        {{ json_text('payload', 'receiver_city') }} as receiver_city,
        {{ json_text('payload', 'receiver_district') }} as receiver_district,
        coalesce({{ json_text('derived', 'enrichment', 'receiver', 'address_detail') }},
                 {{ json_text('payload', 'receiver_address') }}) as receiver_address,
        {{ json_text('payload', 'payment') }} as payment,
        {{ json_text('payload', 'discount_fee') }} as discount_fee,
        {{ json_text('payload', 'post_fee') }} as post_fee,
        {{ json_text('payload', 'created') }} as created,
        {{ json_text('payload', 'pay_time') }} as pay_time,
        {{ json_text('payload', 'consign_time') }} as consign_time,
        {{ json_text('payload', 'end_time') }} as end_time,
        {{ json_text('payload', 'orders', 'order', 0, 'logistics_company') }} as logistics_company,
        {{ json_text('payload', 'orders', 'order', 0, 'invoice_no') }} as invoice_no,
        {{ json_text('payload', 'trade_from') }} as trade_from,
        -- sub-orders refunded (refund_status SUCCESS): what was paid for them, and when the
        -- latest ended (a refunded sub-order ends early); D100
        {{ json_elements_sum('payload', ['orders.order'], 'payment', [('refund_status', 'in', ["'SUCCESS'"])]) }} as refunded_payment,
        {{ json_elements_max('payload', ['orders.order'], 'end_time', [('refund_status', 'in', ["'SUCCESS'"])]) }} as refunded_end_time
    from source
),

renamed as (
    select
        -- ids
        'taobao' as platform,
        shop_id,
        order_id,
        'taobao:' || shop_id || ':' || order_id as order_key,
        nullif(buyer_open_uid, '') as buyer_platform_id,
        nullif(buyer_nick, '') as buyer_nick,

        -- receiver
        receiver_name,
        receiver_state as province,
        receiver_city as city,
        receiver_district as district,
        concat_ws('', receiver_state, receiver_city, receiver_district, receiver_address) as address,

        -- status: TOP trade status -> unpaid | paid | shipped | completed | closed | refunded
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
            -- closed after payment: refunded in full
            when 'TRADE_CLOSED' then case when nullif(pay_time, '') is not null then 'refunded' else 'closed' end
        end as status,
        trade_status as platform_status,

        -- amounts: CNY, text with two decimals
        'CNY' as currency,
        {{ money('payment') }} as order_amount,
        coalesce({{ money('discount_fee') }}, 0) as discount_amount,
        coalesce({{ money('post_fee') }}, 0) as shipping_amount,
        refunded_payment as refund_amount,

        -- times: 'YYYY-MM-DD HH:MM:SS' in GMT+8
        {{ local_ts('created') }} as created_at,
        {{ local_ts('pay_time') }} as paid_at,
        {{ local_ts('consign_time') }} as shipped_at,
        case when trade_status = 'TRADE_FINISHED' then {{ local_ts('end_time') }} end as completed_at,
        case when trade_status in ('TRADE_CLOSED', 'TRADE_CLOSED_BY_TAOBAO') and nullif(pay_time, '') is null
             then {{ local_ts('end_time') }} end as closed_at,
        case when trade_status = 'TRADE_CLOSED' and nullif(pay_time, '') is not null
             then {{ local_ts('end_time') }}
             when refunded_payment > 0 then {{ local_ts('refunded_end_time') }} end as refunded_at,

        -- shipping and flags
        nullif(logistics_company, '') as carrier,
        nullif(invoice_no, '') as tracking_no,
        coalesce(trade_from, '') like '%JHS%' as is_flash_sale,  -- 聚划算 (Juhuasuan) flash sale
        cast(null as boolean) as accepts_marketing,

        -- contact fields normalized at landing (E.164 phones, lower-cased e-mails)
        {{ json_text('derived', 'phones', 0) }} as phone_e164,
        {{ json_array('derived', 'phones') }} as phones,
        {{ json_text('derived', 'masked_phones', 0) }} as masked_phone,
        {{ json_text('derived', 'emails', 0) }} as email,

        source_updated_at,
        loaded_at
    from fields
)

select * from renamed
