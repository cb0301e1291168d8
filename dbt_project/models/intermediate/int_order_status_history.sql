{{ config(
    materialized='incremental',
    unique_key=['order_key', 'status'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['order_key']}]
) }}
{{ depends_on_raw_orders(versions=true) }}
-- When each order was first and last seen in each status (from every landed
-- version). Gives milestone times a platform does not send (JD shipping time).
-- Incremental: every version of each order that got a new one since the last
-- load (minus the lookback), read by key from the raw layer (macros/incremental.sql).

{% set since = incremental_since('last_loaded_at') %}

with versions as (
    {% if is_incremental() %}
    {% for p in order_platforms() %}
    select order_key, status, source_updated_at, loaded_at from ({{ order_versions_changed_since(p, since) }}) as {{ p }}_changed
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {% else %}
    select order_key, status, source_updated_at, loaded_at from {{ ref('int_order_versions__unioned') }}
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
