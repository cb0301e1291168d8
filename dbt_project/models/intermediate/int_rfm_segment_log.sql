{{ config(indexes=[{'columns': ['customer_id']}, {'columns': ['as_of_date']}], **day_log_config()) }}
-- Each night's RFM scores and segment, kept as changes (D106): one row per customer
-- whose (segment, r_score, f_score, m_score) on the run's day differs from the last
-- row logged before that day (a customer's first night is a change), and one row with
-- a null segment and scores for a customer logged before who has no RFM row today
-- (merged into another customer, erased, or their only purchases refunded).
-- A customer's scores and segment on any night that ran are those of their latest row
-- on or before it (marts.customer_rfm_history gives the intervals;
-- marts.customer_rfm_changes the segment moves). Incremental by day: a rerun of a day
-- replaces its rows. Recency scores move only at the rfm_recency_days bounds, so a
-- customer without purchases logs a row at most four times.

with today as (
    select customer_id, segment, r_score, f_score, m_score from {{ ref('customer_rfm') }}
),

{% if is_incremental() %}
logged as (
    select
        customer_id,
        segment,
        r_score,
        f_score,
        m_score,
        row_number() over (partition by customer_id order by as_of_date desc) as nth
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
),

previous as (
    select customer_id, segment, r_score, f_score, m_score from logged where nth = 1
),
{% else %}
previous as (
    select
        cast(null as {{ type_text() }}) as customer_id,
        cast(null as {{ type_text() }}) as segment,
        cast(null as int) as r_score,
        cast(null as int) as f_score,
        cast(null as int) as m_score
    from today
    where 1 = 0
),
{% endif %}

changed as (
    select
        t.customer_id,
        t.segment,
        t.r_score,
        t.f_score,
        t.m_score
    from today as t
    left join previous as p on p.customer_id = t.customer_id
    where p.segment is null
        or t.segment <> p.segment
        or t.r_score <> p.r_score
        or t.f_score <> p.f_score
        or t.m_score <> p.m_score
),

gone as (
    -- logged with a segment before, no RFM row today
    select
        p.customer_id,
        cast(null as {{ type_text() }}) as segment,
        cast(null as int) as r_score,
        cast(null as int) as f_score,
        cast(null as int) as m_score
    from previous as p
    left join today as t on t.customer_id = p.customer_id
    where p.segment is not null and t.customer_id is null
),

final as (
    select {{ as_of_date() }} as as_of_date, customer_id, segment, r_score, f_score, m_score from changed
    union all
    select {{ as_of_date() }} as as_of_date, customer_id, segment, r_score, f_score, m_score from gone
)

select * from final
