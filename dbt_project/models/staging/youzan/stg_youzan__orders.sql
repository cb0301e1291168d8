-- Current state of every youzan order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'youzan_orders')) }}
),

final as (
    select
        {{ youzan_order_columns() }}
    from source
)

select * from final
