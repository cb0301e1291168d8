{{ config(materialized='view') }}
-- All platforms' current orders in one vocabulary.

with unioned as (
    {% for p in order_platforms() %}
    select * from {{ ref('stg_' ~ p ~ '__orders') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
