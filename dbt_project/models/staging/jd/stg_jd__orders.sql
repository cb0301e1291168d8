-- Current state of every JD POP order (jingdong.pop.order.search, the latest landed
-- version), in the columns every platform shares. The order's fields as JOS sends
-- them, then renames, casts and JD's order state mapped to our vocabulary.

with source as (
    {{ raw_rows(source('raw', 'jd_orders')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        derived,
        {{ json_text('payload', 'orderState') }} as order_state,
        {{ json_text('payload', 'open_id_buyer') }} as open_id_buyer,
        {{ json_text('payload', 'pin') }} as pin,
        {{ json_text('payload', 'consigneeInfo', 'fullname') }} as consignee_name,
        {{ json_text('payload', 'consigneeInfo', 'province') }} as consignee_province,
        {{ json_text('payload', 'consigneeInfo', 'city') }} as consignee_city,
        {{ json_text('payload', 'consigneeInfo', 'county') }} as consignee_county,
        {{ json_text('payload', 'consigneeInfo', 'fullAddress') }} as consignee_full_address,
        {{ json_text('payload', 'orderPayment') }} as order_payment,
        {{ json_text('payload', 'sellerDiscount') }} as seller_discount,
        {{ json_text('payload', 'freightPrice') }} as freight_price,
        {{ json_text('payload', 'orderStartTime') }} as order_start_time,
        {{ json_text('payload', 'paymentConfirmTime') }} as payment_confirm_time,
        {{ json_text('payload', 'orderEndTime') }} as order_end_time,
        {{ json_text('payload', 'modified') }} as modified,
        {{ json_text('payload', 'logisticsCompany') }} as logistics_company,
        {{ json_text('payload', 'waybill') }} as waybill
    from source
),

renamed as (
    select
        -- ids: the buyer's open id, else the pin
        'jd' as platform,
        shop_id,
        order_id,
        'jd:' || shop_id || ':' || order_id as order_key,
        coalesce(nullif(open_id_buyer, ''), nullif(pin, '')) as buyer_platform_id,
        nullif(pin, '') as buyer_nick,

        -- receiver
        consignee_name as receiver_name,
        consignee_province as province,
        consignee_city as city,
        consignee_county as district,
        consignee_full_address as address,

        -- status: JD order state -> unpaid | paid | shipped | completed | closed | refunded
        -- (JOS lists only orders that are paid or later)
        case order_state
            when 'WAIT_SELLER_STOCK_OUT' then 'paid'
            when 'WAIT_SELLER_DELIVERY' then 'paid'
            when 'LOCKED' then 'paid'
            when 'PAUSE' then 'paid'
            when 'POP_ORDER_PAUSE' then 'paid'
            when 'WAIT_GOODS_RECEIVE_CONFIRM' then 'shipped'
            when 'FINISHED_L' then 'completed'
            -- cancelled after payment: refunded in full
            when 'TRADE_CANCELED' then case when nullif(payment_confirm_time, '') is not null then 'refunded' else 'closed' end
        end as status,
        order_state as platform_status,

        -- amounts: CNY
        'CNY' as currency,
        {{ money('order_payment') }} as order_amount,
        coalesce({{ money('seller_discount') }}, 0) as discount_amount,
        coalesce({{ money('freight_price') }}, 0) as shipping_amount,
        -- the order search carries no refunded amount: a partial refund needs JD's after-sales
        -- API (jingdong.pop.afs.soa.refundapply.queryPageList), not read yet (D100)
        cast(null as {{ type_money() }}) as refund_amount,

        -- times: 'YYYY-MM-DD HH:MM:SS' in GMT+8
        {{ local_ts('order_start_time') }} as created_at,
        {{ local_ts('payment_confirm_time') }} as paid_at,
        -- JD's order search has no shipping time: taken from the status history (int_orders)
        cast(null as {{ type_timestamptz() }}) as shipped_at,
        case when order_state = 'FINISHED_L' then {{ local_ts('order_end_time') }} end as completed_at,
        case when order_state = 'TRADE_CANCELED' and nullif(payment_confirm_time, '') is null
             then {{ local_ts('modified') }} end as closed_at,
        case when order_state = 'TRADE_CANCELED' and nullif(payment_confirm_time, '') is not null
             then coalesce({{ local_ts('order_end_time') }}, {{ local_ts('modified') }}) end as refunded_at,

        -- shipping and flags
        nullif(logistics_company, '') as carrier,
        nullif(waybill, '') as tracking_no,
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
