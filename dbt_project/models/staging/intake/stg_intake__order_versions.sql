-- Every landed version of every spreadsheet order and its status (already in our
-- vocabulary): the status history.

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
        {{ json_text('payload', 'status') }} as status,
        source_updated_at,
        loaded_at
    from source
)

select * from renamed
