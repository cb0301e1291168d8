{{ config(materialized='view') }}
-- RFM segment movement: one row per customer whose segment on a run's day differs
-- from the previous recorded run (a customer's first segment counts as a move from
-- 'none', and so does a return after a night without an RFM row), from the rows
-- logged by int_rfm_segment_log (which also logs score changes within a segment).
-- The previous segment and the day the move was superseded are read from the log's
-- neighbours, so they are right whatever order days were (re)run in.

with logged as (
    select
        *,
        lag(segment) over (partition by customer_id order by as_of_date) as logged_before,
        row_number() over (partition by customer_id order by as_of_date) as nth
    from {{ ref('int_rfm_segment_log') }}
),

moves as (
    -- rows whose segment (null: no RFM row that night) differs from the row before
    select *
    from logged
    where nth = 1
        or coalesce(segment, '~') <> coalesce(logged_before, '~')
),

sequenced as (
    select
        as_of_date,
        customer_id,
        coalesce(lag(segment) over (partition by customer_id order by as_of_date), 'none') as previous_segment,
        segment,
        r_score,
        f_score,
        m_score,
        lead(as_of_date) over (partition by customer_id order by as_of_date) as superseded_on
    from moves
),

final as (
    select * from sequenced
    where segment is not null
)

select * from final
