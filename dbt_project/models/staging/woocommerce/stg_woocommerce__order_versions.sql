-- Every landed version of every woocommerce order: the status history.
with source as (
    {{ raw_rows(source('raw', 'woocommerce_orders_versions')) }}
),

final as (
    select
        payload_hash,
        {{ woocommerce_order_columns() }}
    from source
)

select * from final
