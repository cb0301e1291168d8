-- Each customer's marketing consent per channel (issue 31): the latest fact any of their
-- orders carries, on any platform. The outreach policy reads it: where a shop's marketing
-- needs the buyer's opt-in (config/shops.yml), only `granted` allows it; `withdrawn` is an
-- opt-out on that channel wherever the customer bought.

with facts as (
    -- one row per order and channel that carries a fact
    {% for channel in ['email', 'sms'] %}
    select
        order_key,
        '{{ channel }}' as channel,
        platform,
        shop_id,
        {{ channel }}_consent as consent,
        {{ channel }}_platform_state as platform_state,
        {{ channel }}_fact_at as fact_at,
        {{ channel }}_source_field as source_field,
        loaded_at
    from {{ ref('int_order_consent') }}
    where {{ channel }}_platform_state is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

orders as (
    -- orders placed by the end of the run's day: a past day rerun has no consent for
    -- customers that did not exist yet
    select order_key, customer_id from {{ ref('fct_orders') }}
    where created_at < {{ as_of_end() }}
),

ranked as (
    select
        o.customer_id,
        f.channel,
        f.consent,
        f.platform_state,
        f.fact_at,
        f.platform,
        f.shop_id,
        f.order_key,
        f.source_field,
        row_number() over (partition by o.customer_id, f.channel
                           order by f.fact_at desc, f.loaded_at desc, f.order_key desc) as recency
    from facts as f
    inner join orders as o on o.order_key = f.order_key
),

final as (
    select
        customer_id,
        channel,
        consent,
        platform_state,
        fact_at,
        platform,
        shop_id,
        order_key,
        source_field
    from ranked
    where recency = 1
)

select * from final
