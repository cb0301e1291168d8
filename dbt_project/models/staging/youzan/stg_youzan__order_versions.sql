-- Every landed version of every youzan order: the status history.
with source as (
    {{ raw_rows(source('raw', 'youzan_orders_versions')) }}
),

final as (
    select
        payload_hash,
        {{ youzan_order_columns() }}
    from source
)

select * from final
