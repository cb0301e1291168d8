{{ config(indexes=[{'columns': ['customer_id']}, {'columns': ['as_of_date']}], **day_log_config()) }}
-- Tier moves (R20), one row per customer whose tier on the run's day differs from
-- the last one logged before that day (everyone starts as member, rank 0). Kept
-- across nights (incremental by day: a rerun of a day replaces its rows);
-- marts.customer_tier_changes reads it with the previous tier beside each move.

with today as (
    select customer_id, tier, tier_rank from {{ ref('customer_tiers') }}
),

{% if is_incremental() %}
logged as (
    select
        customer_id,
        tier_rank,
        row_number() over (partition by customer_id order by as_of_date desc) as nth
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
),

previous as (
    select customer_id, tier_rank from logged where nth = 1
),
{% else %}
previous as (
    select cast(null as {{ type_text() }}) as customer_id, cast(null as int) as tier_rank
    from today
    where 1 = 0
),
{% endif %}

final as (
    select
        {{ as_of_date() }} as as_of_date,
        t.customer_id,
        t.tier,
        t.tier_rank
    from today as t
    left join previous as p on p.customer_id = t.customer_id
    where t.tier_rank <> coalesce(p.tier_rank, 0)
)

select * from final
