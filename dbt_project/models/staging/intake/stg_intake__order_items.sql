-- Line items of the current version of each intake order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('intake', source('raw', 'intake_orders')) }}
)

select * from items
