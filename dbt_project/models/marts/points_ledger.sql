{{ config(indexes=[{'columns': ['customer_id']}], **customer_incremental_config()) }}
-- Membership points (R20): earned on each paid order (points_per_cny per CNY),
-- taken back when the order is refunded. One row per movement, up to the run's day.
-- Customer-scoped incremental (D21): see macros/customer_increments.sql.

with orders as (
    select * from {{ ref('int_customer_orders') }}
    where paid_at is not null and paid_at < {{ as_of_end() }} and status <> 'closed'
      and {{ customer_increment_filter() }}
),

movements as (
    select customer_id, order_key, 'earn' as movement, paid_at as occurred_at,
           floor(amount_cny * {{ var('points_per_cny') }})::int as points
    from orders
    union all
    select customer_id, order_key, 'refund', refunded_at,
           -floor(amount_cny * {{ var('points_per_cny') }})::int
    from orders
    where is_refunded_as_of and refunded_at is not null
),

final as (
    select
        {{ surrogate_key(['order_key', 'movement']) }} as points_entry_key,
        customer_id,
        order_key,
        movement,
        occurred_at,
        (occurred_at at time zone '{{ var("default_timezone") }}')::date as occurred_date,
        points,
        sum(points) over (partition by customer_id order by occurred_at, order_key, movement
                          rows unbounded preceding) as balance_after
    from movements
    where points <> 0
)

select * from final
