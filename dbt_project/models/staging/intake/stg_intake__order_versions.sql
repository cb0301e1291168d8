-- Every landed version of every intake order: the status history.
with source as (
    {{ raw_rows(source('raw', 'intake_orders_versions')) }}
),

final as (
    select
        payload_hash,
        {{ intake_order_columns() }}
    from source
)

select * from final
