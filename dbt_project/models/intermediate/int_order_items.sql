{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['order_key']}, {'columns': ['modeled_at']}]
) }}
{{ depends_on_raw_orders() }}
-- Line items with product category and usage period (seed product_catalog).
-- Keyed by order: every line of a changed order is replaced, so a line the
-- platform dropped does not linger.
-- Incremental: the lines of the orders int_orders (re)wrote since this model last
-- ran (its modeled_at stamp, no lookback), read from the raw layer by key. int_orders
-- rewrites an order whenever its landed version changes (loaded_at is one of its
-- columns), so the raw layer's lookback is paid once, there.

{% set since = incremental_since('modeled_at', lookback=false) %}

with items as (
    {% if is_incremental() %}
    {% for p in order_platforms() %}
    {{ order_items_of_orders_modeled_since(p, since) }}
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
        o.loaded_at,
        {{ modeled_at() }} as modeled_at
    from items as i
    inner join orders as o on o.order_key = i.order_key
    left join catalog as c_sku on c_sku.sku = i.sku
    left join catalog as c_title on i.sku is null and c_title.title = i.title
    left join fx on fx.currency = i.currency
)

select * from final
