{{ config(
    materialized='incremental',
    unique_key=['order_key', 'status'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['order_key']}]
) }}
-- When each order was first and last seen in each status (from every landed
-- version). Gives milestone times a platform does not send (JD shipping time).

with versions as (
    select * from {{ ref('int_order_versions__unioned') }}
    where status is not null
    {% if is_incremental() %}
      and order_key in (
          select order_key from {{ ref('int_order_versions__unioned') }}
          where loaded_at > (select coalesce(max(last_loaded_at), '1900-01-01') from {{ this }})
                            - interval '{{ var("incremental_lookback_days") }} days'
      )
    {% endif %}
),

final as (
    select
        order_key,
        status,
        min(source_updated_at) as first_observed_at,
        max(source_updated_at) as last_observed_at,
        count(*) as versions,
        max(loaded_at) as last_loaded_at
    from versions
    group by order_key, status
)

select * from final
