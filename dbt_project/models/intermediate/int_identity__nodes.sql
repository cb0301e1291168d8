-- Identity nodes (R3): one per platform buyer account, or per order when the
-- platform gives no buyer id (guest checkouts, spreadsheet rows without one).
-- The platform buyer id is itself an identifier: all its orders are one node.
-- own_name: the name its orders go to most often (int_identity__links).

with orders as (
    select node_key, platform, shop_id, order_key, created_at, holder from {{ ref('int_orders') }}
),

-- the name the node's orders go to most often (ties: the earliest); int_identity__links
names as (
    select
        node_key,
        holder,
        row_number() over (partition by node_key order by count(*) desc, min(created_at), holder) as nth
    from orders
    where holder is not null
    group by node_key, holder
),

ranked as (
    select
        *,
        row_number() over (partition by node_key order by created_at, order_key) as nth
    from orders
),

per_node as (
    select
        node_key,
        min(platform) as platform,
        min(shop_id) as shop_id,
        min(created_at) as first_seen_at,
        max(case when nth = 1 then order_key end) as first_order_key,
        count(*) as orders
    from ranked
    group by node_key
),

final as (
    select p.*, n.holder as own_name
    from per_node as p
    left join names as n on n.node_key = p.node_key and n.nth = 1
)

select * from final
