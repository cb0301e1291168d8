{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}], **customer_incremental_config()) }}
-- One row per customer: what dim_customers takes from the customer's own orders
-- as of the run's day (golden-record contact fields, R4; lifetime metrics,
-- repurchase cycle, categories). Customer-scoped incremental (D21, D23): a night
-- rebuilds the customers int_customer_increments lists; dim_customers adds the
-- call-outcome enrichment and the columns that move with the day itself.

{% set trust = var('contact_source_trust') %}
{%- set rebuilt = customer_increment_filter() %}
{%- set whole = customer_increment_plan().full %}

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
        array_agg(distinct shop_id order by shop_id) as shops_used,
        -- the category lists of the orders paid as of the day (a refunded order bought
        -- nothing), split in `final`: in this pass, not a second aggregate to join (D48)
        array_agg(category_list) filter (where is_paid_as_of and nullif(category_list, '') is not null)
            as category_lists
    from orders
    group by customer_id
),

{%- if whole %}

cycle as (
    -- the cycle known at the last paid order (the one with no next)
    select customer_id, median_gap_days
    from {{ ref('int_customer_paid_orders') }}
    where next_paid_at is null
),
{%- endif %}

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
        array(
            select distinct c.category
            from unnest(p.category_lists) as l(list)
            cross join lateral unnest(string_to_array(l.list, chr(31))) as c(category)
            order by c.category
        ) as categories_bought,
        p.platforms_used,
        p.shops_used
    from picks as p
    {%- if whole %}
    left join cycle as cy on cy.customer_id = p.customer_id
    {%- else %}
    -- a night's customers: one index probe each, whatever the plan. The planner guesses
    -- 200 groups for `picks` however many customers the night holds; with a plain join
    -- this statement took 34-59 s in 5M-order runs and 2.4 s alone (D48)
    left join lateral (
        select q.median_gap_days
        from {{ ref('int_customer_paid_orders') }} as q
        where q.customer_id = p.customer_id and q.next_paid_at is null
    ) as cy on true
    {%- endif %}
)

select * from final
