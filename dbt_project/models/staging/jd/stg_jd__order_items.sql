-- Line items of the current version of each jd order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('jd', source('raw', 'jd_orders')) }}
)

select * from items
