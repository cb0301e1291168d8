{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook=["{{ identifier_status_affected() }}"],
    post_hook=["{{ identifier_status_read() }}"]
) }}
-- Whether each identifier may link customers (R3):
--   junk        placeholder values (seed junk_identifiers, repeated-digit numbers)
--   over_cap    shared by more than identity_max_holders distinct people
--               (a shop's front-desk phone); people = distinct names, else nodes;
--               for name+address (the name is part of the value) always nodes, so a
--               mailroom's "前台 + office address" cannot chain a whole company together
--   split_rule  blocked by `crm identity split phone:+86...`
--   used        links every node that carries it
-- Incremental by identifier (D47, macros/identifier_status.sql): the identifiers
-- the nodes rebuilt tonight carry now or carried before, every identifier not
-- 'used' or over the cap, and those the seed and the split rules name are
-- recomputed from all their rows; the rest keep their row.

with identifiers as (
    select * from {{ ref('int_identity__node_identifiers') }}
    {% if is_incremental() %}
    where {{ identifier_status_affected_filter() }}
    {% endif %}
),

junk as (
    select identifier_type, identifier_value, reason from {{ ref('junk_identifiers') }}
),

split_rules as (
    {{ identifier_split_rules() }}
),

per_holder as (
    -- one row per identifier and holder (a node carries an identifier once), so
    -- both counts below are plain counts: two hash aggregates, no sort of every row
    select
        identifier_type,
        identifier_value,
        case when identifier_type = 'name_address' then node_key else coalesce(holder, node_key) end as holder_key,
        count(*) as nodes
    from identifiers
    group by identifier_type, identifier_value, 3
),

per_identifier as (
    select
        identifier_type,
        identifier_value,
        sum(nodes)::bigint as nodes,
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
            -- +861 and one digit ten times (+8613333333333); string functions, not a
            -- back-referencing regex (which costs microseconds per phone)
            when p.identifier_type = 'phone' and length(p.identifier_value) = 14 and p.identifier_value like '+861%'
                 and substr(p.identifier_value, 5, 1) between '0' and '9'
                 and substr(p.identifier_value, 5) = repeat(substr(p.identifier_value, 5, 1), 10) then 'junk'
            when p.identifier_type = 'email' and p.identifier_value in ('null', 'none', 'n/a') then 'junk'
            when s.identifier_value is not null then 'split_rule'
            when p.holders > {{ var('identity_max_holders') }} then 'over_cap'
            else 'used'
        end as status,
        {{ modeled_at() }} as modeled_at
    from per_identifier as p
    left join junk as j on j.identifier_type = p.identifier_type and j.identifier_value = p.identifier_value
    left join split_rules as s on s.identifier_type = p.identifier_type and s.identifier_value = p.identifier_value
)

select * from final
