{{ config(materialized='view') }}
-- Line items of all platforms' current orders.

with unioned as (
    {% for p in order_platforms() %}
    select * from {{ ref('stg_' ~ p ~ '__order_items') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
