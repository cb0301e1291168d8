-- Current state of every taobao order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'taobao_trades')) }}
),

final as (
    select
        {{ taobao_order_columns() }}
    from source
)

select * from final
