-- Current state of every shopify order (latest landed version), unified columns.
with source as (
    {{ raw_rows(source('raw', 'shopify_orders')) }}
),

final as (
    select
        {{ shopify_order_columns() }}
    from source
)

select * from final
