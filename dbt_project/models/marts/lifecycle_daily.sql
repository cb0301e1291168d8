-- Customers in each lifecycle stage on each day (from the interval history:
-- entries minus exits, accumulated), for funnels and trend charts.

with deltas as (
    -- each branch reads the history itself: a shared CTE of 1.8M rows was
    -- materialized and spilled to disk, 3x slower (D37)
    select valid_from_date as kpi_date, stage, count(*) as entered, 0 as exited
    from {{ ref('customer_lifecycle_history') }}
    group by valid_from_date, stage
    union all
    select valid_to_date as kpi_date, stage, 0 as entered, count(*) as exited
    from {{ ref('customer_lifecycle_history') }}
    where valid_to_date is not null
    group by valid_to_date, stage
),

daily as (
    select kpi_date, stage, sum(entered) as entered, sum(exited) as exited
    from deltas
    where kpi_date <= {{ as_of_date() }}
    group by kpi_date, stage
),

stages as (
    {% for stage in ['prospect', 'new', 'returning', 'loyal', 'win_back', 'at_risk', 'churned'] %}
    select '{{ stage }}' as stage
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

days as (
    {{ day_rows('(select min(kpi_date) from daily)', as_of_date(), 'kpi_date') }}
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
