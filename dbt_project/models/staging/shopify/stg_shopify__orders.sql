-- Current state of every Shopify order (Admin REST orders, the latest landed version),
-- in the columns every platform shares. The order's fields as Shopify sends them, then
-- renames, casts and the financial + fulfillment status mapped to our vocabulary.
-- Refunds: refund_amount sums refunds[].transactions[] of kind refund and status
-- success (partially_refunded orders keep their status); a fulfillment whose status
-- is failure, cancelled or error is no shipment (docs/money.md).

{% set shipped_where = [('status', 'not in', ["'failure'", "'cancelled'", "'error'"])] %}
{% set refund_where = [('kind', 'in', ["'refund'"]), ('status', 'in', ["'success'"])] %}

with source as (
    {{ raw_rows(source('raw', 'shopify_orders')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        payload,
        derived,
        {{ json_text('payload', 'financial_status') }} as financial_status,
        {{ json_text('payload', 'fulfillment_status') }} as fulfillment_status,
        {{ json_text('payload', 'cancelled_at') }} as cancelled_at,
        {{ json_text('payload', 'closed_at') }} as closed_at,
        {{ json_text('payload', 'customer', 'id') }} as customer_id,
        {{ json_text('payload', 'customer', 'first_name') }} as customer_first_name,
        {{ json_text('payload', 'customer', 'last_name') }} as customer_last_name,
        {{ json_text('payload', 'shipping_address', 'name') }} as ship_name,
        {{ json_text('payload', 'shipping_address', 'province') }} as ship_province,
        {{ json_text('payload', 'shipping_address', 'city') }} as ship_city,
        {{ json_text('payload', 'shipping_address', 'address2') }} as ship_address2,
        {{ json_text('payload', 'shipping_address', 'address1') }} as ship_address1,
        {{ json_text('payload', 'currency') }} as currency,
        {{ json_text('payload', 'total_price') }} as total_price,
        {{ json_text('payload', 'subtotal_price') }} as subtotal_price,
        {{ json_text('payload', 'total_tax') }} as total_tax,
        {{ json_text('payload', 'total_discounts') }} as total_discounts,
        {{ json_text('payload', 'created_at') }} as created_at,
        {{ json_text('payload', 'processed_at') }} as processed_at,
        -- the first fulfillment that is not a failed, cancelled or errored one (D101)
        {{ json_elements_first('payload', ['fulfillments'], 'created_at', shipped_where) }} as fulfilled_at,
        {{ json_elements_first('payload', ['fulfillments'], 'tracking_company', shipped_where) }} as tracking_company,
        {{ json_elements_first('payload', ['fulfillments'], 'tracking_number', shipped_where) }} as tracking_number,
        -- money actually given back: successful refund transactions of every refund (D100)
        {{ json_elements_sum('payload', ['refunds', 'transactions'], 'amount', refund_where) }} as refund_amount,
        {{ json_elements_max('payload', ['refunds'], 'created_at') }} as refunded_at,
        {{ json_text('payload', 'tags') }} as tags,
        {{ json_text('payload', 'buyer_accepts_marketing') }} as buyer_accepts_marketing
    from source
),

renamed as (
    select
        -- ids: the customer id (guests have none)
        'shopify' as platform,
        shop_id,
        order_id,
        'shopify:' || shop_id || ':' || order_id as order_key,
        nullif(customer_id, '') as buyer_platform_id,
        nullif(concat_ws(' ', customer_first_name, customer_last_name), '') as buyer_nick,

        -- receiver: the shipping address (Chinese order: family name first)
        coalesce(nullif(ship_name, ''), concat(customer_last_name, customer_first_name)) as receiver_name,
        ship_province as province,
        ship_city as city,
        ship_address2 as district,
        concat_ws('', ship_province, ship_city, ship_address2, ship_address1) as address,

        -- status: financial_status first (refunded, cancelled, unpaid), then fulfillment
        case
            when financial_status = 'refunded' then 'refunded'
            when nullif(cancelled_at, '') is not null then 'closed'
            when financial_status in ('voided', 'expired') then 'closed'
            when financial_status in ('pending', 'authorized', 'partially_paid') then 'unpaid'
            when fulfillment_status = 'fulfilled' and nullif(closed_at, '') is not null then 'completed'
            when fulfillment_status = 'fulfilled' then 'shipped'
            else 'paid'
        end as status,
        concat_ws('/', financial_status, coalesce(fulfillment_status, 'unfulfilled')) as platform_status,

        -- amounts: the shop's currency; shipping = total - subtotal - tax
        coalesce(nullif(currency, ''), 'USD') as currency,
        {{ money('total_price') }} as order_amount,
        coalesce({{ money('total_discounts') }}, 0) as discount_amount,
        greatest(coalesce({{ money('total_price') }}, 0) - coalesce({{ money('subtotal_price') }}, 0)
                 - coalesce({{ money('total_tax') }}, 0), 0) as shipping_amount,
        refund_amount,

        -- times: ISO 8601 with offset
        {{ iso_ts('created_at') }} as created_at,
        case when financial_status in ('paid', 'partially_refunded', 'refunded')
             then {{ iso_ts('processed_at') }} end as paid_at,
        {{ iso_ts('fulfilled_at') }} as shipped_at,
        case when fulfillment_status = 'fulfilled' then {{ iso_ts('closed_at') }} end as completed_at,
        {{ iso_ts('cancelled_at') }} as closed_at,
        -- the latest refund (whole or partial): when the refunded amount reached its value
        case when financial_status in ('refunded', 'partially_refunded') or refund_amount > 0
             then {{ iso_ts('refunded_at') }} end as refunded_at,

        -- shipping and flags
        nullif(tracking_company, '') as carrier,
        nullif(tracking_number, '') as tracking_no,
        coalesce(tags, '') like '%flash-sale%' as is_flash_sale,
        case when {{ json_has_key('payload', 'buyer_accepts_marketing') }}
             then cast(buyer_accepts_marketing as boolean) end as accepts_marketing,

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
