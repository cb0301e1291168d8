-- Connected components over nodes linked by usable identifiers and manual
-- force-link rules (R3: matching is transitive). Force-split of a node drops
-- its identifier links. customer_id is derived from the component's earliest
-- node, so it is stable across runs and a merge keeps the oldest id.
-- Only an identifier carried by two or more nodes can link anything: the walk
-- over the graph starts from the nodes with a link, and every other node is its
-- own component (most nodes: one account, its own phone and email).
-- The walk (macros/cross_db.sql connected_components): PostgreSQL's recursive CTE;
-- on Spark, rounds of smallest-label propagation (tests/identity_components_are_closed
-- fails if a component needs more rounds than var identity_spark_rounds).

with {{ 'recursive' if target.type != 'spark' }} nodes as (
    select node_key, first_seen_at from {{ ref('int_identity__nodes') }}
),

rules as (
    select * from {{ source('ops', 'identity_rules') }} where active
),

split_nodes as (
    select left_ref as node_key from rules
    where action = 'split' and split_part(left_ref, ':', 1) not in ('phone', 'email', 'name_address')
),

usable as (
    select i.node_key, i.identifier_type, i.identifier_value
    from {{ ref('int_identity__node_identifiers') }} as i
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    where s.status = 'used'
      and s.nodes > 1
      and i.node_key not in (select node_key from split_nodes)
),

anchors as (
    select identifier_type, identifier_value, min(node_key) as anchor
    from usable
    group by identifier_type, identifier_value
),

edges as (
    select u.node_key as a, an.anchor as b
    from usable as u
    inner join anchors as an on an.identifier_type = u.identifier_type and an.identifier_value = u.identifier_value
    where u.node_key <> an.anchor
    union
    select left_ref, right_ref from rules
    where action = 'link'
      and left_ref in (select node_key from nodes)
      and right_ref in (select node_key from nodes)
),

undirected as (
    select a, b from edges
    union
    select b, a from edges
),

linked as (
    select distinct a as node_key from undirected
),

{{ connected_components('linked', 'undirected') }},

ranked as (
    select
        c.node_key,
        first_value(c.node_key) over (
            partition by c.component order by n.first_seen_at, c.node_key
        ) as earliest_node,
        count(*) over (partition by c.component) as component_size
    from components as c
    inner join nodes as n on n.node_key = c.node_key
),

final as (
    select
        node_key,
        'C' || upper(substr(md5(earliest_node), 1, 12)) as customer_id,
        earliest_node,
        component_size
    from ranked
    union all
    select
        n.node_key,
        'C' || upper(substr(md5(n.node_key), 1, 12)),
        n.node_key,
        1
    from nodes as n
    where not exists (select 1 from linked as l where l.node_key = n.node_key)
)

select * from final
