-- Current state of every WooCommerce order (REST v3 orders, the latest landed version),
-- in the columns every platform shares. The order's fields as WooCommerce sends them,
-- then renames, casts and the order status mapped to our vocabulary.

with source as (
    {{ raw_rows(source('raw', 'woocommerce_orders')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        derived,
        {{ json_text('payload', 'status') }} as order_status,
        {{ json_text('payload', 'customer_id') }} as customer_id,
        {{ json_text('payload', 'billing', 'last_name') }} as billing_last_name,
        {{ json_text('payload', 'billing', 'first_name') }} as billing_first_name,
        {{ json_text('payload', 'shipping', 'last_name') }} as shipping_last_name,
        {{ json_text('payload', 'shipping', 'first_name') }} as shipping_first_name,
        {{ json_text('payload', 'shipping', 'state') }} as shipping_state,
        {{ json_text('payload', 'shipping', 'city') }} as shipping_city,
        {{ json_text('payload', 'shipping', 'address_2') }} as shipping_address_2,
        {{ json_text('payload', 'shipping', 'address_1') }} as shipping_address_1,
        {{ json_text('payload', 'currency') }} as currency,
        {{ json_text('payload', 'total') }} as total,
        {{ json_text('payload', 'discount_total') }} as discount_total,
        {{ json_text('payload', 'shipping_total') }} as shipping_total,
        {{ json_text('payload', 'date_created_gmt') }} as date_created_gmt,
        {{ json_text('payload', 'date_paid_gmt') }} as date_paid_gmt,
        {{ json_text('payload', 'date_completed_gmt') }} as date_completed_gmt,
        {{ json_text('payload', 'date_modified_gmt') }} as date_modified_gmt,
        -- the shipment tracking plugin's meta entry (date_shipped is a unix time)
        {{ json_meta_value('payload', '_wc_shipment_tracking_items', 'date_shipped') }} as tracking_date_shipped,
        {{ json_meta_value('payload', '_wc_shipment_tracking_items', 'tracking_provider') }} as tracking_provider,
        {{ json_meta_value('payload', '_wc_shipment_tracking_items', 'tracking_number') }} as tracking_number,
        -- refunds[]: {id, reason, total}, the total negative; no refund date on the order (D100)
        abs({{ json_elements_sum('payload', ['refunds'], 'total') }}) as refunds_total
    from source
),

renamed as (
    select
        -- ids: customer_id 0 is a guest
        'woocommerce' as platform,
        shop_id,
        order_id,
        'woocommerce:' || shop_id || ':' || order_id as order_key,
        nullif(nullif(customer_id, ''), '0') as buyer_platform_id,
        nullif(concat(billing_last_name, billing_first_name), '') as buyer_nick,

        -- receiver: the shipping address
        nullif(concat(shipping_last_name, shipping_first_name), '') as receiver_name,
        shipping_state as province,
        shipping_city as city,
        shipping_address_2 as district,
        concat_ws('', shipping_state, shipping_city, shipping_address_2, shipping_address_1) as address,

        -- status: WooCommerce order status -> unpaid | paid | shipped | completed | closed | refunded
        case order_status
            when 'pending' then 'unpaid'
            when 'on-hold' then 'unpaid'
            when 'checkout-draft' then 'unpaid'
            when 'processing' then 'paid'
            when 'completed' then 'completed'
            when 'refunded' then 'refunded'
            else 'closed'  -- cancelled, failed, trash
        end as status,
        order_status as platform_status,

        -- amounts: the shop's currency
        coalesce(nullif(currency, ''), 'CNY') as currency,
        {{ money('total') }} as order_amount,
        coalesce({{ money('discount_total') }}, 0) as discount_amount,
        coalesce({{ money('shipping_total') }}, 0) as shipping_amount,
        refunds_total as refund_amount,

        -- times: the *_gmt fields are UTC without an offset
        {{ utc_ts('date_created_gmt') }} as created_at,
        {{ utc_ts('date_paid_gmt') }} as paid_at,
        {{ unix_ts('tracking_date_shipped') }} as shipped_at,
        case when order_status = 'completed' then {{ utc_ts('date_completed_gmt') }} end as completed_at,
        case when order_status in ('cancelled', 'failed', 'trash') then {{ utc_ts('date_modified_gmt') }} end as closed_at,
        -- the order's last modification: the embedded refunds carry no date of their own
        case when order_status = 'refunded' or refunds_total > 0 then {{ utc_ts('date_modified_gmt') }} end as refunded_at,

        -- shipping and flags
        tracking_provider as carrier,
        tracking_number as tracking_no,
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
