-- Current state of every woocommerce order (latest landed version), unified columns.
with source as (
    select * from {{ source('raw', 'woocommerce_orders') }}
),

final as (
    select
        {{ woocommerce_order_columns() }}
    from source
)

select * from final
