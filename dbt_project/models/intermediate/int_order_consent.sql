{{ config(indexes=[{'columns': ['order_key'], 'unique': true}, {'columns': ['loaded_at']}],
          **order_model_config('order_key')) }}
-- Every Shopify and WooCommerce order's marketing-consent facts, one row per order with
-- a group of columns per channel (empty where the order carries no fact), read from the
-- payload once (D122): customer_consent takes each customer's latest fact per channel
-- from this table instead of re-reading every order's JSON each night.
-- Incremental (delete+insert by order): the orders landed since the newest this table
-- holds, minus incremental_lookback_days. Every order keeps its row, facts or not, so an
-- order whose newer version no longer carries a fact replaces the one that did.

with orders as (
    {% for model in ['stg_shopify__marketing_consent', 'stg_woocommerce__marketing_consent'] %}
    select * from {{ ref(model) }}
    {% if is_incremental() %}
    where {{ landed_since('loaded_at') }}
    {% endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        order_key,
        platform,
        shop_id,
        order_id,
        email_consent,
        email_platform_state,
        email_fact_at,
        email_source_field,
        sms_consent,
        sms_platform_state,
        sms_fact_at,
        sms_source_field,
        loaded_at
    from orders
)

select * from final
