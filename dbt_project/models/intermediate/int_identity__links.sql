-- Which node may link to which through a shared identifier (R3), and under what name.
--
-- Names are compared as "cores": the normalized name without a courtesy title or a
-- familiar affix (先生, 女士, 总, 经理, 姐, 哥, 宝贝 ...; 小, 老, 阿, 大 in front), kept only
-- when it is a Chinese personal name (one to three Chinese characters, or two parts joined
-- by a middle dot: 阿卜杜·热合曼). Two cores are compatible when equal or one is inside
-- the other (武平 and 老平姐 -> 平; 周芷若 and 芷若姐; 张先生 -> 张 and 张伟). A name that is
-- not a Chinese personal name (Latin letters, emoji, 开心就好) cannot be compared and
-- never blocks: one person writes 张三丰 on Tmall and "Sanfeng Zhang" on Shopify.
--
-- 1. A node carries a phone or e-mail as itself unless the orders it came on were addressed
--    to a comparable name incompatible with the node's own name (int_identity__nodes.own_name,
--    the name its orders go to most often): a gift sent to 李四's phone from 张三's account
--    does not link through that phone. A name+address links only the node whose own name
--    it carries (a gift sent to a friend's home).
-- 2. A phone or e-mail links all the nodes that carry it as themselves, as before, unless
--    two of their own names are incompatible (张伟 and 李娜 on a household line, 张总 and
--    李总 on a switchboard, 张伟 and 刘伟 on a reassigned number). Then each node links under
--    the lowest (by character order) of the names it is compatible with, and a node whose
--    name cannot be compared links nothing through it (link_name null).
-- Only identifiers with status 'used' (not junk, over_cap or split by a rule) and nodes
-- not force-split take part. Known limits (D110): traditional and simplified forms of one
-- name (張偉, 张伟) do not compare; a buyer with as many gifts as own orders takes the
-- friend's name as his own.

{%- set suffixes = "(先生|女士|小姐|老师|总|经理|老板|师傅|阿姨|叔叔|宝贝|妈妈|爸爸|同学|姐|哥|妹|弟|叔|姨|酱|宝|猫|鱼|米|豆)$" %}
{%- set chinese_name = "'^([一-鿿]{1,3}|[一-鿿]{1,8}·[一-鿿]{1,8})$'" %}

with nodes as (
    select
        node_key,
        own_name,
        case when {{ matches('core', chinese_name) }} then core end as own_core
    from (
        select node_key, own_name,
               regexp_replace(regexp_replace(own_name, '{{ suffixes }}', ''), '^(小|老|阿|大)', '') as core
        from {{ ref('int_identity__nodes') }}
    ) as n
),

split_nodes as (
    select left_ref as node_key from {{ source('ops', 'identity_rules') }}
    where active and action = 'split' and split_part(left_ref, ':', 1) not in ('phone', 'email', 'name_address')
),

carried as (
    select
        i.node_key, i.identifier_type, i.identifier_value, i.holder, n.own_name, n.own_core,
        regexp_replace(regexp_replace(i.holder, '{{ suffixes }}', ''), '^(小|老|阿|大)', '') as holder_stripped
    from {{ ref('int_identity__node_identifiers') }} as i
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = i.identifier_type and s.identifier_value = i.identifier_value
    inner join nodes as n on n.node_key = i.node_key
    where s.status = 'used'
      and s.nodes > 1
      and i.node_key not in (select node_key from split_nodes)
),

cored as (
    select *, case when {{ matches('holder_stripped', chinese_name) }} then holder_stripped end as holder_core
    from carried
),

usable as (
    select
        *,
        coalesce(case
            when identifier_type = 'name_address' then holder = own_name
            when holder_core is null or own_core is null then true
            else {{ names_compatible('holder_core', 'own_core') }}
        end, false) as as_itself
    from cored
),

chinese_names as (
    select distinct identifier_type, identifier_value, own_name, own_core
    from usable
    where identifier_type <> 'name_address' and as_itself and own_core is not null
),

conflicts as (
    select distinct a.identifier_type, a.identifier_value
    from chinese_names as a
    inner join chinese_names as b
        on b.identifier_type = a.identifier_type and b.identifier_value = a.identifier_value
       and a.own_name < b.own_name
    where not {{ names_compatible('a.own_core', 'b.own_core') }}
),

placed as (
    select u.node_key, u.identifier_type, u.identifier_value, min(c.own_name) as link_name
    from usable as u
    inner join conflicts as x on x.identifier_type = u.identifier_type and x.identifier_value = u.identifier_value
    inner join chinese_names as c
        on c.identifier_type = u.identifier_type and c.identifier_value = u.identifier_value
       and {{ names_compatible('u.own_core', 'c.own_core') }}
    where u.as_itself and u.own_core is not null
    group by u.node_key, u.identifier_type, u.identifier_value
),

final as (
    select
        u.node_key,
        u.identifier_type,
        u.identifier_value,
        case
            when not u.as_itself then null
            when u.identifier_type = 'name_address' or x.identifier_value is null then ''
            else p.link_name
        end as link_name
    from usable as u
    left join conflicts as x on x.identifier_type = u.identifier_type and x.identifier_value = u.identifier_value
    left join placed as p
        on p.node_key = u.node_key and p.identifier_type = u.identifier_type and p.identifier_value = u.identifier_value
)

select * from final
