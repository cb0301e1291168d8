{{ config(indexes=[{'columns': ['customer_id']}], **customer_incremental_config()) }}
-- Paid orders per customer in sequence, with the gap to the previous one and
-- the customer's own repurchase cycle known at that moment (median gap so far).
-- The is_*_first flags mark one order per customer and day / year / month and
-- shop, so the KPI tables count distinct customers by counting flagged rows (a
-- count(distinct) over every order sorted a million rows per table, D23).
-- Customer-scoped incremental (D21): see macros/customer_increments.sql.

with gaps as (
    -- sequence, gap to the previous paid order and the next one, in one window pass
    select
        customer_id,
        order_key,
        platform,
        shop_id,
        paid_at,
        paid_date,
        amount_cny,
        cost_cny,
        row_number() over w as n,
        -- the customer's first paid order: its month, platform and shop are the acquisition cohort
        date_trunc('month', (first_value(paid_date) over w)::timestamp)::date as cohort_month,
        first_value(platform) over w as first_platform,
        first_value(shop_id) over w as first_shop_id,
        {{ days_between('paid_at', 'lag(paid_at) over w') }} as gap_days,
        lead(paid_at) over w as next_paid_at
    from {{ ref('int_customer_orders') }}
    where is_paid_as_of and {{ customer_increment_filter() }}
    window w as (partition by customer_id order by paid_at, order_key)
),

running as (
    -- the gaps so far, for the running median (a self-join of each order with
    -- its predecessors is quadratic in a customer's orders and twice as slow);
    -- same order as above, so no second sort
    select
        *,
        array_agg(gap_days) over (partition by customer_id order by paid_at, order_key) as gaps_so_far,
        -- the first paid order of the customer's day, year, and month in a shop; and the
        -- first repeat order (n > 1) of the day. Day partitions nest in month ones, months in
        -- years (one sort).
        n = min(n) over d as is_day_first,
        coalesce(n = min(n) filter (where n > 1) over d, false) as is_day_first_repeat,
        n = min(n) over y as is_year_first,
        count(*) over y as year_paid_orders,
        n = min(n) over m as is_month_first,
        n = min(n) over (partition by customer_id, date_trunc('month', paid_date::timestamp), platform, shop_id)
            as is_month_shop_first
    from gaps
    window y as (partition by customer_id, date_part('year', paid_date)),
           m as (partition by customer_id, date_part('year', paid_date), date_part('month', paid_date)),
           d as (partition by customer_id, date_part('year', paid_date), date_part('month', paid_date), paid_date)
),

final as (
    select
        g.customer_id,
        g.order_key,
        g.n,
        g.paid_at,
        g.paid_date,
        g.platform,
        g.shop_id,
        g.amount_cny,
        g.cost_cny,
        g.is_day_first,
        g.is_day_first_repeat,
        g.is_year_first,
        g.year_paid_orders,
        g.cohort_month,
        g.first_platform,
        g.first_shop_id,
        g.is_month_first,
        g.is_month_shop_first,
        g.gap_days,
        g.next_paid_at,
        m.median_gap_days,
        g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }} as has_own_cycle,
        case when g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then greatest({{ var('lifecycle_min_cycle_days') }}, {{ var('lifecycle_cycle_at_risk_multiplier') }} * m.median_gap_days)
             else {{ var('lifecycle_at_risk_days') }} end as at_risk_after_days,
        case when g.n - 1 >= {{ var('lifecycle_min_intervals_for_cycle') }}
             then greatest({{ var('lifecycle_min_cycle_days') }} * 2, {{ var('lifecycle_cycle_churn_multiplier') }} * m.median_gap_days)
             else {{ var('lifecycle_churn_days') }} end as churn_after_days
    from running as g
    cross join lateral (
        -- the median of the gaps so far (gaps_so_far[1] is the first order's null),
        -- computed once per row (offset 0: not inlined into the three uses above);
        -- one or two gaps in closed form, as percentile_cont computes them
        select case
            when g.n = 2 then g.gap_days::float8
            when g.n = 3 then least(g.gaps_so_far[2], g.gaps_so_far[3])::float8
                + (greatest(g.gaps_so_far[2], g.gaps_so_far[3])::float8
                   - least(g.gaps_so_far[2], g.gaps_so_far[3])::float8) * 0.5
            when g.n > 3 then (select percentile_cont(0.5) within group (order by x) from unnest(g.gaps_so_far) as x)
        end as median_gap_days
        offset 0
    ) as m
)

select * from final
