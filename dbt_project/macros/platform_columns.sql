{#-
  One macro per platform: the unified order columns read from a raw row
  (columns shop_id, order_id, payload, derived, source_updated_at, loaded_at).
  Used by both the current-state and the version-history staging models, so
  the status vocabulary is defined once per platform:
    unpaid | paid | shipped | completed | closed | refunded
-#}

{% macro common_identity_columns() -%}
        derived -> 'phones' ->> 0 as phone_e164,
        derived -> 'phones' as phones,
        derived -> 'masked_phones' ->> 0 as masked_phone,
        derived -> 'emails' ->> 0 as email,
        source_updated_at,
        loaded_at
{%- endmacro %}

{% macro taobao_order_columns() -%}
        'taobao' as platform,
        shop_id,
        order_id,
        'taobao:' || shop_id || ':' || order_id as order_key,
        nullif(payload ->> 'buyer_open_uid', '') as buyer_platform_id,
        nullif(payload ->> 'buyer_nick', '') as buyer_nick,
        coalesce(derived -> 'enrichment' -> 'receiver' ->> 'name', payload ->> 'receiver_name') as receiver_name,
        payload ->> 'receiver_state' as province,
        payload ->> 'receiver_city' as city,
        payload ->> 'receiver_district' as district,
        concat_ws('', payload ->> 'receiver_state', payload ->> 'receiver_city', payload ->> 'receiver_district',
                  coalesce(derived -> 'enrichment' -> 'receiver' ->> 'address_detail', payload ->> 'receiver_address')) as address,
        case payload ->> 'status'
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
            when 'TRADE_CLOSED' then case when nullif(payload ->> 'pay_time', '') is not null then 'refunded' else 'closed' end
        end as status,
        payload ->> 'status' as platform_status,
        'CNY' as currency,
        {{ money("payload ->> 'payment'") }} as order_amount,
        coalesce({{ money("payload ->> 'discount_fee'") }}, 0) as discount_amount,
        coalesce({{ money("payload ->> 'post_fee'") }}, 0) as shipping_amount,
        {{ local_ts("payload ->> 'created'") }} as created_at,
        {{ local_ts("payload ->> 'pay_time'") }} as paid_at,
        {{ local_ts("payload ->> 'consign_time'") }} as shipped_at,
        case when payload ->> 'status' = 'TRADE_FINISHED' then {{ local_ts("payload ->> 'end_time'") }} end as completed_at,
        case when payload ->> 'status' in ('TRADE_CLOSED', 'TRADE_CLOSED_BY_TAOBAO') and nullif(payload ->> 'pay_time', '') is null
             then {{ local_ts("payload ->> 'end_time'") }} end as closed_at,
        case when payload ->> 'status' = 'TRADE_CLOSED' and nullif(payload ->> 'pay_time', '') is not null
             then {{ local_ts("payload ->> 'end_time'") }} end as refunded_at,
        nullif(payload -> 'orders' -> 'order' -> 0 ->> 'logistics_company', '') as carrier,
        nullif(payload -> 'orders' -> 'order' -> 0 ->> 'invoice_no', '') as tracking_no,
        coalesce(payload ->> 'trade_from', '') like '%JHS%' as is_flash_sale,
        cast(null as boolean) as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{% macro jd_order_columns() -%}
        'jd' as platform,
        shop_id,
        order_id,
        'jd:' || shop_id || ':' || order_id as order_key,
        coalesce(nullif(payload ->> 'open_id_buyer', ''), nullif(payload ->> 'pin', '')) as buyer_platform_id,
        nullif(payload ->> 'pin', '') as buyer_nick,
        payload -> 'consigneeInfo' ->> 'fullname' as receiver_name,
        payload -> 'consigneeInfo' ->> 'province' as province,
        payload -> 'consigneeInfo' ->> 'city' as city,
        payload -> 'consigneeInfo' ->> 'county' as district,
        payload -> 'consigneeInfo' ->> 'fullAddress' as address,
        case payload ->> 'orderState'
            when 'WAIT_SELLER_STOCK_OUT' then 'paid'
            when 'WAIT_SELLER_DELIVERY' then 'paid'
            when 'LOCKED' then 'paid'
            when 'PAUSE' then 'paid'
            when 'POP_ORDER_PAUSE' then 'paid'
            when 'WAIT_GOODS_RECEIVE_CONFIRM' then 'shipped'
            when 'FINISHED_L' then 'completed'
            when 'TRADE_CANCELED' then case when nullif(payload ->> 'paymentConfirmTime', '') is not null then 'refunded' else 'closed' end
        end as status,
        payload ->> 'orderState' as platform_status,
        'CNY' as currency,
        {{ money("payload ->> 'orderPayment'") }} as order_amount,
        coalesce({{ money("payload ->> 'sellerDiscount'") }}, 0) as discount_amount,
        coalesce({{ money("payload ->> 'freightPrice'") }}, 0) as shipping_amount,
        {{ local_ts("payload ->> 'orderStartTime'") }} as created_at,
        {{ local_ts("payload ->> 'paymentConfirmTime'") }} as paid_at,
        -- JD's order search has no shipping time: taken from the status history downstream
        cast(null as timestamptz) as shipped_at,
        case when payload ->> 'orderState' = 'FINISHED_L' then {{ local_ts("payload ->> 'orderEndTime'") }} end as completed_at,
        case when payload ->> 'orderState' = 'TRADE_CANCELED' and nullif(payload ->> 'paymentConfirmTime', '') is null
             then {{ local_ts("payload ->> 'modified'") }} end as closed_at,
        case when payload ->> 'orderState' = 'TRADE_CANCELED' and nullif(payload ->> 'paymentConfirmTime', '') is not null
             then coalesce({{ local_ts("payload ->> 'orderEndTime'") }}, {{ local_ts("payload ->> 'modified'") }}) end as refunded_at,
        nullif(payload ->> 'logisticsCompany', '') as carrier,
        nullif(payload ->> 'waybill', '') as tracking_no,
        false as is_flash_sale,
        cast(null as boolean) as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{% macro shopify_order_columns() -%}
        'shopify' as platform,
        shop_id,
        order_id,
        'shopify:' || shop_id || ':' || order_id as order_key,
        nullif(payload -> 'customer' ->> 'id', '') as buyer_platform_id,
        nullif(concat_ws(' ', payload -> 'customer' ->> 'first_name', payload -> 'customer' ->> 'last_name'), '') as buyer_nick,
        coalesce(nullif(payload -> 'shipping_address' ->> 'name', ''),
                 concat(payload -> 'customer' ->> 'last_name', payload -> 'customer' ->> 'first_name')) as receiver_name,
        payload -> 'shipping_address' ->> 'province' as province,
        payload -> 'shipping_address' ->> 'city' as city,
        payload -> 'shipping_address' ->> 'address2' as district,
        concat_ws('', payload -> 'shipping_address' ->> 'province', payload -> 'shipping_address' ->> 'city',
                  payload -> 'shipping_address' ->> 'address2', payload -> 'shipping_address' ->> 'address1') as address,
        case
            when payload ->> 'financial_status' = 'refunded' then 'refunded'
            when nullif(payload ->> 'cancelled_at', '') is not null then 'closed'
            when payload ->> 'financial_status' in ('voided', 'expired') then 'closed'
            when payload ->> 'financial_status' in ('pending', 'authorized', 'partially_paid') then 'unpaid'
            when payload ->> 'fulfillment_status' = 'fulfilled' and nullif(payload ->> 'closed_at', '') is not null then 'completed'
            when payload ->> 'fulfillment_status' = 'fulfilled' then 'shipped'
            else 'paid'
        end as status,
        concat_ws('/', payload ->> 'financial_status', coalesce(payload ->> 'fulfillment_status', 'unfulfilled')) as platform_status,
        coalesce(nullif(payload ->> 'currency', ''), 'USD') as currency,
        {{ money("payload ->> 'total_price'") }} as order_amount,
        coalesce({{ money("payload ->> 'total_discounts'") }}, 0) as discount_amount,
        greatest(coalesce({{ money("payload ->> 'total_price'") }}, 0) - coalesce({{ money("payload ->> 'subtotal_price'") }}, 0)
                 - coalesce({{ money("payload ->> 'total_tax'") }}, 0), 0) as shipping_amount,
        {{ iso_ts("payload ->> 'created_at'") }} as created_at,
        case when payload ->> 'financial_status' in ('paid', 'partially_refunded', 'refunded')
             then {{ iso_ts("payload ->> 'processed_at'") }} end as paid_at,
        {{ iso_ts("payload -> 'fulfillments' -> 0 ->> 'created_at'") }} as shipped_at,
        case when payload ->> 'fulfillment_status' = 'fulfilled' then {{ iso_ts("payload ->> 'closed_at'") }} end as completed_at,
        {{ iso_ts("payload ->> 'cancelled_at'") }} as closed_at,
        {{ iso_ts("payload -> 'refunds' -> 0 ->> 'created_at'") }} as refunded_at,
        nullif(payload -> 'fulfillments' -> 0 ->> 'tracking_company', '') as carrier,
        nullif(payload -> 'fulfillments' -> 0 ->> 'tracking_number', '') as tracking_no,
        coalesce(payload ->> 'tags', '') like '%flash-sale%' as is_flash_sale,
        case when payload ? 'buyer_accepts_marketing' then (payload ->> 'buyer_accepts_marketing')::boolean end as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{% macro woocommerce_order_columns() -%}
        'woocommerce' as platform,
        shop_id,
        order_id,
        'woocommerce:' || shop_id || ':' || order_id as order_key,
        nullif(nullif(payload ->> 'customer_id', ''), '0') as buyer_platform_id,
        nullif(concat(payload -> 'billing' ->> 'last_name', payload -> 'billing' ->> 'first_name'), '') as buyer_nick,
        nullif(concat(payload -> 'shipping' ->> 'last_name', payload -> 'shipping' ->> 'first_name'), '') as receiver_name,
        payload -> 'shipping' ->> 'state' as province,
        payload -> 'shipping' ->> 'city' as city,
        payload -> 'shipping' ->> 'address_2' as district,
        concat_ws('', payload -> 'shipping' ->> 'state', payload -> 'shipping' ->> 'city',
                  payload -> 'shipping' ->> 'address_2', payload -> 'shipping' ->> 'address_1') as address,
        case payload ->> 'status'
            when 'pending' then 'unpaid'
            when 'on-hold' then 'unpaid'
            when 'checkout-draft' then 'unpaid'
            when 'processing' then 'paid'
            when 'completed' then 'completed'
            when 'refunded' then 'refunded'
            else 'closed'  -- cancelled, failed, trash
        end as status,
        payload ->> 'status' as platform_status,
        coalesce(nullif(payload ->> 'currency', ''), 'CNY') as currency,
        {{ money("payload ->> 'total'") }} as order_amount,
        coalesce({{ money("payload ->> 'discount_total'") }}, 0) as discount_amount,
        coalesce({{ money("payload ->> 'shipping_total'") }}, 0) as shipping_amount,
        (nullif(payload ->> 'date_created_gmt', '') || '+00')::timestamptz as created_at,
        (nullif(payload ->> 'date_paid_gmt', '') || '+00')::timestamptz as paid_at,
        -- shipment tracking plugin meta (_wc_shipment_tracking_items): date_shipped is a unix time
        (select to_timestamp((m -> 'value' -> 0 ->> 'date_shipped')::bigint)
           from jsonb_array_elements(coalesce(payload -> 'meta_data', '[]'::jsonb)) m
          where m ->> 'key' = '_wc_shipment_tracking_items' limit 1) as shipped_at,
        case when payload ->> 'status' = 'completed' then (nullif(payload ->> 'date_completed_gmt', '') || '+00')::timestamptz end as completed_at,
        case when payload ->> 'status' in ('cancelled', 'failed', 'trash') then (nullif(payload ->> 'date_modified_gmt', '') || '+00')::timestamptz end as closed_at,
        case when payload ->> 'status' = 'refunded' then (nullif(payload ->> 'date_modified_gmt', '') || '+00')::timestamptz end as refunded_at,
        (select m -> 'value' -> 0 ->> 'tracking_provider'
           from jsonb_array_elements(coalesce(payload -> 'meta_data', '[]'::jsonb)) m
          where m ->> 'key' = '_wc_shipment_tracking_items' limit 1) as carrier,
        (select m -> 'value' -> 0 ->> 'tracking_number'
           from jsonb_array_elements(coalesce(payload -> 'meta_data', '[]'::jsonb)) m
          where m ->> 'key' = '_wc_shipment_tracking_items' limit 1) as tracking_no,
        false as is_flash_sale,
        cast(null as boolean) as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{#- Youzan (WeChat shops): the payload is one full_order_info. Encrypted PII reads from
    the decrypt enrichment (extract/youzan.py). UNCONFIRMED in the reference and chosen in
    the sandbox (sandbox/formats.py YOUZAN_*): statuses other than TRADE_SUCCESS,
    refund_state 2 = fully refunded; the API gives no carrier or tracking number here. -#}
{% macro youzan_order_columns() -%}
        'youzan' as platform,
        shop_id,
        order_id,
        'youzan:' || shop_id || ':' || order_id as order_key,
        nullif(payload -> 'buyer_info' ->> 'yz_open_id', '') as buyer_platform_id,
        coalesce(derived -> 'enrichment' -> 'buyer' ->> 'nickname', {{ yz_plain("payload -> 'buyer_info' ->> 'fans_nickname'") }}) as buyer_nick,
        coalesce(derived -> 'enrichment' -> 'receiver' ->> 'name', {{ yz_plain("payload -> 'address_info' ->> 'receiver_name'") }}) as receiver_name,
        nullif(payload -> 'address_info' ->> 'delivery_province', '') as province,
        nullif(payload -> 'address_info' ->> 'delivery_city', '') as city,
        nullif(payload -> 'address_info' ->> 'delivery_district', '') as district,
        nullif(concat_ws('', payload -> 'address_info' ->> 'delivery_province', payload -> 'address_info' ->> 'delivery_city',
                  payload -> 'address_info' ->> 'delivery_district',
                  coalesce(derived -> 'enrichment' -> 'receiver' ->> 'address_detail',
                           {{ yz_plain("payload -> 'address_info' ->> 'delivery_address'") }})), '') as address,
        case
            when payload -> 'order_info' ->> 'refund_state' = '2' then 'refunded'
            when payload -> 'order_info' ->> 'status' = 'TRADE_CLOSE'
                 then case when nullif(payload -> 'order_info' ->> 'pay_time', '') is not null then 'refunded' else 'closed' end
            when payload -> 'order_info' ->> 'status' = 'WAIT_BUYER_PAY' then 'unpaid'
            when payload -> 'order_info' ->> 'status' in ('TRADE_PAID', 'WAIT_CONFIRM', 'WAIT_SELLER_SEND_GOODS') then 'paid'
            when payload -> 'order_info' ->> 'status' = 'WAIT_BUYER_CONFIRM_GOODS' then 'shipped'
            when payload -> 'order_info' ->> 'status' = 'TRADE_SUCCESS' then 'completed'
        end as status,
        payload -> 'order_info' ->> 'status' as platform_status,
        'CNY' as currency,
        {{ money("payload -> 'pay_info' ->> 'payment'") }} as order_amount,
        -- no discount field: what the goods and postage cost beyond what was paid
        greatest(coalesce({{ money("payload -> 'pay_info' ->> 'total_fee'") }}, 0)
                 + coalesce({{ money("payload -> 'pay_info' ->> 'post_fee'") }}, 0)
                 - coalesce({{ money("payload -> 'pay_info' ->> 'payment'") }}, 0), 0) as discount_amount,
        coalesce({{ money("payload -> 'pay_info' ->> 'post_fee'") }}, 0) as shipping_amount,
        {{ local_ts("payload -> 'order_info' ->> 'created'") }} as created_at,
        {{ local_ts("payload -> 'order_info' ->> 'pay_time'") }} as paid_at,
        {{ local_ts("payload -> 'order_info' ->> 'consign_time'") }} as shipped_at,
        {{ local_ts("payload -> 'order_info' ->> 'success_time'") }} as completed_at,
        case when payload -> 'order_info' ->> 'status' = 'TRADE_CLOSE' and nullif(payload -> 'order_info' ->> 'pay_time', '') is null
             then {{ local_ts("payload -> 'order_info' ->> 'update_time'") }} end as closed_at,
        case when payload -> 'order_info' ->> 'refund_state' = '2'
                  or (payload -> 'order_info' ->> 'status' = 'TRADE_CLOSE' and nullif(payload -> 'order_info' ->> 'pay_time', '') is not null)
             then {{ local_ts("payload -> 'order_info' ->> 'update_time'") }} end as refunded_at,
        cast(null as text) as carrier,
        cast(null as text) as tracking_no,
        false as is_flash_sale,
        cast(null as boolean) as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{% macro intake_order_columns() -%}
        'intake' as platform,
        shop_id,
        order_id,
        'intake:' || shop_id || ':' || order_id as order_key,
        nullif(payload ->> 'buyer_id', '') as buyer_platform_id,
        nullif(payload ->> 'name', '') as buyer_nick,
        nullif(payload ->> 'name', '') as receiver_name,
        nullif(payload ->> 'province', '') as province,
        nullif(payload ->> 'city', '') as city,
        cast(null as text) as district,
        nullif(concat_ws('', nullif(payload ->> 'province', ''), nullif(payload ->> 'city', ''), nullif(payload ->> 'address', '')), '') as address,
        payload ->> 'status' as status,
        payload ->> 'status' as platform_status,
        'CNY' as currency,
        {{ money("payload ->> 'amount'") }} as order_amount,
        cast(0 as numeric(14, 2)) as discount_amount,
        cast(0 as numeric(14, 2)) as shipping_amount,
        (payload ->> 'paid_at')::timestamptz as created_at,
        case when payload ->> 'status' in ('paid', 'shipped', 'completed', 'refunded') then (payload ->> 'paid_at')::timestamptz end as paid_at,
        cast(null as timestamptz) as shipped_at,
        case when payload ->> 'status' = 'completed' then (payload ->> 'paid_at')::timestamptz end as completed_at,
        case when payload ->> 'status' = 'closed' then (payload ->> 'paid_at')::timestamptz end as closed_at,
        cast(null as timestamptz) as refunded_at,
        cast(null as text) as carrier,
        cast(null as text) as tracking_no,
        false as is_flash_sale,
        cast(null as boolean) as accepts_marketing,
        {{ common_identity_columns() }}
{%- endmacro %}

{#- Line items: one row per item of the order payload. -#}
{% macro order_item_rows(platform, relation) -%}
    {%- if platform == 'taobao' %}
    select 'taobao:' || r.shop_id || ':' || r.order_id as order_key, i.ordinality as line_no,
           i.item ->> 'outer_iid' as sku, i.item ->> 'title' as title,
           (i.item ->> 'num')::int as quantity, {{ money("i.item ->> 'price'") }} as unit_price,
           {{ money("i.item ->> 'payment'") }} as line_amount, 'CNY' as currency
      from {{ relation }} r
      cross join lateral jsonb_array_elements(coalesce(r.payload -> 'orders' -> 'order', '[]'::jsonb)) with ordinality as i(item, ordinality)
    {%- elif platform == 'jd' %}
    select 'jd:' || r.shop_id || ':' || r.order_id, i.ordinality,
           i.item ->> 'outerSkuId', i.item ->> 'skuName',
           (i.item ->> 'itemTotal')::int, {{ money("i.item ->> 'jdPrice'") }},
           {{ money("i.item ->> 'jdPrice'") }} * (i.item ->> 'itemTotal')::int, 'CNY'
      from {{ relation }} r
      cross join lateral jsonb_array_elements(coalesce(r.payload -> 'itemInfoList', '[]'::jsonb)) with ordinality as i(item, ordinality)
    {%- elif platform == 'shopify' %}
    select 'shopify:' || r.shop_id || ':' || r.order_id, i.ordinality,
           i.item ->> 'sku', i.item ->> 'title',
           (i.item ->> 'quantity')::int, {{ money("i.item ->> 'price'") }},
           {{ money("i.item ->> 'price'") }} * (i.item ->> 'quantity')::int, coalesce(r.payload ->> 'currency', 'USD')
      from {{ relation }} r
      cross join lateral jsonb_array_elements(coalesce(r.payload -> 'line_items', '[]'::jsonb)) with ordinality as i(item, ordinality)
    {%- elif platform == 'woocommerce' %}
    select 'woocommerce:' || r.shop_id || ':' || r.order_id, i.ordinality,
           i.item ->> 'sku', i.item ->> 'name',
           (i.item ->> 'quantity')::int, {{ money("i.item ->> 'price'") }},
           {{ money("i.item ->> 'total'") }}, coalesce(r.payload ->> 'currency', 'CNY')
      from {{ relation }} r
      cross join lateral jsonb_array_elements(coalesce(r.payload -> 'line_items', '[]'::jsonb)) with ordinality as i(item, ordinality)
    {%- elif platform == 'youzan' %}
    select 'youzan:' || r.shop_id || ':' || r.order_id, i.ordinality,
           i.item ->> 'outer_sku_id', i.item ->> 'title',
           (i.item ->> 'num')::int, {{ money("i.item ->> 'price'") }},
           {{ money("i.item ->> 'payment'") }}, 'CNY'
      from {{ relation }} r
      cross join lateral jsonb_array_elements(coalesce(r.payload -> 'orders', '[]'::jsonb)) with ordinality as i(item, ordinality)
    {%- elif platform == 'intake' %}
    select 'intake:' || r.shop_id || ':' || r.order_id, 1::bigint,
           nullif(r.payload ->> 'product', ''), nullif(r.payload ->> 'product', ''),
           coalesce((r.payload ->> 'quantity')::int, 1),
           {{ money("r.payload ->> 'amount'") }} / greatest(coalesce((r.payload ->> 'quantity')::int, 1), 1),
           {{ money("r.payload ->> 'amount'") }}, 'CNY'
      from {{ relation }} r
    {%- endif %}
{%- endmacro %}
