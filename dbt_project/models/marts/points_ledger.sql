{{ config(indexes=[{'columns': ['customer_id']}]) }}
-- Membership points (R20): earned on each paid order (points_per_cny per CNY of what
-- was paid), taken back for what was refunded (in full or in part, D100) on the day of
-- the latest refund. One row per movement, up to the run's day.

with orders as (
    select * from {{ ref('int_customer_orders') }}
    where paid_at is not null and paid_at < {{ as_of_end() }} and status <> 'closed'
),

movements as (
    select customer_id, order_key, 'earn' as movement, paid_at as occurred_at,
           cast(floor(gross_amount_cny * {{ var('points_per_cny') }}) as int) as points
    from orders
    union all
    select customer_id, order_key, 'refund', refunded_at,
           -least(cast(floor(refund_cny_as_of * {{ var('points_per_cny') }}) as int),
                  cast(floor(gross_amount_cny * {{ var('points_per_cny') }}) as int))
    from orders
    where refund_cny_as_of > 0 and refunded_at is not null
),

final as (
    select
        {{ surrogate_key(['order_key', 'movement']) }} as points_entry_key,
        customer_id,
        order_key,
        movement,
        occurred_at,
        {{ local_date('occurred_at', "'" ~ var('default_timezone') ~ "'") }} as occurred_date,
        points,
        sum(points) over (partition by customer_id order by occurred_at, order_key, movement
                          rows unbounded preceding) as balance_after
    from movements
    where points <> 0
)

select * from final
