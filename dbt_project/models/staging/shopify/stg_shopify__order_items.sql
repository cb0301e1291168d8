-- Line items of the current version of each shopify order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('shopify', source('raw', 'shopify_orders')) }}
)

select * from items
