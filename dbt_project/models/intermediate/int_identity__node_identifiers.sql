{{ config(
    materialized='incremental',
    unique_key='node_key',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['node_key']}],
    pre_hook=["{{ touched_nodes_scope() }}", "{{ node_identifiers_delete_touched() }}"]
) }}
-- Every identifier seen on a node, with the first order it came from (the evidence).
-- phone: E.164 (phonenumbers, at landing); email: lower-cased; name_address: a
-- weak signal, only when the address is specific enough. Masked phones never
-- appear here: a masked value cannot merge two customers.
-- Incremental, keyed by node: the nodes of orders int_orders rewrote since this
-- model last ran (its modeled_at stamp) are rebuilt from all their orders. The pre-hook removes
-- those nodes' rows first: a node whose orders no longer carry any identifier
-- (a platform erasing a closed order's receiver) has no row to replace them; the
-- identifiers of the deleted rows are logged for int_identity__identifier_status (D47).

with orders as (
    select
        node_key, order_key, created_at, loaded_at, phones, email,
        {{ norm_text('coalesce(receiver_name, buyer_nick)') }} as holder,
        {{ norm_text('receiver_name') }} as name_norm,
        {{ norm_text('address') }} as address_norm
    from {{ ref('int_orders') }}
    {% if is_incremental() %}
    where {{ touched_nodes_filter() }}
    {% endif %}
),

phones as (
    select o.node_key, 'phone' as identifier_type, p.value as identifier_value, o.order_key, o.created_at,
           o.holder, o.loaded_at
    from orders as o
    cross join lateral jsonb_array_elements_text(coalesce(o.phones, '[]'::jsonb)) as p(value)
),

emails as (
    select node_key, 'email', lower(email), order_key, created_at, holder, loaded_at
    from orders
    where email is not null
),

name_addresses as (
    select node_key, 'name_address', md5(name_norm || '|' || address_norm), order_key, created_at, name_norm, loaded_at
    from orders
    where name_norm is not null
      and length(address_norm) >= {{ var('identity_min_address_length') }}
),

all_identifiers as (
    select * from phones
    union all select * from emails
    union all select * from name_addresses
),

final as (
    select
        node_key,
        identifier_type,
        identifier_value,
        (array_agg(order_key order by created_at, order_key))[1] as evidence_order_key,
        min(created_at) as first_seen_at,
        min(holder) as holder,
        max(loaded_at) as last_loaded_at,
        -- the run that rebuilt the node (not its orders' stamp: a node rebuilt because an
        -- order left it keeps only older orders, and customer_identities picks up by this)
        {{ modeled_at() }} as last_modeled_at
    from all_identifiers
    group by node_key, identifier_type, identifier_value
)

select * from final
