{{ config(indexes=[{'columns': ['order_key']}, {'columns': ['loaded_at']}],
          **order_model_config(['order_key', 'payload_hash'])) }}
-- Every landed version of every order with its status in our vocabulary, typed once
-- (D122): the status history recounts from this narrow table instead of re-reading
-- each version's JSON every night. Incremental (delete+insert by version): the versions
-- landed since the newest this table holds, minus incremental_lookback_days.

with versions as (
    select * from {{ ref('int_order_versions__unioned') }}
    {% if is_incremental() %}
    where {{ landed_since('loaded_at') }}
    {% endif %}
),

final as (
    select
        order_key,
        payload_hash,
        platform,
        shop_id,
        order_id,
        status,
        source_updated_at,
        loaded_at
    from versions
)

select * from final
