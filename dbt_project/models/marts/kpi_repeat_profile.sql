-- Who the repeat buyers are (R18): by gender, age band, province, category
-- bought and single- vs cross-category, where known. repeat_rate = repeat
-- buyers / paying customers in the group.

with customers as (
    select * from {{ ref('dim_customers') }} where paid_orders > 0
),

categories as (
    select c.customer_id, c.paid_orders, unnest(c.categories_bought) as category
    from customers as c
),

dims as (
    select 'gender' as dimension, coalesce(gender, 'unknown') as value, customer_id, paid_orders from customers
    union all
    select 'age_band', age_band, customer_id, paid_orders from customers
    union all
    select 'province', coalesce(province, 'unknown'), customer_id, paid_orders from customers
    union all
    select 'category', category, customer_id, paid_orders from categories
    union all
    select 'category_mix', case when is_cross_category then 'cross_category' else 'single_category' end,
           customer_id, paid_orders from customers
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        dimension,
        value,
        count(*) as customers,
        count(*) filter (where paid_orders >= 2) as repeat_buyers,
        round(count(*) filter (where paid_orders >= 2)::numeric / nullif(count(*), 0), 4) as repeat_rate,
        round(count(*) filter (where paid_orders >= 2)::numeric
              / nullif(sum(count(*) filter (where paid_orders >= 2)) over (partition by dimension), 0), 4)
            as share_of_repeat_buyers
    from dims
    group by dimension, value
)

select * from final
