-- Every landed version of every jd order: the status history.
with source as (
    {{ raw_rows(source('raw', 'jd_orders_versions')) }}
),

final as (
    select
        payload_hash,
        {{ jd_order_columns() }}
    from source
)

select * from final
