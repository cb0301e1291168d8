-- What each WooCommerce order says about the buyer's e-mail marketing consent (issue 31).
-- WooCommerce itself keeps none: a newsletter plugin stores it as order meta. Which key is
-- the project var `woocommerce_consent_meta_key` (default: the Mailchimp for WooCommerce
-- plugin's `mailchimp_woocommerce_is_subscribed`, UNCONFIRMED for other plugins: set yours).
-- 1/yes/true -> granted, 0/no/false -> not_granted; the fact's time is the order's creation.
-- One row per order, in the same columns as stg_shopify__marketing_consent; WooCommerce
-- keeps no SMS consent, so the sms columns are empty.

with source as (
    select shop_id, order_id, payload, loaded_at from ({{ raw_rows(source('raw', 'woocommerce_orders')) }}) as r
),

fields as (
    select
        shop_id,
        order_id,
        loaded_at,
        {{ json_text('payload', 'date_created_gmt') }} as created_gmt,
        lower({{ json_meta_scalar('payload', var('woocommerce_consent_meta_key')) }}) as flag
    from source
),

final as (
    select
        'woocommerce' as platform,
        shop_id,
        order_id,
        'woocommerce:' || shop_id || ':' || order_id as order_key,

        -- email (null where the order has no such meta entry)
        case when flag is null then null when flag in ('1', 'yes', 'true') then 'granted' else 'not_granted' end
            as email_consent,
        flag as email_platform_state,
        {{ utc_ts('created_gmt') }} as email_fact_at,
        'meta_data.{{ var("woocommerce_consent_meta_key") }}' as email_source_field,

        -- sms: none
        cast(null as {{ type_text() }}) as sms_consent,
        cast(null as {{ type_text() }}) as sms_platform_state,
        cast(null as {{ type_timestamptz() }}) as sms_fact_at,
        cast(null as {{ type_text() }}) as sms_source_field,

        loaded_at
    from fields
)

select * from final
