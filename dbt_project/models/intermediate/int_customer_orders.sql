{{ config(indexes=[{'columns': ['customer_id']}, {'columns': ['order_key']}], **customer_incremental_config()) }}
-- Orders as of the run's business day, with their customer: the base of every
-- customer metric. "Paid as of" means paid before the end of the as-of day and
-- not refunded by then; revenue is net of refunds.
-- Customer-scoped incremental (D21): a nightly run rebuilds the customers
-- int_customer_increments lists (macros/customer_increments.sql).

{{ customer_order_rows(customer_increment_filter('f.customer_id')) }}
