{{ config(materialized='view') }}
-- Each customer's RFM scores and segment night by night, as intervals
-- [valid_from, valid_to) of run days (D106): the row covering a day is the
-- customer's RFM as of the last night that ran on or before it. Read from the
-- changes int_rfm_segment_log keeps; a night without an RFM row for the customer
-- (merged, erased, purchases refunded) ends the interval and has no row.
-- "How many customers who were champions on 1 November bought again in November":
--   select count(*) from marts.customer_rfm_history as h
--   where h.segment = 'champions' and h.valid_from <= date '2026-11-01'
--     and (h.valid_to is null or h.valid_to > date '2026-11-01')
--     and exists (select 1 from marts.fct_orders as o where o.customer_id = h.customer_id
--                 and o.is_paid and o.paid_date between date '2026-11-01' and date '2026-11-30')

with logged as (
    select
        customer_id,
        as_of_date,
        segment,
        r_score,
        f_score,
        m_score,
        lead(as_of_date) over (partition by customer_id order by as_of_date) as next_logged
    from {{ ref('int_rfm_segment_log') }}
),

final as (
    select
        customer_id,
        segment,
        r_score,
        f_score,
        m_score,
        as_of_date as valid_from,
        next_logged as valid_to,
        next_logged is null as is_current
    from logged
    where segment is not null
)

select * from final
