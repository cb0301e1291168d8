-- Every landed version of every spreadsheet order and its status (already in our
-- vocabulary; a closed order with money given back was refunded, as in
-- stg_intake__orders): the status history.

with source as (
    {{ raw_rows(source('raw', 'intake_orders_versions')) }}
),

renamed as (
    select
        'intake' as platform,
        shop_id,
        order_id,
        'intake:' || shop_id || ':' || order_id as order_key,
        payload_hash,
        case when {{ json_text('payload', 'status') }} in ('paid', 'shipped', 'completed', 'closed')
                  and {{ money(json_text('payload', 'refund')) }} > 0
                  and ({{ json_text('payload', 'status') }} = 'closed'
                       or {{ money(json_text('payload', 'refund')) }} >= {{ money(json_text('payload', 'amount')) }})
             then 'refunded' else {{ json_text('payload', 'status') }} end as status,
        source_updated_at,
        loaded_at
    from source
)

select * from renamed
