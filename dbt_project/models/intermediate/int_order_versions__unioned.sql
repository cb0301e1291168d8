{{ config(materialized='view') }}
-- Every landed version of every order, all platforms.

with unioned as (
    {% for p in order_platforms() %}
    select platform, shop_id, order_id, order_key, payload_hash, status, source_updated_at, loaded_at
    from {{ ref('stg_' ~ p ~ '__order_versions') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
