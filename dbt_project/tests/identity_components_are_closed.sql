-- Identity resolution converged (R3): no usable link (or force-link) joins two nodes of
-- different customers. On Spark the components come from a fixed number of rounds
-- (var identity_spark_rounds): a row here means a component needed more.
with resolved as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

usable as (
    select i.node_key, i.identifier_type, i.identifier_value
    from {{ ref('int_identity__node_identifiers') }} as i
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    where s.status = 'used'
      and i.node_key not in (
          select left_ref from {{ source('ops', 'identity_rules') }}
          where active and action = 'split' and split_part(left_ref, ':', 1) not in ('phone', 'email', 'name_address'))
)

select u.identifier_type, u.identifier_value, count(distinct r.customer_id) as customers
from usable as u
inner join resolved as r on r.node_key = u.node_key
group by u.identifier_type, u.identifier_value
having count(distinct r.customer_id) > 1
