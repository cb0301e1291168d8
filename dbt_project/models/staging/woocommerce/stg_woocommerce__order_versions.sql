-- Every landed version of every woocommerce order: the status history.
with source as (
    select * from {{ source('raw', 'woocommerce_orders_versions') }}
),

final as (
    select
        payload_hash,
        {{ woocommerce_order_columns() }}
    from source
)

select * from final
