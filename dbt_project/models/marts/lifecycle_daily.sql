-- Customers in each lifecycle stage on each day (from the interval history:
-- entries minus exits, accumulated), for funnels and trend charts.

with history as not materialized (
    -- read by both branches below: not materialized, each scans the two columns it
    -- needs (a materialized copy of 1.8M rows spilled to disk, 3x slower, D37)
    select * from {{ ref('customer_lifecycle_history') }}
),

deltas as (
    select valid_from_date as kpi_date, stage, count(*) as entered, 0 as exited
    from history group by 1, 2
    union all
    select valid_to_date, stage, 0, count(*)
    from history where valid_to_date is not null group by 1, 2
),

daily as (
    select kpi_date, stage, sum(entered) as entered, sum(exited) as exited
    from deltas
    where kpi_date <= {{ as_of_date() }}
    group by 1, 2
),

stages as (
    select unnest(array['prospect', 'new', 'returning', 'loyal', 'win_back', 'at_risk', 'churned']) as stage
),

days as (
    select generate_series((select min(kpi_date) from daily), {{ as_of_date() }}, interval '1 day')::date as kpi_date
),

grid as (
    select d.kpi_date, s.stage from days as d cross join stages as s
),

final as (
    select
        g.kpi_date,
        g.stage,
        coalesce(x.entered, 0) as entered,
        coalesce(x.exited, 0) as exited,
        sum(coalesce(x.entered, 0) - coalesce(x.exited, 0))
            over (partition by g.stage order by g.kpi_date rows unbounded preceding) as customers
    from grid as g
    left join daily as x on x.kpi_date = g.kpi_date and x.stage = g.stage
)

select * from final
