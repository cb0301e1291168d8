{{ config(
    materialized='incremental',
    unique_key='as_of_date',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['customer_id']}, {'columns': ['as_of_date']}, {'columns': ['superseded_on']}],
    pre_hook=["{{ rfm_changes_before() }}"],
    post_hook=["{{ rfm_changes_after() }}"]
) }}
-- RFM segment movement: one row per customer whose segment on this run's day
-- differs from the previous recorded run (a customer's first segment counts as
-- a move from 'none'). Rerunning a day replaces that day's rows. The previous
-- segment comes from the rows no earlier day superseded (macros/rfm_changes.sql),
-- so a night reads one row per customer, not the whole history.

with today as (
    select customer_id, segment, r_score, f_score, m_score from {{ ref('customer_rfm') }}
),

previous as (
    {% if is_incremental() %}
    -- each customer's latest row before the day: not superseded, or superseded on
    -- or after the day (when an earlier day is rerun); distinct on guards the join
    select distinct on (customer_id) customer_id, segment
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
      and (superseded_on is null or superseded_on >= {{ as_of_date() }})
    order by customer_id, as_of_date desc
    {% else %}
    select cast(null as text) as customer_id, cast(null as text) as segment where false
    {% endif %}
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        t.customer_id,
        coalesce(p.segment, 'none') as previous_segment,
        t.segment,
        t.r_score,
        t.f_score,
        t.m_score,
        cast(null as date) as superseded_on  -- set by the post-hook
    from today as t
    left join previous as p on p.customer_id = t.customer_id
    where t.segment is distinct from p.segment
)

select * from final
