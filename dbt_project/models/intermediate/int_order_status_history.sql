{{ config(indexes=[{"columns": ["order_key"]}], **order_model_config("order_key")) }}
-- When each order was first and last seen in each status (from every landed
-- version). Gives milestone times a platform does not send (JD shipping time).
-- Incremental (delete+insert by order): every version of each order that got a new
-- one since the newest this table has seen, minus incremental_lookback_days (a
-- landing that committed late), recounted from all its versions in the typed
-- int_order_versions (no JSON is read here, D122).

with versions as (
    select * from {{ ref('int_order_versions') }}
    {% if is_incremental() %}
    where order_key in (
        select order_key from {{ ref('int_order_versions') }}
        where {{ landed_since('loaded_at', 'last_loaded_at') }}
    )
    {% endif %}
),

final as (
    select
        order_key,
        status,
        min(source_updated_at) as first_observed_at,
        max(source_updated_at) as last_observed_at,
        count(*) as versions,
        max(loaded_at) as last_loaded_at
    from versions
    where status is not null
    group by order_key, status
)

select * from final
