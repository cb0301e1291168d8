-- What each WooCommerce order says about the buyer's e-mail marketing consent (issue 31).
-- WooCommerce itself keeps none: a newsletter plugin stores it as order meta. Which key is
-- the project var `woocommerce_consent_meta_key` (default: the Mailchimp for WooCommerce
-- plugin's `mailchimp_woocommerce_is_subscribed`, UNCONFIRMED for other plugins: set yours).
-- 1/yes/true -> granted, 0/no/false -> not_granted; the fact's time is the order's creation.

with source as (
    select shop_id, order_id, payload, loaded_at from {{ source('raw', 'woocommerce_orders') }}
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
        'email' as channel,
        case when flag in ('1', 'yes', 'true') then 'granted' else 'not_granted' end as consent,
        flag as platform_state,
        {{ utc_ts('created_gmt') }} as fact_at,
        'meta_data.{{ var("woocommerce_consent_meta_key") }}' as source_field,
        loaded_at
    from fields
    where flag is not null
)

select * from final
