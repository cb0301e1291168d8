{{ config(indexes=[{'columns': ['order_key']}, {'columns': ['loaded_at']}],
          **order_model_config(['order_key', 'channel'])) }}
-- Every order's marketing-consent facts (one row per order and channel that carries
-- one), all platforms, read from the payload once (D122): customer_consent joins this
-- table to the night's customers instead of re-reading every order's JSON.
-- Incremental (delete+insert by order and channel): the orders landed since the newest
-- this table holds, minus incremental_lookback_days. A platform never drops a consent
-- field from an order it once sent it on (Shopify always carries both states).

with facts as (
    -- the staging models hold one row per order; here one per order and channel with a fact
    {% for model in ['stg_shopify__marketing_consent', 'stg_woocommerce__marketing_consent'] %}
    {% set outer_loop = loop %}
    {% for channel in ['email', 'sms'] %}
    select
        order_key,
        '{{ channel }}' as channel,
        platform,
        shop_id,
        order_id,
        {{ channel }}_consent as consent,
        {{ channel }}_platform_state as platform_state,
        {{ channel }}_fact_at as fact_at,
        {{ channel }}_source_field as source_field,
        loaded_at
    from {{ ref(model) }}
    where {{ channel }}_platform_state is not null
    {% if is_incremental() %}
        and {{ landed_since('loaded_at') }}
    {% endif %}
    {% if not (loop.last and outer_loop.last) %}union all{% endif %}
    {% endfor %}
    {% endfor %}
),

final as (
    select
        order_key,
        channel,
        platform,
        shop_id,
        order_id,
        consent,
        platform_state,
        fact_at,
        source_field,
        loaded_at
    from facts
)

select * from final
