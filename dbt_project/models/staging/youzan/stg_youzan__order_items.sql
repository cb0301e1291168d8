-- Line items of the current version of each youzan order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('youzan', source('raw', 'youzan_orders')) }}
)

select * from items
