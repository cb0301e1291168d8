-- Every identifier seen on a node, with the first order it came from (the evidence).
-- phone: E.164 (phonenumbers, at landing); email: lower-cased; name_address: a
-- weak signal, only when the address is specific enough. Masked phones never
-- appear here: a masked value cannot merge two customers.

with orders as (
    select node_key, order_key, created_at, phones, email, holder, name_norm, address_norm
    from {{ ref('int_orders') }}
),

phones as (
    select o.node_key, 'phone' as identifier_type, p as identifier_value, o.order_key, o.created_at, o.holder
    from orders as o
    {{ json_string_rows('o.phones', 'p') }}
),

emails as (
    select node_key, 'email' as identifier_type, lower(email) as identifier_value, order_key, created_at, holder
    from orders
    where email is not null
),

name_addresses as (
    select node_key, 'name_address' as identifier_type, md5(name_norm || '|' || address_norm) as identifier_value,
           order_key, created_at, name_norm as holder
    from orders
    where name_norm is not null
      and length(address_norm) >= {{ var('identity_min_address_length') }}
),

all_identifiers as (
    select * from phones
    union all
    select * from emails
    union all
    select * from name_addresses
),

ranked as (
    select
        *,
        row_number() over (partition by node_key, identifier_type, identifier_value
                           order by created_at, order_key) as nth
    from all_identifiers
),

final as (
    select
        node_key,
        identifier_type,
        identifier_value,
        max(case when nth = 1 then order_key end) as evidence_order_key,
        min(created_at) as first_seen_at,
        min(holder) as holder
    from ranked
    group by node_key, identifier_type, identifier_value
)

select * from final
