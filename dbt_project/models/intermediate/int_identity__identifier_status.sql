-- Whether each identifier may link customers (R3):
--   junk        placeholder values (seed junk_identifiers, repeated-digit numbers)
--   over_cap    shared by more than identity_max_holders distinct people
--               (a shop's front-desk phone); people = distinct names, else nodes;
--               for name+address (the name is part of the value) always nodes, so a
--               mailroom's "前台 + office address" cannot chain a whole company together
--   split_rule  blocked by `crm identity split phone:+86...`
--   used        links every node that carries it

with identifiers as (
    select * from {{ ref('int_identity__node_identifiers') }}
),

junk as (
    select identifier_type, identifier_value, reason from {{ ref('junk_identifiers') }}
),

split_rules as (
    -- `crm identity split phone:+86...` (active rules naming an identifier, not a node)
    select
        split_part(left_ref, ':', 1) as identifier_type,
        substr(left_ref, length(split_part(left_ref, ':', 1)) + 2) as identifier_value
    from {{ source('ops', 'identity_rules') }}
    where action = 'split' and active and split_part(left_ref, ':', 1) in ('phone', 'email', 'name_address')
),

per_holder as (
    -- one row per identifier and holder (a node carries an identifier once), so
    -- both counts below are plain counts
    select
        identifier_type,
        identifier_value,
        case when identifier_type = 'name_address' then node_key else coalesce(holder, node_key) end as holder_key,
        count(*) as nodes
    from identifiers
    group by identifier_type, identifier_value,
             case when identifier_type = 'name_address' then node_key else coalesce(holder, node_key) end
),

per_identifier as (
    select
        identifier_type,
        identifier_value,
        cast(sum(nodes) as bigint) as nodes,
        count(*) as holders
    from per_holder
    group by identifier_type, identifier_value
),

final as (
    select
        p.identifier_type,
        p.identifier_value,
        p.nodes,
        p.holders,
        case
            when j.identifier_value is not null then 'junk'
            -- +861 and one digit ten times (+8613333333333)
            when p.identifier_type = 'phone' and length(p.identifier_value) = 14 and p.identifier_value like '+861%'
                 and substr(p.identifier_value, 5, 1) between '0' and '9'
                 and substr(p.identifier_value, 5) = repeat(substr(p.identifier_value, 5, 1), 10) then 'junk'
            when p.identifier_type = 'email' and p.identifier_value in ('null', 'none', 'n/a') then 'junk'
            when s.identifier_value is not null then 'split_rule'
            when p.holders > {{ var('identity_max_holders') }} then 'over_cap'
            else 'used'
        end as status
    from per_identifier as p
    left join junk as j on j.identifier_type = p.identifier_type and j.identifier_value = p.identifier_value
    left join split_rules as s on s.identifier_type = p.identifier_type and s.identifier_value = p.identifier_value
)

select * from final
