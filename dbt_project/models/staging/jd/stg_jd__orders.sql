-- Current state of every jd order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'jd_orders')) }}
),

final as (
    select
        {{ jd_order_columns() }}
    from source
)

select * from final
