{{ config(
    indexes=[{'columns': ['order_key'], 'unique': true}, {'columns': ['customer_id']}, {'columns': ['order_date']},
             {'columns': ['node_key']}, {'columns': ['modeled_at']}],
    **order_model_config('order_key')
) }}
-- One row per order from every platform and shop, in one vocabulary, with its customer.
-- Incremental (delete+insert by order): the orders int_orders rewrote since this table
-- last ran (its modeled_at stamp), and every order whose identity node now belongs to
-- another customer than the one its row carries (a merge or split; one comparison of
-- this table's nodes with int_identity__resolved).
-- cost_cny and categories sum up the order's lines (catalog cost and category) so
-- per-customer and per-month models need not join the lines back (D23).

with identity as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

{% if is_incremental() %}
changed as (
    select order_key from {{ ref('int_orders') }}
    where {{ modeled_since() }}
    union
    select f.order_key
    from {{ this }} as f
    inner join identity as i on i.node_key = f.node_key
    where i.customer_id <> f.customer_id
),
{% endif %}

orders as (
    select * from {{ ref('int_orders') }}
    {% if is_incremental() %}
    where order_key in (select order_key from changed)
    {% endif %}
),

lines as (
    -- the lines' cost (a line without a catalog cost counts as 0) and categories
    select
        i.order_key,
        coalesce(sum(round(c.unit_cost * i.quantity, 2)), 0) as cost_cny,
        {{ sorted_distinct_array('i.category') }} as categories
    from {{ ref('int_order_items') }} as i
    left join {{ ref('product_catalog') }} as c on c.sku = i.sku
    {% if is_incremental() %}
    where i.order_key in (select order_key from changed)
    {% endif %}
    group by i.order_key
),

final as (
    select
        o.order_key,
        i.customer_id,
        o.platform,
        o.shop_id,
        o.order_id,
        o.node_key,
        o.buyer_platform_id,
        o.receiver_name,
        o.phone_e164,
        o.masked_phone,
        o.email,
        o.province,
        o.city,
        o.address,
        o.status,
        o.platform_status,
        o.is_paid,
        o.currency,
        o.order_amount,
        o.amount_cny,
        o.refund_cny,
        o.net_amount_cny,
        coalesce(l.cost_cny, 0) as cost_cny,
        coalesce(l.categories, {{ empty_text_array() }}) as categories,
        o.discount_amount,
        o.shipping_amount,
        o.shop_timezone,
        o.created_at,
        o.order_date,
        o.paid_at,
        o.paid_date,
        o.shipped_at,
        o.completed_at,
        o.closed_at,
        o.refunded_at,
        o.carrier,
        o.tracking_no,
        o.is_flash_sale,
        o.accepts_marketing,
        o.source_updated_at,
        o.loaded_at,
        {{ modeled_at() }} as modeled_at
    from orders as o
    inner join identity as i on i.node_key = o.node_key
    left join lines as l on l.order_key = o.order_key
)

select * from final
