{{ config(indexes=[{'columns': ['customer_id'], 'unique': true}]) }}
-- RFM (R16) as of the run's business day, for every customer with a paid order
-- (D105; the rule in words: _marts__docs.md "customer_rfm").
--   Recency:   days since the last paid order, scored by fixed day bounds
--              (rfm_recency_days: <= 30 -> 5, <= 90 -> 4, <= 180 -> 3, <= 365 -> 2, else 1).
--   Frequency: paid orders over the customer's whole history, scored by fixed bins
--              (rfm_frequency_orders: 1 -> 1, 2 -> 2, 3 -> 3, 4-5 -> 4, 6+ -> 5).
--   Monetary:  net spend (CNY) over the whole history, scored by tie-aware quintile
--              among all buyers (1 + floor(5 * percent_rank)); with fewer than
--              rfm_min_customers_for_quintiles buyers, by the fixed CNY bounds
--              rfm_fixed_monetary instead (scoring_method says which).
-- Segment: the first rule of seed rfm_segment_map (by priority) whose score ranges
-- hold the customer's three scores; the rules cover every combination.

{% set rb = var('rfm_recency_days') %}
{% set fb = var('rfm_frequency_orders') %}
{% set mb = var('rfm_fixed_monetary') %}

with base as (
    -- per-customer totals (int_customer_totals, D37): one row per customer to rank
    select
        customer_id,
        {{ days_from('last_paid_date', as_of_date()) }} as recency_days,
        lifetime_orders as frequency,
        lifetime_cny as monetary_cny,
        rfm_window_orders as window_orders,
        rfm_window_cny as window_cny,
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
        window_orders,
        window_cny,
        last_paid_date,
        scoring_method,
        case when recency_days <= {{ rb[0] }} then 5 when recency_days <= {{ rb[1] }} then 4
             when recency_days <= {{ rb[2] }} then 3 when recency_days <= {{ rb[3] }} then 2 else 1
        end as r_score,
        case when frequency >= {{ fb[3] }} then 5 when frequency >= {{ fb[2] }} then 4
             when frequency >= {{ fb[1] }} then 3 when frequency >= {{ fb[0] }} then 2 else 1
        end as f_score,
        case when scoring_method = 'quintile' then cast(least(5, 1 + floor(m_rank * 5)) as int)
             else case when monetary_cny >= {{ mb[3] }} then 5 when monetary_cny >= {{ mb[2] }} then 4
                       when monetary_cny >= {{ mb[1] }} then 3 when monetary_cny >= {{ mb[0] }} then 2 else 1 end
        end as m_score
    from ranked
),

rules as (
    select segment, priority, r_min, r_max, f_min, f_max, m_min, m_max
    from {{ ref('rfm_segment_map') }}
),

matched as (
    -- every rule the scores satisfy; the seed is small (one row per rule)
    select
        s.customer_id,
        g.segment,
        row_number() over (partition by s.customer_id order by g.priority) as nth
    from scored as s
    inner join rules as g
        on s.r_score between g.r_min and g.r_max
        and s.f_score between g.f_min and g.f_max
        and s.m_score between g.m_min and g.m_max
),

final as (
    select
        s.customer_id,
        {{ as_of_date() }} as as_of_date,
        s.recency_days,
        s.frequency,
        s.monetary_cny,
        s.window_orders,
        s.window_cny,
        s.last_paid_date,
        s.r_score,
        s.f_score,
        s.m_score,
        concat(cast(s.r_score as {{ type_text() }}), cast(s.f_score as {{ type_text() }}), cast(s.m_score as {{ type_text() }})) as rfm_cell,
        g.segment,
        s.scoring_method
    from scored as s
    left join matched as g on g.customer_id = s.customer_id and g.nth = 1
)

select * from final
