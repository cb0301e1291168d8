{{ config(
    materialized='incremental',
    unique_key='order_key',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['order_key'], 'unique': true}, {'columns': ['customer_id']}, {'columns': ['order_date']},
             {'columns': ['loaded_at']}, {'columns': ['modeled_at']}],
    pre_hook=["{{ fct_orders_changed_before() }}"],
    post_hook=["{{ fct_orders_identity_record() }}", "{{ fct_orders_changes_record() }}"]
) }}
-- One row per order from every platform and shop, in one vocabulary, with its customer.
-- Incremental: the orders int_orders rewrote since this model last ran and every
-- order whose identity node now belongs to another customer (a merge or split):
-- the nodes whose customer differs from the one this table's rows carry, kept per
-- node beside it (fct_orders_identity_applied, D46), so a night compares 200k nodes,
-- not every order. The pre-hook lists those orders; the post-hook logs them
-- (fct_orders_changes) for int_customer_increments, in the same transaction.
-- cost_cny and categories sum up the order's lines (fct_order_items' catalog
-- cost and category) so per-customer and per-month models need not join the
-- lines back (D23).

with identity as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

orders as (
    select * from {{ ref('int_orders') }}
    {% if is_incremental() %}
    -- the pre-hook analyzed the night's orders: a semi-join by the order_key index (D48)
    where order_key in (select order_key from fct_orders__changed)
    {% endif %}
),

lines as (
    -- the lines' cost (a line without a catalog cost counts as 0) and categories
    select
        i.order_key,
        coalesce(sum(round(c.unit_cost * i.quantity, 2)), 0) as cost_cny,
        array_agg(distinct i.category order by i.category) as categories
    from {{ ref('int_order_items') }} as i
    left join {{ ref('product_catalog') }} as c on c.sku = i.sku
    {% if is_incremental() %}
    where i.order_key in (select order_key from fct_orders__changed)
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
        coalesce(l.cost_cny, 0) as cost_cny,
        coalesce(l.categories, array[]::text[]) as categories,
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
        o.modeled_at
    from orders as o
    inner join identity as i on i.node_key = o.node_key
    left join lines as l on l.order_key = o.order_key
)

select * from final
