{{ config(indexes=[{'columns': ['order_key'], 'unique': true}, {'columns': ['customer_id']}, {'columns': ['order_date']}]) }}
-- One row per order from every platform and shop, in one vocabulary, with its customer.

with orders as (
    select * from {{ ref('int_orders') }}
),

identity as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
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
        o.loaded_at
    from orders as o
    inner join identity as i on i.node_key = o.node_key
)

select * from final
