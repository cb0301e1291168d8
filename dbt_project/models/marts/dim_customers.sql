{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- One row per customer: the golden record (R4) and lifetime metrics as of the run's day.
-- Contact fields: from the most trusted source, then the latest non-empty value.
-- Enrichment from calls (birthday, gender, preferences, tags): the latest
-- non-empty value per attribute, so an older or emptier answer never wins.

{% set trust = var('contact_source_trust') %}

with orders as (
    select
        o.*,
        case o.platform {% for p, rank in trust.items() %} when '{{ p }}' then {{ rank }}{% endfor %} else 9 end as trust_rank
    from {{ ref('fct_orders') }} as o
    where o.created_at < {{ as_of_end() }}
),

customer_orders as (
    select * from {{ ref('int_customer_orders') }}
),

paid_seq as (
    select * from {{ ref('int_customer_paid_orders') }}
),

items as (
    select customer_id, category from {{ ref('fct_order_items') }}
    where is_paid and order_date <= {{ as_of_date() }}
),

outcomes as (
    select * from {{ source('outreach', 'call_outcomes') }}
    where list_date <= {{ as_of_date() }}
),

picks as (
    -- per field, the first non-empty value by trust, then recency (one pass;
    -- six `distinct on` sorts of every order cost four times as much)
    select
        customer_id,
        {%- for field, expr in [('name', 'coalesce(receiver_name, buyer_platform_id)'), ('phone_e164', 'phone_e164'),
                                ('email', 'email'), ('province', 'province'), ('city', 'city'), ('address', 'address')] %}
        (array_agg({{ expr }} order by trust_rank, created_at desc, order_key)
            filter (where nullif({{ expr }}, '') is not null))[1] as {{ field }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from orders
    group by customer_id
),

{% for field in ['birthday', 'gender', 'preferences', 'tags'] %}
enrich_{{ field }} as (
    select distinct on (customer_id) customer_id, {{ field }}
    from outcomes
    where {{ field }} is not null {% if field != 'birthday' %}and {{ field }} <> ''{% endif %}
    order by customer_id, list_date desc, imported_at desc
),
{% endfor %}

metrics as (
    select
        customer_id,
        min(created_at) as first_order_at,
        min(paid_at) filter (where is_paid_as_of) as first_paid_at,
        max(paid_at) filter (where is_paid_as_of) as last_paid_at,
        count(*) as total_orders,
        count(*) filter (where is_paid_as_of) as paid_orders,
        count(*) filter (where is_refunded_as_of) as refunded_orders,
        coalesce(sum(amount_cny) filter (where is_paid_as_of), 0) as net_revenue_cny,
        array_agg(distinct platform order by platform) as platforms_used,
        array_agg(distinct shop_id order by shop_id) as shops_used
    from customer_orders
    group by customer_id
),

cycle as (
    -- the cycle known at the last paid order (the one with no next)
    select customer_id, median_gap_days
    from paid_seq
    where next_paid_at is null
),

categories as (
    select customer_id, array_agg(distinct category order by category) as categories_bought
    from items
    group by customer_id
),

final as (
    select
        m.customer_id,
        pk.name,
        pk.phone_e164,
        pk.email,
        pk.province,
        pk.city,
        pk.address,
        eg.gender,
        eb.birthday,
        case
            when eb.birthday is null then 'unknown'
            when date_part('year', age({{ as_of_date() }}, eb.birthday)) < 25 then '<25'
            when date_part('year', age({{ as_of_date() }}, eb.birthday)) < 35 then '25-34'
            when date_part('year', age({{ as_of_date() }}, eb.birthday)) < 45 then '35-44'
            when date_part('year', age({{ as_of_date() }}, eb.birthday)) < 55 then '45-54'
            else '55+'
        end as age_band,
        ep.preferences,
        et.tags,
        m.first_order_at,
        m.first_paid_at,
        m.last_paid_at,
        ({{ as_of_date() }} - (m.last_paid_at at time zone '{{ var("default_timezone") }}')::date) as days_since_last_paid,
        m.total_orders,
        m.paid_orders,
        m.refunded_orders,
        m.net_revenue_cny,
        case when m.paid_orders > 0 then round(m.net_revenue_cny / m.paid_orders, 2) end as aov_cny,
        round(cy.median_gap_days::numeric, 1) as median_days_between_orders,
        coalesce(cat.categories_bought, array[]::text[]) as categories_bought,
        coalesce(cardinality(cat.categories_bought), 0) as category_count,
        coalesce(cardinality(cat.categories_bought), 0) > 1 as is_cross_category,
        m.platforms_used,
        cardinality(m.platforms_used) as platform_count,
        m.shops_used
    from metrics as m
    left join picks as pk on pk.customer_id = m.customer_id
    left join enrich_gender as eg on eg.customer_id = m.customer_id
    left join enrich_birthday as eb on eb.customer_id = m.customer_id
    left join enrich_preferences as ep on ep.customer_id = m.customer_id
    left join enrich_tags as et on et.customer_id = m.customer_id
    left join cycle as cy on cy.customer_id = m.customer_id
    left join categories as cat on cat.customer_id = m.customer_id
)

select * from final
