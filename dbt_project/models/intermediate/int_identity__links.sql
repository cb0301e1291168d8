-- Which node may link to which through a shared identifier (R3), and under what name.
--
-- A phone or e-mail shared by accounts links them all, as before, unless the accounts'
-- own names (int_identity__nodes.own_name: the name their orders go to most often) show
-- different people: two Chinese personal names that, without a courtesy title (先生, 女士,
-- 小姐, 老师) or a familiar prefix (小, 老, 阿), have no character in common (张伟 and 李娜
-- on a household line; 张先生 and 李先生 on a switchboard; a gift to 李四's phone from
-- 张三's account). A "Chinese personal name" is one to three Chinese characters once the
-- title is off; anything else (Latin letters, emoji, a free-text nickname like 开心就好)
-- cannot be compared and never blocks.
-- Where names conflict, each account links under the first of the identifier's names it
-- is compatible with (its own, or one sharing a character: 芷若姐 joins 周芷若, not 赵敏);
-- an account whose name cannot be compared (none, Latin, nickname) cannot be placed and
-- links nothing through that identifier (link_name null).
-- name+address carries a name in its value: it links only the accounts whose own name it
-- is, so a gift sent to a friend's home does not join the giver to the friend.
-- Only identifiers with status 'used' (not junk, over_cap or split by a rule) and nodes
-- not force-split take part.

with nodes as (
    select
        node_key,
        own_name,
        case when {{ matches('own_name_core', "'^[一-鿿]{1,3}$'") }} then own_name_core end as name_core
    from (
        select
            node_key,
            own_name,
            regexp_replace(regexp_replace(own_name, '(先生|女士|小姐|老师)$', ''), '^(小|老|阿)', '') as own_name_core
        from {{ ref('int_identity__nodes') }}
    ) as n
),

split_nodes as (
    select left_ref as node_key from {{ source('ops', 'identity_rules') }}
    where active and action = 'split' and split_part(left_ref, ':', 1) not in ('phone', 'email', 'name_address')
),

usable as (
    select i.node_key, i.identifier_type, i.identifier_value, i.holder, n.own_name, n.name_core
    from {{ ref('int_identity__node_identifiers') }} as i
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    inner join nodes as n on n.node_key = i.node_key
    where s.status = 'used'
      and s.nodes > 1
      and i.node_key not in (select node_key from split_nodes)
),

chinese_names as (
    select distinct identifier_type, identifier_value, own_name, name_core
    from usable
    where identifier_type <> 'name_address' and name_core is not null
),

conflicts as (
    select distinct a.identifier_type, a.identifier_value
    from chinese_names as a
    inner join chinese_names as b
        on b.identifier_type = a.identifier_type and b.identifier_value = a.identifier_value
       and a.own_name < b.own_name
    where not {{ shares_a_character('a.name_core', 'b.name_core') }}
),

-- in a conflict: the first of the identifier's names each comparable account is compatible with
placed as (
    select u.node_key, u.identifier_type, u.identifier_value, min(c.own_name) as link_name
    from usable as u
    inner join conflicts as x on x.identifier_type = u.identifier_type and x.identifier_value = u.identifier_value
    inner join chinese_names as c
        on c.identifier_type = u.identifier_type and c.identifier_value = u.identifier_value
       and (c.own_name = u.own_name or {{ shares_a_character('u.name_core', 'c.name_core') }})
    where u.name_core is not null
    group by u.node_key, u.identifier_type, u.identifier_value
),

final as (
    select
        u.node_key,
        u.identifier_type,
        u.identifier_value,
        case
            when u.identifier_type = 'name_address' then case when u.holder = u.own_name then '' end
            when x.identifier_value is null then ''
            else p.link_name
        end as link_name
    from usable as u
    left join conflicts as x on x.identifier_type = u.identifier_type and x.identifier_value = u.identifier_value
    left join placed as p
        on p.node_key = u.node_key and p.identifier_type = u.identifier_type and p.identifier_value = u.identifier_value
)

select * from final
