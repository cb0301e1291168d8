{{ config(indexes=[{'columns': ['node_key']}, {'columns': ['customer_id']}]) }}
-- The evidence behind every customer (R3): each platform account or order node,
-- each identifier it carried, the first order it came from, and whether that
-- identifier linked customers or was blocked (junk, over_cap, split_rule, or
-- other_name: its carriers' names show different people, int_identity__links).

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

links as (
    select * from {{ ref('int_identity__links') }}
),

link_groups as (
    select identifier_type, identifier_value, link_name, count(*) as members
    from links
    where link_name is not null
    group by identifier_type, identifier_value, link_name
),

carrier_customers as (
    select l.identifier_type, l.identifier_value, count(distinct r.customer_id) as customers
    from links as l
    inner join resolved as r on r.node_key = l.node_key
    group by l.identifier_type, l.identifier_value
),

-- a usable shared identifier that links this node to no other, and whose carriers are
-- different customers: their names show different people (other_name)
unlinked as (
    select l.node_key, l.identifier_type, l.identifier_value
    from links as l
    left join link_groups as g
        on g.identifier_type = l.identifier_type and g.identifier_value = l.identifier_value
       and g.link_name = l.link_name
    inner join carrier_customers as c
        on c.identifier_type = l.identifier_type and c.identifier_value = l.identifier_value
    where (l.link_name is null or (l.link_name <> '' and g.members < 2)) and c.customers > 1
),

identifier_rows as (
    select
        r.customer_id,
        i.node_key,
        i.identifier_type,
        i.identifier_value,
        i.evidence_order_key,
        i.first_seen_at,
        case when u.node_key is not null then 'other_name' else s.status end as link_status,
        s.holders as identifier_holders
    from identifiers as i
    inner join resolved as r on r.node_key = i.node_key
    inner join status as s on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    left join unlinked as u
        on u.node_key = i.node_key and u.identifier_type = i.identifier_type and u.identifier_value = i.identifier_value
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
