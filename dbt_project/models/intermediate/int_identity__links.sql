-- Which node may link to which through a shared identifier (R3), and under what name.
-- A phone or e-mail shared by accounts links them all, as before, unless the accounts'
-- own names (int_identity__nodes.own_name, the name their orders go to most often) show
-- different people: two names in Chinese characters with no character in common
-- (张伟 and 李娜 on a household line; a gift to 李四's phone from 张三's account). Then
-- only the accounts under one same name link through it (link_name = that name) and a
-- nameless account cannot be placed (link_name null). A nickname keeps a character of
-- the name (武平, 老平姐) and does not block; names in Latin letters ("wei zhang",
-- "zhang wei", initials) are too varied to tell people apart and do not block either.
-- name+address carries the name in its value and links as it is.
-- Only identifiers with status 'used' (not junk, over_cap or split by a rule) and nodes
-- not force-split take part.

with nodes as (
    select node_key, own_name from {{ ref('int_identity__nodes') }}
),

split_nodes as (
    select left_ref as node_key from {{ source('ops', 'identity_rules') }}
    where active and action = 'split' and split_part(left_ref, ':', 1) not in ('phone', 'email', 'name_address')
),

usable as (
    select i.node_key, i.identifier_type, i.identifier_value, n.own_name
    from {{ ref('int_identity__node_identifiers') }} as i
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    inner join nodes as n on n.node_key = i.node_key
    where s.status = 'used'
      and s.nodes > 1
      and i.node_key not in (select node_key from split_nodes)
),

-- names without Latin letters (own_name is lower-cased: a Latin letter differs from its upper case)
chinese_names as (
    select distinct identifier_type, identifier_value, own_name
    from usable
    where identifier_type <> 'name_address' and own_name is not null and upper(own_name) = own_name
),

conflicts as (
    select distinct a.identifier_type, a.identifier_value
    from chinese_names as a
    inner join chinese_names as b
        on b.identifier_type = a.identifier_type and b.identifier_value = a.identifier_value
       and a.own_name < b.own_name
    where not {{ shares_a_character('a.own_name', 'b.own_name') }}
),

final as (
    select
        u.node_key,
        u.identifier_type,
        u.identifier_value,
        case when c.identifier_value is null then '' else u.own_name end as link_name
    from usable as u
    left join conflicts as c on c.identifier_type = u.identifier_type and c.identifier_value = u.identifier_value
)

select * from final
