{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- One row per customer: what dim_customers takes from the customer's own orders
-- as of the run's day (golden-record contact fields, R4; lifetime metrics,
-- repurchase cycle, categories). dim_customers adds the call-outcome enrichment
-- and the columns that move with the day itself.

{% set trust = var('contact_source_trust') %}

with orders as (
    select
        o.*,
        case o.platform {% for p, rank in trust.items() %} when '{{ p }}' then {{ rank }}{% endfor %} else 9 end as trust_rank,
        -- an order addressed to another name than its account's own (a gift to a friend)
        -- does not give the customer its name and phone (issue 29, D110)
        case when n.own_name is null or io.holder is null or io.holder = n.own_name then 0 else 1 end as for_other,
        -- a placeholder or a number shared by more people than one household (a shop's
        -- front desk written on walk-in sales) is nobody's phone to message or call
        case when ps.status in ('junk', 'over_cap') then null else o.phone_e164 end as own_phone_e164
    from {{ ref('int_customer_orders') }} as o
    left join {{ ref('int_orders') }} as io on io.order_key = o.order_key
    left join {{ ref('int_identity__nodes') }} as n on n.node_key = io.node_key
    left join {{ ref('int_identity__identifier_status') }} as ps
        on ps.identifier_type = 'phone' and ps.identifier_value = o.phone_e164
),

picks as (
    -- per field, the first non-empty value of the customer's own orders, by trust, then
    -- recency (one pass)
    select
        customer_id,
        {%- for field, expr in [('name', 'coalesce(receiver_name, buyer_platform_id)'), ('phone_e164', 'own_phone_e164'),
                                ('email', 'email'), ('province', 'province'), ('city', 'city'), ('address', 'address')] %}
        {{ first_in_group(expr, ['for_other', 'trust_rank', 'created_at desc', 'order_key']) }} as {{ field }},
        {%- endfor %}
        min(created_at) as first_order_at,
        min(case when is_paid_as_of then paid_at end) as first_paid_at,
        max(case when is_paid_as_of then paid_at end) as last_paid_at,
        count(*) as total_orders,
        count(case when is_paid_as_of then 1 end) as paid_orders,
        count(case when is_refunded_as_of then 1 end) as refunded_orders,
        coalesce(sum(case when is_paid_as_of then amount_cny end), 0) as net_revenue_cny,
        {{ sorted_distinct_array('platform') }} as platforms_used,
        {{ sorted_distinct_array('shop_id') }} as shops_used
    from orders
    group by customer_id
),

categories as (
    -- the categories of the orders paid as of the day (a refunded order bought nothing)
    select o.customer_id, {{ sorted_distinct_array('c') }} as categories_bought
    from orders as o
    {{ unnest_rows(text_to_array('o.category_list'), 'c') }}
    where o.is_paid_as_of
    group by o.customer_id
),

cycle as (
    -- the cycle known at the last paid order (the one with no next)
    select customer_id, median_gap_days
    from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null
),

final as (
    select
        p.customer_id,
        p.name,
        p.phone_e164,
        p.email,
        p.province,
        p.city,
        p.address,
        p.first_order_at,
        p.first_paid_at,
        p.last_paid_at,
        p.total_orders,
        p.paid_orders,
        p.refunded_orders,
        p.net_revenue_cny,
        case when p.paid_orders > 0 then round(p.net_revenue_cny / p.paid_orders, 2) end as aov_cny,
        round(cast(cy.median_gap_days as numeric(18, 6)), 1) as median_days_between_orders,
        coalesce(c.categories_bought, {{ empty_text_array() }}) as categories_bought,
        p.platforms_used,
        p.shops_used
    from picks as p
    left join categories as c on c.customer_id = p.customer_id
    left join cycle as cy on cy.customer_id = p.customer_id
)

select * from final
