-- Current state of every spreadsheet order (social selling, offline stores; the latest
-- landed version), in the columns every platform shares. A sheet row already uses our
-- status vocabulary (the intake validates it) and gives one time: paid_at. Where the
-- sheet has a refund column (a Taobao export's 退款金额), a refund on a kept order is a
-- partial refund (all of it: refunded), and a closed order with money given back was paid
-- and refunded (Taobao closes a paid trade when its refund completes).

with source as (
    {{ raw_rows(source('raw', 'intake_orders')) }}
),

fields as (
    select
        shop_id,
        order_id,
        source_updated_at,
        loaded_at,
        derived,
        {{ json_text('payload', 'status') }} as sheet_status,
        {{ json_text('payload', 'buyer_id') }} as buyer_id,
        {{ json_text('payload', 'name') }} as buyer_name,
        {{ json_text('payload', 'province') }} as sheet_province,
        {{ json_text('payload', 'city') }} as sheet_city,
        {{ json_text('payload', 'address') }} as sheet_address,
        {{ json_text('payload', 'amount') }} as amount,
        {{ json_text('payload', 'refund') }} as refund,
        {{ json_text('payload', 'paid_at') }} as sheet_paid_at
    from source
),

statuses as (
    select
        *,
        -- money given back on a closed trade, or all of it on a kept one: refunded in full
        case when sheet_status in ('paid', 'shipped', 'completed', 'closed') and {{ money('refund') }} > 0
                  and (sheet_status = 'closed' or {{ money('refund') }} >= {{ money('amount') }})
             then 'refunded' else sheet_status end as status
    from fields
),

renamed as (
    select
        -- ids: a buyer id where the sheet has one
        'intake' as platform,
        shop_id,
        order_id,
        'intake:' || shop_id || ':' || order_id as order_key,
        nullif(buyer_id, '') as buyer_platform_id,
        nullif(buyer_name, '') as buyer_nick,

        -- receiver
        nullif(buyer_name, '') as receiver_name,
        nullif(sheet_province, '') as province,
        nullif(sheet_city, '') as city,
        cast(null as {{ type_text() }}) as district,
        nullif(concat_ws('', nullif(sheet_province, ''), nullif(sheet_city, ''), nullif(sheet_address, '')), '') as address,

        -- status: already unpaid | paid | shipped | completed | closed | refunded
        status,
        sheet_status as platform_status,

        -- amounts: CNY
        'CNY' as currency,
        {{ money('amount') }} as order_amount,
        cast(0 as {{ type_money() }}) as discount_amount,
        cast(0 as {{ type_money() }}) as shipping_amount,
        {{ money('refund') }} as refund_amount,

        -- times: the sheet's one time (ISO 8601, validated at intake)
        {{ iso_ts('sheet_paid_at') }} as created_at,
        case when status in ('paid', 'shipped', 'completed', 'refunded') then {{ iso_ts('sheet_paid_at') }} end as paid_at,
        cast(null as {{ type_timestamptz() }}) as shipped_at,
        case when status = 'completed' then {{ iso_ts('sheet_paid_at') }} end as completed_at,
        case when status = 'closed' then {{ iso_ts('sheet_paid_at') }} end as closed_at,
        -- a sheet gives no refund time: the row's own time (a refund counts from the order's day)
        case when {{ money('refund') }} > 0 then {{ iso_ts('sheet_paid_at') }} end as refunded_at,

        -- shipping and flags
        cast(null as {{ type_text() }}) as carrier,
        cast(null as {{ type_text() }}) as tracking_no,
        false as is_flash_sale,
        cast(null as boolean) as accepts_marketing,

        -- contact fields normalized at landing (E.164 phones, lower-cased e-mails)
        {{ json_text('derived', 'phones', 0) }} as phone_e164,
        {{ json_array('derived', 'phones') }} as phones,
        {{ json_text('derived', 'masked_phones', 0) }} as masked_phone,
        {{ json_text('derived', 'emails', 0) }} as email,

        source_updated_at,
        loaded_at
    from statuses
)

select * from renamed
