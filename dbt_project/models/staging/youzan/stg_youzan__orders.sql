-- Current state of every Youzan (WeChat shop) order (one full_order_info, the latest
-- landed version), in the columns every platform shares. Youzan encrypts buyers'
-- names and addresses; the decrypted values come as enrichment (extract/youzan.py),
-- and a ciphertext nobody decrypted is no value. UNCONFIRMED in Youzan's reference
-- (chosen in the sandbox): statuses other than TRADE_SUCCESS, refund_state 2 = fully
-- refunded, refunds as refund_order[] {oid, refund_id, refund_state, refunded_fee,
-- update_time} with SAFE_FINISHED = refunded (the names of Youzan's refund push
-- message); the API gives no carrier or tracking number here.

with source as (
    {{ raw_rows(source('raw', 'youzan_orders')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        derived,
        {{ json_text('payload', 'order_info', 'status') }} as order_status,
        {{ json_text('payload', 'order_info', 'refund_state') }} as refund_state,
        {{ json_text('payload', 'buyer_info', 'yz_open_id') }} as yz_open_id,
        coalesce({{ json_text('derived', 'enrichment', 'buyer', 'nickname') }},
                 {{ yz_plain(json_text('payload', 'buyer_info', 'fans_nickname')) }}) as buyer_nickname,
        coalesce({{ json_text('derived', 'enrichment', 'receiver', 'name') }},
                 {{ yz_plain(json_text('payload', 'address_info', 'receiver_name')) }}) as receiver_name,
        {{ json_text('payload', 'address_info', 'delivery_province') }} as delivery_province,
        {{ json_text('payload', 'address_info', 'delivery_city') }} as delivery_city,
        {{ json_text('payload', 'address_info', 'delivery_district') }} as delivery_district,
        coalesce({{ json_text('derived', 'enrichment', 'receiver', 'address_detail') }},
                 {{ yz_plain(json_text('payload', 'address_info', 'delivery_address')) }}) as delivery_address,
        {{ json_text('payload', 'pay_info', 'payment') }} as payment,
        {{ json_text('payload', 'pay_info', 'total_fee') }} as total_fee,
        {{ json_text('payload', 'pay_info', 'post_fee') }} as post_fee,
        {{ json_text('payload', 'order_info', 'created') }} as created,
        {{ json_text('payload', 'order_info', 'pay_time') }} as pay_time,
        {{ json_text('payload', 'order_info', 'consign_time') }} as consign_time,
        {{ json_text('payload', 'order_info', 'success_time') }} as success_time,
        {{ json_text('payload', 'order_info', 'update_time') }} as update_time,
        -- refunds done (refund_order[] with refund_state SAFE_FINISHED): amount and latest time (D100)
        {{ json_elements_sum('payload', ['refund_order'], 'refunded_fee', [('refund_state', 'in', ["'SAFE_FINISHED'"])]) }} as refunded_fee,
        {{ json_elements_max('payload', ['refund_order'], 'update_time', [('refund_state', 'in', ["'SAFE_FINISHED'"])]) }} as refund_update_time
    from source
),

renamed as (
    select
        -- ids: the buyer's yz_open_id
        'youzan' as platform,
        shop_id,
        order_id,
        'youzan:' || shop_id || ':' || order_id as order_key,
        nullif(yz_open_id, '') as buyer_platform_id,
        buyer_nickname as buyer_nick,

        -- receiver
        receiver_name,
        nullif(delivery_province, '') as province,
        nullif(delivery_city, '') as city,
        nullif(delivery_district, '') as district,
        nullif(concat_ws('', delivery_province, delivery_city, delivery_district, delivery_address), '') as address,

        -- status: refund_state, then the order status -> our vocabulary
        case
            when refund_state = '2' then 'refunded'
            when order_status = 'TRADE_CLOSE'
                 then case when nullif(pay_time, '') is not null then 'refunded' else 'closed' end
            when order_status = 'WAIT_BUYER_PAY' then 'unpaid'
            when order_status in ('TRADE_PAID', 'WAIT_CONFIRM', 'WAIT_SELLER_SEND_GOODS') then 'paid'
            when order_status = 'WAIT_BUYER_CONFIRM_GOODS' then 'shipped'
            when order_status = 'TRADE_SUCCESS' then 'completed'
        end as status,
        order_status as platform_status,

        -- amounts: CNY; no discount field: what goods and postage cost beyond what was paid
        'CNY' as currency,
        {{ money('payment') }} as order_amount,
        greatest(coalesce({{ money('total_fee') }}, 0) + coalesce({{ money('post_fee') }}, 0)
                 - coalesce({{ money('payment') }}, 0), 0) as discount_amount,
        coalesce({{ money('post_fee') }}, 0) as shipping_amount,
        refunded_fee as refund_amount,

        -- times: 'YYYY-MM-DD HH:MM:SS' in GMT+8
        {{ local_ts('created') }} as created_at,
        {{ local_ts('pay_time') }} as paid_at,
        {{ local_ts('consign_time') }} as shipped_at,
        {{ local_ts('success_time') }} as completed_at,
        case when order_status = 'TRADE_CLOSE' and nullif(pay_time, '') is null
             then {{ local_ts('update_time') }} end as closed_at,
        case when refund_state = '2' or (order_status = 'TRADE_CLOSE' and nullif(pay_time, '') is not null)
             then {{ local_ts('update_time') }}
             when refunded_fee > 0 then {{ local_ts('refund_update_time') }} end as refunded_at,

        -- shipping and flags
        cast(null as {{ type_text() }}) as carrier,
        cast(null as {{ type_text() }}) as tracking_no,
        false as is_flash_sale,
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
