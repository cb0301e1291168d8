{{ config(materialized='view') }}
-- Upgrades and downgrades (R20): one row per customer whose tier on a run's day
-- differs from their tier at the previous recorded run, from the moves logged by
-- int_tier_log; the previous tier is the log's neighbour (member before the first).

with moves as (
    select * from {{ ref('int_tier_log') }}
),

final as (
    select
        as_of_date,
        customer_id,
        coalesce(lag(tier) over w, 'member') as previous_tier,
        tier,
        tier_rank,
        case when tier_rank > coalesce(lag(tier_rank) over w, 0) then 'upgrade' else 'downgrade' end as change
    from moves
    window w as (partition by customer_id order by as_of_date)
)

select * from final
