-- Current state of every intake order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'intake_orders')) }}
),

final as (
    select
        {{ intake_order_columns() }}
    from source
)

select * from final
