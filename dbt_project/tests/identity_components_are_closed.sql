-- Identity resolution converged (R3): no link (int_identity__links: a usable identifier
-- shared under one link name) joins two nodes of different customers. On Spark the
-- components come from a fixed number of rounds (var identity_spark_rounds): a row here
-- means a component needed more.
with resolved as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

links as (
    select node_key, identifier_type, identifier_value, link_name
    from {{ ref('int_identity__links') }}
    where link_name is not null
)

select l.identifier_type, l.identifier_value, count(distinct r.customer_id) as customers
from links as l
inner join resolved as r on r.node_key = l.node_key
group by l.identifier_type, l.identifier_value, l.link_name
having count(distinct r.customer_id) > 1
