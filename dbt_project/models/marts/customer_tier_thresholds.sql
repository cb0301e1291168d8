-- Membership tier thresholds (R20) as of the run's day: set from the data
-- (multiples of the average customer's spend over tier_window_days, rounded
-- to tier_round_to CNY so they read like a programme) unless fixed in vars.

{% set fixed = var('tier_fixed_thresholds') %}
{% set mult = var('tier_multipliers') %}

with spend as (
    -- customers with a paid order in the window (per-customer totals, D37)
    select customer_id, tier_window_cny as spend_cny
    from {{ ref('int_customer_totals') }}
    where tier_window_orders > 0
),

avg_spend as (
    select coalesce(avg(spend_cny), 0) as avg_spend_cny, count(*) as spending_customers from spend
),

tiers as (
    {% for tier, m in mult.items() %}
    select
        '{{ tier }}' as tier,
        {{ loop.index }} as tier_rank,
        {% if fixed.get(tier) is not none %}
        cast({{ fixed[tier] }} as numeric(18, 2)) as threshold_cny,
        'fixed' as method,
        {% else %}
        greatest({{ var('tier_round_to') }},
                 round(a.avg_spend_cny * {{ m }} / {{ var('tier_round_to') }}) * {{ var('tier_round_to') }}) as threshold_cny,
        'avg_spend_x{{ m }}' as method,
        {% endif %}
        round(a.avg_spend_cny, 2) as avg_spend_cny,
        a.spending_customers
    from avg_spend as a
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select 'member' as tier, 0 as tier_rank, cast(0 as numeric(18, 2)) as threshold_cny, 'base' as method,
           (select round(avg_spend_cny, 2) from avg_spend) as avg_spend_cny,
           (select spending_customers from avg_spend) as spending_customers,
           {{ as_of_date() }} as as_of_date
    union all
    select *, {{ as_of_date() }} from tiers
)

select * from final
