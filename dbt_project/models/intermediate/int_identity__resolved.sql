-- Connected components over nodes linked by shared identifiers (int_identity__links:
-- usable ones, unless the names show different people) and manual force-link rules
-- (R3: matching is transitive). Force-split of a node drops its identifier links.
-- customer_id is derived from the component's earliest node, so it is stable across
-- runs and a merge keeps the oldest id.
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

links as (
    select * from {{ ref('int_identity__links') }} where link_name is not null
),

anchors as (
    select identifier_type, identifier_value, link_name, min(node_key) as anchor
    from links
    group by identifier_type, identifier_value, link_name
),

edges as (
    select l.node_key as a, an.anchor as b
    from links as l
    inner join anchors as an
        on an.identifier_type = l.identifier_type and an.identifier_value = l.identifier_value
       and an.link_name = l.link_name
    where l.node_key <> an.anchor
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
