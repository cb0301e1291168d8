{{ config(materialized='view') }}
-- All platforms' current orders in one vocabulary (view: filtered by the incremental models above it).
{% set platforms = ['taobao', 'jd', 'shopify', 'woocommerce', 'intake'] %}

with unioned as (
    {% for p in platforms %}
    select * from {{ ref('stg_' ~ p ~ '__orders') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
