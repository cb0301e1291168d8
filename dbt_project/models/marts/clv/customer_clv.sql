{{ config(materialized='view', enabled=(target.type == 'postgres')) }}
-- Customer lifetime value per customer (issue 33): BG/NBD and Gamma-Gamma, fitted
-- nightly in Python (crm_pipeline/clv) after the other marts, written to
-- clv.customer_scores; this view is how analysts, docs and lineage see it.
-- PostgreSQL only: the scores live in the warehouse, where the CLV step writes them
-- (a Spark build of the marts has no clv schema; DECISIONLOG D83).

with scores as (
    select * from {{ source('clv', 'customer_scores') }}
),

final as (
    select
        customer_id,
        fit_group,
        status,
        as_of_date,
        first_purchase_date,
        last_purchase_date,
        frequency,
        recency_weeks,
        t_weeks,
        avg_repeat_value_cny,
        p_alive,
        expected_purchases_30d,
        expected_purchases_90d,
        expected_purchases_365d,
        expected_order_value_cny,
        clv_cny,
        expected_next_order_date,
        model_version,
        scored_at
    from scores
)

select * from final
