{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- One row per customer: the golden record (R4) and lifetime metrics as of the run's day.
-- Contact fields: from the most trusted source, then the latest non-empty value.
-- Enrichment from calls (birthday, gender, preferences, tags): the latest
-- non-empty value per attribute, so an older or emptier answer never wins; it
-- follows the person called through merges and splits (the outcome's node_key).
-- What comes from the customer's orders is in int_customer_profile (D23); this
-- table adds the enrichment and the columns that move with the day.

with profile as (
    -- contact fields, metrics, cycle and categories from the customer's own orders
    select * from {{ ref('int_customer_profile') }}
),

resolved as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

outcomes as (
    -- an answer belongs to whoever holds the called account now (merged or split since),
    -- else to the id it was given under
    select
        coalesce(r.customer_id, o.customer_id) as customer_id,
        o.list_date,
        o.imported_at,
        o.birthday,
        o.gender,
        o.preferences,
        o.tags
    from {{ source('outreach', 'call_outcomes') }} as o
    left join resolved as r on r.node_key = o.node_key
    where o.list_date <= {{ as_of_date() }}
),

{% for field in ['birthday', 'gender', 'preferences', 'tags'] %}
enrich_{{ field }} as (
    select customer_id, {{ field }}
    from (
        select
            customer_id,
            {{ field }},
            row_number() over (partition by customer_id order by list_date desc, imported_at desc) as nth
        from outcomes
        where {{ field }} is not null {% if field != 'birthday' %}and {{ field }} <> ''{% endif %}
    ) as answers
    where nth = 1
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
            when {{ years_between('eb.birthday', as_of_date()) }} < 25 then '<25'
            when {{ years_between('eb.birthday', as_of_date()) }} < 35 then '25-34'
            when {{ years_between('eb.birthday', as_of_date()) }} < 45 then '35-44'
            when {{ years_between('eb.birthday', as_of_date()) }} < 55 then '45-54'
            else '55+'
        end as age_band,
        ep.preferences,
        et.tags,
        p.first_order_at,
        p.first_paid_at,
        p.last_paid_at,
        {{ days_from(local_date('p.last_paid_at', "'" ~ var('default_timezone') ~ "'"), as_of_date()) }} as days_since_last_paid,
        p.total_orders,
        p.paid_orders,
        p.refunded_orders,
        p.net_revenue_cny,
        p.aov_cny,
        p.median_days_between_orders,
        p.categories_bought,
        {{ array_size('p.categories_bought') }} as category_count,
        {{ array_size('p.categories_bought') }} > 1 as is_cross_category,
        p.platforms_used,
        {{ array_size('p.platforms_used') }} as platform_count,
        p.shops_used
    from profile as p
    left join enrich_gender as eg on eg.customer_id = p.customer_id
    left join enrich_birthday as eb on eb.customer_id = p.customer_id
    left join enrich_preferences as ep on ep.customer_id = p.customer_id
    left join enrich_tags as et on et.customer_id = p.customer_id
)

select * from final
