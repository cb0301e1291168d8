-- Every landed version of every taobao order: the status history.
with source as (
    {{ raw_rows(source('raw', 'taobao_trades_versions')) }}
),

final as (
    select
        payload_hash,
        {{ taobao_order_columns() }}
    from source
)

select * from final
