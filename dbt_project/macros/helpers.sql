{#- Small local replacements for what dbt packages would give (no dbt hub here). -#}

{#- A plain value, or null for a Youzan ciphertext ($<base64>$1$) nobody decrypted. -#}
{% macro yz_plain(expr) -%}
    (case when {{ expr }} like '$%$1$' then null else nullif({{ expr }}, '') end)
{%- endmacro %}

{#- The business day a run closes (var as_of_date). -#}
{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- End of the as-of business day (exclusive bound) in the default time zone. -#}
{% macro as_of_end() -%}
    {{ local_midnight(dbt.dateadd('day', 1, as_of_date()), "'" ~ var('default_timezone') ~ "'") }}
{%- endmacro %}

{% macro surrogate_key(fields) -%}
    md5(concat_ws('|', {% for f in fields %}coalesce(cast({{ f }} as {{ type_text() }}), '∅'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{% macro money(expr) -%}
    cast(nullif(replace({{ expr }}, ',', ''), '') as {{ type_money() }})
{%- endmacro %}

{#- The shop's time zone: shops.yml (passed as var shop_timezones) or the default. -#}
{% macro shop_tz(shop_col) -%}
    {%- set tzs = var('shop_timezones', {}) -%}
    {%- if tzs -%}
    (case {{ shop_col }}{% for shop, tz in tzs.items() %} when '{{ shop }}' then '{{ tz }}'{% endfor %} else '{{ var("default_timezone") }}' end)
    {%- else -%}
    '{{ var("default_timezone") }}'
    {%- endif -%}
{%- endmacro %}

{#- Every order source; staging has one folder per entry. -#}
{% macro order_platforms() -%}
    {{ return(['taobao', 'jd', 'shopify', 'woocommerce', 'youzan', 'intake']) }}
{%- endmacro %}

{#- A raw landing table, read by a staging model. PostgreSQL decompresses a compressed
    jsonb again for every `payload ->> 'field'`, and staging reads 30-40 fields. Payloads
    are stored uncompressed where the row fits a page (D122); one that is compressed (a
    large order, or a row landed before D122) is decompressed here once per row (D20;
    the lateral keeps loaded_at filters on the table's index). Other engines read the
    table as it is. -#}
{% macro raw_rows(relation) -%}
    {{ return(adapter.dispatch('raw_rows', 'crm')(relation)) }}
{%- endmacro %}

{% macro default__raw_rows(relation) -%}
    select r.shop_id, r.order_id, r.source_updated_at, d.payload, r.derived, r.payload_hash, r.batch_id, r.loaded_at
    from {{ relation }} as r
    cross join lateral (
        select case when pg_column_compression(r.payload) is null then r.payload
                    else r.payload || '{}'::jsonb end as payload
        offset 0
    ) as d
{%- endmacro %}

{% macro spark__raw_rows(relation) -%}
    select shop_id, order_id, source_updated_at, payload, derived, payload_hash, batch_id, loaded_at
    from {{ relation }}
{%- endmacro %}

{#- Materialization settings that differ by engine. Order-level models are incremental
    with dbt's delete+insert on PostgreSQL; on Spark merge needs a table format that
    supports it (Delta, Iceberg, Hudi: var spark_file_format), else they are tables. -#}
{% macro order_model_config(unique_key) -%}
    {%- if target.type == 'spark' -%}
        {%- set fmt = var('spark_file_format', 'parquet') -%}
        {%- if fmt in ('delta', 'iceberg', 'hudi') -%}
            {{ return({'materialized': 'incremental', 'incremental_strategy': 'merge', 'unique_key': unique_key,
                       'file_format': fmt}) }}
        {%- endif -%}
        {{ return({'materialized': 'table', 'file_format': fmt}) }}
    {%- endif -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': unique_key,
               'on_schema_change': 'append_new_columns'}) }}
{%- endmacro %}

{#- The incremental filter on a landing time column: rows landed since the newest in
    this model, minus incremental_lookback_days for a landing that committed late.
    The upper bound is always true; it is there for PostgreSQL's planner, which guesses
    a third of the table for `> (subquery)` and reads all of it, but a two-sided range
    as narrow and takes the loaded_at index (2.0 s -> 0.02 s on 1M versions, D122). -#}
{% macro landed_since(column, this_column=none) -%}
    {{ column }} > (select coalesce({{ dbt.dateadd('day', -1 * var('incremental_lookback_days'),
                                                   'max(' ~ (this_column or column) ~ ')') }},
                                   cast('1900-01-01' as {{ type_timestamptz() }}))
                    from {{ this }})
    and {{ column }} < {{ far_future() }}
{%- endmacro %}

{#- Rows a model (re)wrote since this one last ran: its modeled_at stamp is newer (the
    same always-true upper bound as landed_since, for the modeled_at index). -#}
{% macro modeled_since(column='modeled_at') -%}
    {{ column }} > (select max({{ column }}) from {{ this }}) and {{ column }} < {{ far_future() }}
{%- endmacro %}

{% macro far_future() -%}
    cast('3000-01-01' as {{ type_timestamptz() }})
{%- endmacro %}

{#- The run's start, stamped on the rows a model (re)writes. -#}
{% macro modeled_at() -%}
    cast('{{ run_started_at }}' as {{ type_timestamptz() }})
{%- endmacro %}

{#- A log kept across nights, one set of rows per business day (as_of_date): a rerun
    of a day replaces that day's rows. delete+insert by day on PostgreSQL; on Spark an
    insert_overwrite of the day's partition. `full_refresh: false`: a `--full-refresh`
    (after a mapping, seed or time-zone change) keeps the nights already logged, which
    nothing could rebuild; on PostgreSQL a new column is added to the old rows as null
    (on Spark a new column needs the table rebuilt: drop it). -#}
{% macro day_log_config() -%}
    {%- if target.type == 'spark' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite',
                   'partition_by': ['as_of_date'], 'file_format': var('spark_file_format', 'parquet'),
                   'full_refresh': false}) }}
    {%- endif -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'as_of_date',
               'full_refresh': false, 'on_schema_change': 'append_new_columns'}) }}
{%- endmacro %}

{#- An order's refund in CNY (D100): the whole amount when the order is refunded, the
    platform's refunds (partial, in the order's currency) when it is paid, never more
    than the order, else 0. -#}
{% macro order_refund_cny(status, order_amount, refund_amount, rate) -%}
    cast(case when {{ status }} = 'refunded' then round({{ order_amount }} * {{ rate }}, 2)
              when {{ status }} in ('paid', 'shipped', 'completed')
              then least(round(coalesce({{ refund_amount }}, 0) * {{ rate }}, 2), round({{ order_amount }} * {{ rate }}, 2))
              else 0 end as {{ type_money() }})
{%- endmacro %}

{#- A line's refund in CNY (int_order_items, D100), over columns i.* and o.status,
    o.refund_cny. -#}
{% macro line_refund_cny() -%}
    cast(case when o.status = 'refunded' then i.amount_cny
              when i.has_line_refunds = 1 then least(coalesce(i.reported_refund_cny, 0), i.amount_cny)
              when i.order_lines_cny > 0
              then least(round(coalesce(o.refund_cny, 0) * i.amount_cny / i.order_lines_cny, 2), i.amount_cny)
              else 0 end as {{ type_money() }})
{%- endmacro %}
