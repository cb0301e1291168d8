{{ config(
    materialized='incremental',
    unique_key='node_key',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['node_key'], 'unique': true}],
    pre_hook=["{{ touched_nodes_scope() }}", "{{ delete_touched_nodes() }}"]
) }}
-- Identity nodes (R3): one per platform buyer account, or per order when the
-- platform gives no buyer id (guest checkouts, spreadsheet rows without one).
-- The platform buyer id is itself an identifier: all its orders are one node.
-- Incremental, keyed by node: the nodes of orders int_orders rewrote since this
-- model last ran (its modeled_at stamp) are rebuilt from all their orders.

with orders as (
    select * from {{ ref('int_orders') }}
    {% if is_incremental() %}
    where {{ touched_nodes_filter() }}
    {% endif %}
),

final as (
    select
        node_key,
        min(platform) as platform,
        min(shop_id) as shop_id,
        min(created_at) as first_seen_at,
        (array_agg(order_key order by created_at, order_key))[1] as first_order_key,
        count(*) as orders,
        max(loaded_at) as last_loaded_at,
        -- the run that rebuilt the node (not its orders' stamp: a node rebuilt because an
        -- order left it keeps only older orders, and customer_identities picks up by this)
        {{ modeled_at() }} as last_modeled_at
    from orders
    group by node_key
)

select * from final
