{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- Each customer's membership tier on the run's day (R20), what it takes to reach
-- the next one, and their points balance.

with spend as (
    -- the tier window's spend and the points balance, per customer (int_customer_totals)
    select customer_id, tier_window_cny as spend_cny, points_balance
    from {{ ref('int_customer_totals') }}
),

thresholds as (
    select * from {{ ref('customer_tier_thresholds') }}
),

reached as (
    -- every tier whose threshold the customer's spend reaches; the highest wins
    select
        s.customer_id, s.spend_cny, s.points_balance, t.tier, t.tier_rank, t.threshold_cny,
        row_number() over (partition by s.customer_id order by t.tier_rank desc) as nth
    from spend as s
    inner join thresholds as t on s.spend_cny >= t.threshold_cny
),

tiered as (
    select * from reached where nth = 1
),

final as (
    select
        d.customer_id,
        {{ as_of_date() }} as as_of_date,
        d.spend_cny as spend_12m_cny,
        d.tier,
        d.tier_rank,
        d.threshold_cny as tier_threshold_cny,
        n.tier as next_tier,
        greatest(n.threshold_cny - d.spend_cny, 0) as cny_to_next_tier,
        d.points_balance
    from tiered as d
    left join thresholds as n on n.tier_rank = d.tier_rank + 1
)

select * from final
