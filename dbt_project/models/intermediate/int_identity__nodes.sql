-- Identity nodes (R3): one per platform buyer account, or per order when the
-- platform gives no buyer id (guest checkouts, spreadsheet rows without one).
-- The platform buyer id is itself an identifier: all its orders are one node.

with orders as (
    select * from {{ ref('int_orders') }}
),

final as (
    select
        node_key,
        min(platform) as platform,
        min(shop_id) as shop_id,
        min(created_at) as first_seen_at,
        (array_agg(order_key order by created_at, order_key))[1] as first_order_key,
        count(*) as orders
    from orders
    group by node_key
)

select * from final
