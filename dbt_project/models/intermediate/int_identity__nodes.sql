-- Identity nodes (R3): one per platform buyer account, or per order when the
-- platform gives no buyer id (guest checkouts, spreadsheet rows without one).
-- The platform buyer id is itself an identifier: all its orders are one node.

with orders as (
    select node_key, platform, shop_id, order_key, created_at from {{ ref('int_orders') }}
),

ranked as (
    select
        *,
        row_number() over (partition by node_key order by created_at, order_key) as nth
    from orders
),

final as (
    select
        node_key,
        min(platform) as platform,
        min(shop_id) as shop_id,
        min(created_at) as first_seen_at,
        max(case when nth = 1 then order_key end) as first_order_key,
        count(*) as orders
    from ranked
    group by node_key
)

select * from final
