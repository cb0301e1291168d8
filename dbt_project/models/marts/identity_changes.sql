-- Merges and splits (R3), one row per identity node that moved to another
-- customer: 'merge' when its previous customer no longer exists (absorbed),
-- 'split' when the previous customer still exists without it.

with snap as (
    select * from {{ ref('snap_identity_map') }}
),

moves as (
    select
        node_key,
        lag(customer_id) over (partition by node_key order by dbt_valid_from) as previous_customer_id,
        customer_id,
        observed_as_of,
        dbt_valid_from as changed_at
    from snap
),

current_customers as (
    select distinct customer_id from {{ ref('int_identity__resolved') }}
),

final as (
    select
        {{ surrogate_key(['m.node_key', 'm.changed_at']) }} as identity_change_key,
        m.node_key,
        m.previous_customer_id,
        m.customer_id,
        m.observed_as_of as as_of_date,
        m.changed_at,
        case when c.customer_id is null then 'merge' else 'split' end as change_type
    from moves as m
    left join current_customers as c on c.customer_id = m.previous_customer_id
    where m.previous_customer_id is not null
      and m.previous_customer_id <> m.customer_id
)

select * from final
