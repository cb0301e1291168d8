{{ config(indexes=[{'columns': ['order_key']}], **order_model_config('order_key')) }}
-- Line items with product category and usage period (seed product_catalog), and what
-- was refunded on each line (D100): every line of a refunded order in full; else the
-- platform's refunds of the line where it reports them per line (Shopify
-- refund_line_items, Taobao and Youzan sub-orders), else the order's refund spread
-- over its lines in proportion to their amounts. Never more than the line.
-- Incremental (delete+insert by order): every line of the orders landed since the
-- newest this table holds, minus incremental_lookback_days, so a line the platform
-- dropped does not linger.

with items as (
    select * from {{ ref('int_order_items__unioned') }}
    {% if is_incremental() %}
    where {{ landed_since('loaded_at') }}
    {% endif %}
),

orders as (
    select order_key, status, refund_cny from {{ ref('int_orders') }}
),

catalog as (
    select * from {{ ref('product_catalog') }}
),

fx as (
    select currency, rate_to_cny from {{ ref('fx_rates') }}
),

lines as (
    select
        i.*,
        round(i.line_amount * coalesce(fx.rate_to_cny, 1), 2) as amount_cny,
        round(i.refund_amount * coalesce(fx.rate_to_cny, 1), 2) as reported_refund_cny
    from items as i
    left join fx on fx.currency = i.currency
),

per_order as (
    -- whether the platform reported refunds per line for the order, and its lines' total
    select
        *,
        max(case when reported_refund_cny is not null then 1 else 0 end) over (partition by order_key) as has_line_refunds,
        sum(amount_cny) over (partition by order_key) as order_lines_cny
    from lines
),

final as (
    select
        i.order_key,
        i.line_no,
        -- the catalog's SKU where the line's SKU or, failing that, its title is in the catalog
        coalesce(c_sku.sku, c_title.sku, i.sku) as sku,
        i.title,
        coalesce(c_sku.category, c_title.category, 'other') as category,
        coalesce(c_sku.usage_days, c_title.usage_days) as usage_days,
        i.quantity,
        i.unit_price,
        i.line_amount,
        i.currency,
        i.amount_cny as line_amount_cny,
        {{ line_refund_cny() }} as line_refund_cny,
        i.amount_cny - {{ line_refund_cny() }} as net_line_amount_cny,
        i.loaded_at,
        {{ modeled_at() }} as modeled_at
    from per_order as i
    inner join orders as o on o.order_key = i.order_key
    left join catalog as c_sku on c_sku.sku = i.sku
    -- a line whose SKU the catalog does not know (a spreadsheet's product name, a
    -- platform's own code) matches by its exact title
    left join catalog as c_title on c_sku.sku is null and c_title.title = trim(i.title)
)

select * from final
