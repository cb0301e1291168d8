{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- RFM (R16) as of the run's business day, for every customer with a paid order.
-- Recency: days since the last paid order; Frequency and Monetary: paid orders
-- and net spend (CNY) in the last rfm_window_days (totals per customer kept by
-- int_customer_totals).
-- Scores 1-5 by tie-aware quintile (1 + floor(5 * percent_rank), equal values
-- share a score); with fewer than rfm_min_customers_for_quintiles customers,
-- fixed thresholds replace quintiles (scoring_method says which).
-- Segment: seed rfm_segment_map on (r_score, fm_score = ceil((f + m) / 2)).

{% set rb = var('rfm_fixed_recency_days') %}
{% set fb = var('rfm_fixed_frequency') %}
{% set mb = var('rfm_fixed_monetary') %}

with base as (
    -- per-customer totals kept by int_customer_totals (customer-scoped incremental,
    -- D21/D37): a night ranks 200k rows instead of aggregating every paid order
    select
        customer_id,
        ({{ as_of_date() }} - last_paid_date) as recency_days,
        rfm_window_orders as frequency,
        rfm_window_cny as monetary_cny,
        last_paid_date
    from {{ ref('int_customer_totals') }}
    where last_paid_date is not null
),

method as (
    select case when count(*) >= {{ var('rfm_min_customers_for_quintiles') }} then 'quintile' else 'fixed' end as scoring_method
    from base
),

ranked as (
    select
        b.*,
        m.scoring_method,
        percent_rank() over (order by b.recency_days desc) as r_rank,
        percent_rank() over (order by b.frequency) as f_rank,
        percent_rank() over (order by b.monetary_cny) as m_rank
    from base as b
    cross join method as m
),

scored as (
    select
        customer_id,
        recency_days,
        frequency,
        monetary_cny,
        last_paid_date,
        scoring_method,
        case when scoring_method = 'quintile' then least(5, 1 + floor(r_rank * 5))::int
             else case when recency_days <= {{ rb[0] }} then 5 when recency_days <= {{ rb[1] }} then 4
                       when recency_days <= {{ rb[2] }} then 3 when recency_days <= {{ rb[3] }} then 2 else 1 end
        end as r_score,
        case when scoring_method = 'quintile' then least(5, 1 + floor(f_rank * 5))::int
             else case when frequency >= {{ fb[3] }} then 5 when frequency >= {{ fb[2] }} then 4
                       when frequency >= {{ fb[1] }} then 3 when frequency >= {{ fb[0] }} then 2 else 1 end
        end as f_score,
        case when scoring_method = 'quintile' then least(5, 1 + floor(m_rank * 5))::int
             else case when monetary_cny >= {{ mb[3] }} then 5 when monetary_cny >= {{ mb[2] }} then 4
                       when monetary_cny >= {{ mb[1] }} then 3 when monetary_cny >= {{ mb[0] }} then 2 else 1 end
        end as m_score
    from ranked
),

segments as (
    select r_score, fm_score, segment from {{ ref('rfm_segment_map') }}
),

final as (
    select
        s.customer_id,
        {{ as_of_date() }} as as_of_date,
        s.recency_days,
        s.frequency,
        s.monetary_cny,
        s.last_paid_date,
        s.r_score,
        s.f_score,
        s.m_score,
        ceil((s.f_score + s.m_score) / 2.0)::int as fm_score,
        s.r_score::text || s.f_score::text || s.m_score::text as rfm_cell,
        g.segment,
        s.scoring_method
    from scored as s
    left join segments as g on g.r_score = s.r_score and g.fm_score = ceil((s.f_score + s.m_score) / 2.0)::int
)

select * from final
