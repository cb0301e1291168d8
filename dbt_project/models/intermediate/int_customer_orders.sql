{{ config(indexes=[{'columns': ['customer_id']}]) }}
-- Orders as of the run's business day, with their customer: the base of every
-- customer metric. "Paid as of" means paid before the end of the as-of day and
-- not refunded in full by then. amount_cny is the order's net amount as of the day:
-- what was paid less what was refunded (partially or in full) by then (D100), so
-- every spend, revenue, AOV and monetary summed from here is net. Rebuilt each run.

with orders as (
    select * from {{ ref('fct_orders') }}
    where created_at < {{ as_of_end() }}
),

final as (
    select
        customer_id,
        order_key,
        platform,
        shop_id,
        status,
        created_at,
        order_date,
        paid_at,
        paid_date,
        -- net as of the day (D100): a refund dated after the day does not count yet
        amount_cny - case when refunded_at < {{ as_of_end() }} then refund_cny else 0 end as amount_cny,
        amount_cny as gross_amount_cny,
        case when refunded_at < {{ as_of_end() }} then refund_cny else 0 end as refund_cny_as_of,
        -- the staging models' status mapping decides: an order mapped unpaid or closed is no
        -- purchase, whatever payment time the platform gives it
        paid_at is not null
            and paid_at < {{ as_of_end() }}
            and status not in ('unpaid', 'closed')
            and not (status = 'refunded' and coalesce(refunded_at, paid_at) < {{ as_of_end() }})
            as is_paid_as_of,
        status = 'refunded' and coalesce(refunded_at, paid_at) < {{ as_of_end() }} as is_refunded_as_of,
        refunded_at,
        cost_cny,
        -- text, not an array: a dbt unit test cannot feed an array column
        {{ array_to_text('categories') }} as category_list,
        -- the contact fields dim_customers' golden record picks from (R4)
        receiver_name,
        buyer_platform_id,
        phone_e164,
        email,
        province,
        city,
        address
    from orders
)

select * from final
