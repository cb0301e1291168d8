{{ config(indexes=[{'columns': ['node_key']}, {'columns': ['customer_id']}]) }}
-- The evidence behind every customer (R3): each platform account or order node,
-- each identifier it carried, the first order it came from, and whether that
-- identifier linked customers or was blocked (junk, over_cap, split_rule).

with resolved as (
    select * from {{ ref('int_identity__resolved') }}
),

nodes as (
    select * from {{ ref('int_identity__nodes') }}
),

identifiers as (
    select * from {{ ref('int_identity__node_identifiers') }}
),

status as (
    select * from {{ ref('int_identity__identifier_status') }}
),

identifier_rows as (
    select
        r.customer_id,
        i.node_key,
        i.identifier_type,
        i.identifier_value,
        i.evidence_order_key,
        i.first_seen_at,
        s.status as link_status,
        s.holders as identifier_holders
    from identifiers as i
    inner join resolved as r on r.node_key = i.node_key
    inner join status as s on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
),

account_rows as (
    select
        r.customer_id,
        n.node_key,
        'platform_account' as identifier_type,
        n.node_key as identifier_value,
        n.first_order_key as evidence_order_key,
        n.first_seen_at,
        'used' as link_status,
        1 as identifier_holders
    from nodes as n
    inner join resolved as r on r.node_key = n.node_key
),

final as (
    select {{ surrogate_key(['node_key', 'identifier_type', 'identifier_value']) }} as identity_key, *,
           {{ modeled_at() }} as modeled_at
    from (
        select * from identifier_rows
        union all
        select * from account_rows
    ) as u
)

select * from final
