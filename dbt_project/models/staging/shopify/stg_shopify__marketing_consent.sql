-- What each Shopify order says about the buyer's marketing consent (issue 31), one row per
-- order, a group of columns per channel (null where the order carries no fact):
--   email: the customer's email_marketing_consent.state, else the order's older
--          buyer_accepts_marketing flag;
--   sms:   the customer's sms_marketing_consent.state.
-- subscribed -> granted, unsubscribed -> withdrawn, anything else (not_subscribed, pending,
-- redacted, invalid, false) -> not_granted. The fact's time is consent_updated_at when
-- Shopify gives one, else the order's creation.

with source as (
    select shop_id, order_id, payload, loaded_at from ({{ raw_rows(source('raw', 'shopify_orders')) }}) as r
),

fields as (
    select
        shop_id,
        order_id,
        loaded_at,
        {{ json_text('payload', 'created_at') }} as created_at,
        {{ json_text('payload', 'buyer_accepts_marketing') }} as buyer_accepts_marketing,
        {{ json_text('payload', 'customer', 'email_marketing_consent', 'state') }} as email_state,
        {{ json_text('payload', 'customer', 'email_marketing_consent', 'consent_updated_at') }} as email_updated_at,
        {{ json_text('payload', 'customer', 'sms_marketing_consent', 'state') }} as sms_state,
        {{ json_text('payload', 'customer', 'sms_marketing_consent', 'consent_updated_at') }} as sms_updated_at
    from source
),

states as (
    select
        *,
        coalesce(email_state, case buyer_accepts_marketing when 'true' then 'subscribed'
                                                           when 'false' then 'not_subscribed' end) as email_platform_state
    from fields
),

final as (
    select
        'shopify' as platform,
        shop_id,
        order_id,
        'shopify:' || shop_id || ':' || order_id as order_key,

        -- email
        case when email_platform_state is null then null
             when email_platform_state = 'subscribed' then 'granted'
             when email_platform_state = 'unsubscribed' then 'withdrawn'
             else 'not_granted' end as email_consent,
        email_platform_state,
        {{ iso_ts("coalesce(nullif(email_updated_at, ''), created_at)") }} as email_fact_at,
        case when email_state is not null then 'customer.email_marketing_consent'
             else 'buyer_accepts_marketing' end as email_source_field,

        -- sms
        case when sms_state is null then null
             when sms_state = 'subscribed' then 'granted'
             when sms_state = 'unsubscribed' then 'withdrawn'
             else 'not_granted' end as sms_consent,
        sms_state as sms_platform_state,
        {{ iso_ts("coalesce(nullif(sms_updated_at, ''), created_at)") }} as sms_fact_at,
        'customer.sms_marketing_consent' as sms_source_field,

        loaded_at
    from states
)

select * from final
