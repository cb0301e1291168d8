{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['customer_id']}, {'columns': ['as_of_date']}]
) }}
-- Upgrades and downgrades (R20): one row per customer whose tier on this run's
-- day differs from their tier at the previous recorded run. Rerunning a day
-- replaces that day's rows.

with today as (
    select customer_id, tier, tier_rank from {{ ref('customer_tiers') }}
),

previous as (
    {% if is_incremental() %}
    select distinct on (customer_id) customer_id, tier, tier_rank
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
    order by customer_id, as_of_date desc
    {% else %}
    select cast(null as text) as customer_id, cast(null as text) as tier, cast(null as int) as tier_rank
    where false
    {% endif %}
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        t.customer_id,
        coalesce(p.tier, 'member') as previous_tier,
        t.tier,
        t.tier_rank,
        case when t.tier_rank > coalesce(p.tier_rank, 0) then 'upgrade' else 'downgrade' end as change
    from today as t
    left join previous as p on p.customer_id = t.customer_id
    where t.tier_rank <> coalesce(p.tier_rank, 0)
)

select * from final
