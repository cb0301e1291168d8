-- Line items of the current version of each woocommerce order.
with items (order_key, line_no, sku, title, quantity, unit_price, line_amount, currency) as (
    {{ order_item_rows('woocommerce', source('raw', 'woocommerce_orders')) }}
)

select * from items
