-- Every landed version of every shopify order: the status history.
with source as (
    {{ raw_rows(source('raw', 'shopify_orders_versions')) }}
),

final as (
    select
        payload_hash,
        {{ shopify_order_columns() }}
    from source
)

select * from final
