{{ config(
    indexes=[{'columns': ['order_key'], 'unique': true}, {'columns': ['node_key']}, {'columns': ['loaded_at']},
             {'columns': ['modeled_at']}],
    **order_model_config('order_key')
) }}
-- Typed, unified orders (one row per order, latest version), with amounts in
-- the base currency (gross, refunded, net: D100), the shop's local order date, milestones filled from the
-- status history, the identity node each order belongs to, and the normalized
-- name and address identity matching compares (computed once per order here).
-- Incremental (delete+insert by order): the orders landed since the newest this
-- table holds, minus incremental_lookback_days (a landing that committed late).

with orders as (
    select * from {{ ref('int_orders__unioned') }}
    {% if is_incremental() %}
    where {{ landed_since('loaded_at') }}
    {% endif %}
),

history as (
    select
        order_key,
        min(case when status = 'paid' then first_observed_at end) as first_paid_seen_at,
        min(case when status = 'shipped' then first_observed_at end) as first_shipped_seen_at,
        min(case when status = 'completed' then first_observed_at end) as first_completed_seen_at,
        min(case when status = 'refunded' then first_observed_at end) as first_refunded_seen_at
    from {{ ref('int_order_status_history') }}
    {% if is_incremental() %}
    where order_key in (select order_key from orders)
    {% endif %}
    group by order_key
),

fx as (
    select currency, rate_to_cny from {{ ref('fx_rates') }}
),

joined as (
    select
        o.*,
        coalesce(fx.rate_to_cny, 1) as rate_to_cny,
        {{ shop_tz('o.shop_id') }} as shop_timezone,
        coalesce(o.paid_at, h.first_paid_seen_at) as paid_at_or_seen,
        h.first_shipped_seen_at,
        h.first_completed_seen_at,
        h.first_refunded_seen_at
    from orders as o
    left join history as h on h.order_key = o.order_key
    left join fx on fx.currency = o.currency
    where o.created_at is not null
),

final as (
    select
        order_key,
        platform,
        shop_id,
        order_id,
        platform || ':' || shop_id || ':' || coalesce(buyer_platform_id, 'order:' || order_id) as node_key,
        buyer_platform_id,
        buyer_nick,
        receiver_name,
        phone_e164,
        phones,
        masked_phone,
        email,
        province,
        city,
        district,
        address,
        -- identity matching (R3): who holds an identifier, and the weak name+address key
        {{ norm_text('coalesce(receiver_name, buyer_nick)') }} as holder,
        {{ norm_text('receiver_name') }} as name_norm,
        {{ norm_text('address') }} as address_norm,
        status,
        platform_status,
        status in ('paid', 'shipped', 'completed') as is_paid,
        currency,
        order_amount,
        round(order_amount * rate_to_cny, 2) as amount_cny,
        -- what was given back (D100): the whole amount of a refunded order, else the
        -- platform's refunds of a paid order (partial), never more than the order
        {{ order_refund_cny('status', 'order_amount', 'refund_amount', 'rate_to_cny') }} as refund_cny,
        round(order_amount * rate_to_cny, 2)
            - {{ order_refund_cny('status', 'order_amount', 'refund_amount', 'rate_to_cny') }} as net_amount_cny,
        discount_amount,
        shipping_amount,
        shop_timezone,
        created_at,
        {{ local_date('created_at', 'shop_timezone') }} as order_date,
        paid_at_or_seen as paid_at,
        {{ local_date('paid_at_or_seen', 'shop_timezone') }} as paid_date,
        coalesce(shipped_at, first_shipped_seen_at) as shipped_at,
        coalesce(completed_at, first_completed_seen_at) as completed_at,
        closed_at,
        -- the latest refund, whole or partial (D100); none when nothing was given back
        case when status = 'refunded' or {{ order_refund_cny('status', 'order_amount', 'refund_amount', 'rate_to_cny') }} > 0
             then coalesce(refunded_at, first_refunded_seen_at) end as refunded_at,
        carrier,
        tracking_no,
        is_flash_sale,
        accepts_marketing,
        source_updated_at,
        loaded_at,
        {{ modeled_at() }} as modeled_at
    from joined
)

select * from final
