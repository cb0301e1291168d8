-- Line items of the current version of each taobao order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('taobao', source('raw', 'taobao_trades')) }}
)

select * from items
