{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- One row per customer: the golden record (R4) and lifetime metrics as of the run's day.
-- Contact fields: from the most trusted source, then the latest non-empty value.
-- Enrichment from calls (birthday, gender, preferences, tags): the latest
-- non-empty value per attribute, so an older or emptier answer never wins.
-- What comes from the customer's orders is kept per customer in
-- int_customer_profile (rebuilt only for the customers a night touched, D23);
-- this table adds the enrichment and the columns that move with the day.

with profile as (
    -- contact fields, metrics, cycle and categories from the customer's own orders
    -- (customer-scoped incremental, D23)
    select * from {{ ref('int_customer_profile') }}
),

outcomes as (
    select * from {{ source('outreach', 'call_outcomes') }}
    where list_date <= {{ as_of_date() }}
),

{% for field in ['birthday', 'gender', 'preferences', 'tags'] %}
enrich_{{ field }} as (
    select distinct on (customer_id) customer_id, {{ field }}
    from outcomes
    where {{ field }} is not null {% if field != 'birthday' %}and {{ field }} <> ''{% endif %}
    order by customer_id, list_date desc, imported_at desc
),
{% endfor %}

final as (
    select
        p.customer_id,
        p.name,
        p.phone_e164,
        p.email,
        p.province,
        p.city,
        p.address,
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
        p.first_order_at,
        p.first_paid_at,
        p.last_paid_at,
        ({{ as_of_date() }} - (p.last_paid_at at time zone '{{ var("default_timezone") }}')::date) as days_since_last_paid,
        p.total_orders,
        p.paid_orders,
        p.refunded_orders,
        p.net_revenue_cny,
        p.aov_cny,
        p.median_days_between_orders,
        p.categories_bought,
        cardinality(p.categories_bought) as category_count,
        cardinality(p.categories_bought) > 1 as is_cross_category,
        p.platforms_used,
        cardinality(p.platforms_used) as platform_count,
        p.shops_used
    from profile as p
    left join enrich_gender as eg on eg.customer_id = p.customer_id
    left join enrich_birthday as eb on eb.customer_id = p.customer_id
    left join enrich_preferences as ep on ep.customer_id = p.customer_id
    left join enrich_tags as et on et.customer_id = p.customer_id
)

select * from final
