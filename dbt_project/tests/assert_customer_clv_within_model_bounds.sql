{{ config(enabled=(target.type == 'postgres')) }}
-- marts.customer_clv: probabilities are probabilities, expectations are ordered by
-- horizon, a fitted row has every model column and an unfitted one has none.
select customer_id
from {{ ref('customer_clv') }}
where p_alive < 0 or p_alive > 1
   or expected_purchases_30d < 0
   or expected_purchases_90d < expected_purchases_30d
   or expected_purchases_365d < expected_purchases_90d
   or clv_cny < 0
   or recency_weeks > t_weeks
   or (status = 'fitted' and (p_alive is null or expected_order_value_cny is null or clv_cny is null))
   or (status <> 'fitted' and (p_alive is not null or clv_cny is not null))
