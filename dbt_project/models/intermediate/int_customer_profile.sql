{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}], **customer_incremental_config()) }}
-- One row per customer: what dim_customers takes from the customer's own orders
-- as of the run's day (golden-record contact fields, R4; lifetime metrics,
-- repurchase cycle, categories). Customer-scoped incremental (D21, D23): a night
-- rebuilds the customers int_customer_increments lists; dim_customers adds the
-- call-outcome enrichment and the columns that move with the day itself.

{% set trust = var('contact_source_trust') %}
{%- set rebuilt = customer_increment_filter() %}

with orders as (
    select
        o.*,
        case o.platform {% for p, rank in trust.items() %} when '{{ p }}' then {{ rank }}{% endfor %} else 9 end as trust_rank
    from {{ ref('int_customer_orders') }} as o
    where {{ rebuilt }}
),

picks as (
    -- per field, the first non-empty value by trust, then recency (one pass;
    -- six `distinct on` sorts of every order cost four times as much)
    select
        customer_id,
        {%- for field, expr in [('name', 'coalesce(receiver_name, buyer_platform_id)'), ('phone_e164', 'phone_e164'),
                                ('email', 'email'), ('province', 'province'), ('city', 'city'), ('address', 'address')] %}
        (array_agg({{ expr }} order by trust_rank, created_at desc, order_key)
            filter (where nullif({{ expr }}, '') is not null))[1] as {{ field }},
        {%- endfor %}
        min(created_at) as first_order_at,
        min(paid_at) filter (where is_paid_as_of) as first_paid_at,
        max(paid_at) filter (where is_paid_as_of) as last_paid_at,
        count(*) as total_orders,
        count(*) filter (where is_paid_as_of) as paid_orders,
        count(*) filter (where is_refunded_as_of) as refunded_orders,
        coalesce(sum(amount_cny) filter (where is_paid_as_of), 0) as net_revenue_cny,
        array_agg(distinct platform order by platform) as platforms_used,
        array_agg(distinct shop_id order by shop_id) as shops_used
    from orders
    group by customer_id
),

categories as (
    -- categories of the orders paid as of the day (a refunded order bought nothing)
    select o.customer_id, array_agg(distinct c.category order by c.category) as categories_bought
    from orders as o
    cross join lateral unnest(string_to_array(nullif(o.category_list, ''), chr(31))) as c(category)
    where o.is_paid_as_of
    group by o.customer_id
),

cycle as (
    -- the cycle known at the last paid order (the one with no next)
    select customer_id, median_gap_days
    from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null and {{ rebuilt }}
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
        round(cy.median_gap_days::numeric, 1) as median_days_between_orders,
        coalesce(cat.categories_bought, array[]::text[]) as categories_bought,
        p.platforms_used,
        p.shops_used
    from picks as p
    left join cycle as cy on cy.customer_id = p.customer_id
    left join categories as cat on cat.customer_id = p.customer_id
)

select * from final
