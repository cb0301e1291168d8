{% snapshot snap_identity_map %}
{{ config(
    unique_key='node_key',
    strategy='check',
    check_cols=['customer_id'],
    invalidate_hard_deletes=true
) }}
-- Which customer every identity node belonged to, over time: the record of
-- merges and splits (marts.identity_changes). observed_as_of is the business
-- day of the run that first saw this assignment.
select
    node_key,
    customer_id,
    cast('{{ var("as_of_date") }}' as date) as observed_as_of
from {{ ref('int_identity__resolved') }}
{% endsnapshot %}
