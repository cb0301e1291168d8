{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['order_key']}]
) }}
{{ depends_on_raw_orders() }}
-- Line items with product category and usage period (seed product_catalog).
-- Keyed by order: every line of a changed order is replaced, so a line the
-- platform dropped does not linger.

{% set since = incremental_since('loaded_at') %}

with items as (
    {% if is_incremental() %}
    -- the current version's lines of orders landed since the last load (minus
    -- the lookback), read from the raw layer by its loaded_at index
    {% for p in order_platforms() %}
    {{ order_items_landed_since(p, since) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
    {% else %}
    select * from {{ ref('int_order_items__unioned') }}
    {% endif %}
),

orders as (
    select order_key, loaded_at from {{ ref('int_orders') }}
),

catalog as (
    select * from {{ ref('product_catalog') }}
),

fx as (
    select currency, rate_to_cny from {{ ref('fx_rates') }}
),

final as (
    select
        i.order_key,
        i.line_no,
        coalesce(i.sku, c_title.sku) as sku,
        i.title,
        coalesce(c_sku.category, c_title.category, 'other') as category,
        coalesce(c_sku.usage_days, c_title.usage_days) as usage_days,
        i.quantity,
        i.unit_price,
        i.line_amount,
        i.currency,
        round(i.line_amount * coalesce(fx.rate_to_cny, 1), 2) as line_amount_cny,
        o.loaded_at
    from items as i
    inner join orders as o on o.order_key = i.order_key
    left join catalog as c_sku on c_sku.sku = i.sku
    left join catalog as c_title on i.sku is null and c_title.title = i.title
    left join fx on fx.currency = i.currency
)

select * from final
