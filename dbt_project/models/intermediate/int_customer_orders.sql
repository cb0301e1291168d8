-- Orders as of the run's business day, with their customer: the base of every
-- customer metric. "Paid as of" means paid before the end of the as-of day and
-- not refunded by then; revenue is net of refunds.

with orders as (
    select * from {{ ref('int_orders') }}
    where created_at < {{ as_of_end() }}
),

identity as (
    select node_key, customer_id from {{ ref('int_identity__resolved') }}
),

final as (
    select
        i.customer_id,
        o.order_key,
        o.platform,
        o.shop_id,
        o.status,
        o.created_at,
        o.order_date,
        o.paid_at,
        o.paid_date,
        o.amount_cny,
        o.paid_at is not null
            and o.paid_at < {{ as_of_end() }}
            and o.status <> 'closed'
            and not (o.status = 'refunded' and coalesce(o.refunded_at, o.paid_at) < {{ as_of_end() }})
            as is_paid_as_of,
        o.status = 'refunded' and coalesce(o.refunded_at, o.paid_at) < {{ as_of_end() }} as is_refunded_as_of,
        o.refunded_at
    from orders as o
    inner join identity as i on i.node_key = o.node_key
)

select * from final
