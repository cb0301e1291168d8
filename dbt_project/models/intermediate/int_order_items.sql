{{ config(
    materialized='incremental',
    unique_key=['order_key', 'line_no'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['order_key']}]
) }}
-- Line items with product category and usage period (seed product_catalog).

with items as (
    select i.*
    from {{ ref('int_order_items__unioned') }} as i
    {% if is_incremental() %}
    where i.order_key in (
        select order_key from {{ ref('int_orders') }}
        where loaded_at > (select coalesce(max(loaded_at), '1900-01-01') from {{ this }})
                          - interval '{{ var("incremental_lookback_days") }} days'
    )
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
