{{ config(materialized='view') }}
-- Line items of all platforms (view).
{% set platforms = ['taobao', 'jd', 'shopify', 'woocommerce', 'intake'] %}

with unioned as (
    {% for p in platforms %}
    select * from {{ ref('stg_' ~ p ~ '__order_items') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from unioned
