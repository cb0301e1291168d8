-- Who the repeat buyers are (R18): by gender, age band, province, category
-- bought and single- vs cross-category, where known. repeat_rate = repeat
-- buyers / paying customers in the group.

with customers as (
    select * from {{ ref('dim_customers') }} where paid_orders > 0
),

categories as (
    select c.customer_id, c.paid_orders, category
    from customers as c
    {{ unnest_rows('c.categories_bought', 'category') }}
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
        count(case when paid_orders >= 2 then 1 end) as repeat_buyers,
        round(cast(count(case when paid_orders >= 2 then 1 end) as numeric(18, 6)) / nullif(count(*), 0), 4) as repeat_rate,
        round(cast(count(case when paid_orders >= 2 then 1 end) as numeric(18, 6))
              / nullif(sum(count(case when paid_orders >= 2 then 1 end)) over (partition by dimension), 0), 4)
            as share_of_repeat_buyers
    from dims
    group by dimension, value
)

select * from final
