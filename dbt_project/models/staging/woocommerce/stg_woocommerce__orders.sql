-- Current state of every woocommerce order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'woocommerce_orders')) }}
),

final as (
    select
        {{ woocommerce_order_columns() }}
    from source
)

select * from final
