{#- Small local replacements for what dbt packages would give (no dbt hub here). -#}

{#- A plain value, or null for a Youzan ciphertext ($<base64>$1$) nobody decrypted. -#}
{% macro yz_plain(expr) -%}
    (case when {{ expr }} like '$%$1$' then null else nullif({{ expr }}, '') end)
{%- endmacro %}

{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}

{#- End of the as-of business day (exclusive bound) in the default time zone. -#}
{% macro as_of_end() -%}
    ((cast('{{ var("as_of_date") }}' as date) + 1)::timestamp at time zone '{{ var("default_timezone") }}')
{%- endmacro %}

{% macro surrogate_key(fields) -%}
    md5(concat_ws('|', {% for f in fields %}coalesce(cast({{ f }} as text), '∅'){% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{#- 'YYYY-MM-DD HH:MM:SS' in platform local time (TOP, JD are GMT+8 by definition). -#}
{% macro local_ts(expr, tz='Asia/Shanghai') -%}
    (case when {{ expr }} ~ '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$' and {{ expr }} not like '0000%'
          then ({{ expr }})::timestamp at time zone '{{ tz }}' end)
{%- endmacro %}

{% macro iso_ts(expr) -%}
    (case when nullif({{ expr }}, '') is not null then ({{ expr }})::timestamptz end)
{%- endmacro %}

{% macro money(expr) -%}
    cast(nullif(replace({{ expr }}, ',', ''), '') as numeric(14, 2))
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

{#- Normalized text for weak matching: trimmed, lower-cased, inner spaces removed. -#}
{% macro norm_text(expr) -%}
    nullif(lower(regexp_replace(coalesce({{ expr }}, ''), '[[:space:]　,，.。#-]+', '', 'g')), '')
{%- endmacro %}

{% macro days_between(later, earlier) -%}
    (extract(epoch from ({{ later }}) - ({{ earlier }})) / 86400.0)
{%- endmacro %}

{#- A raw landing table with its payload decompressed once per row. Postgres
    decompresses a stored jsonb again for every `payload ->> 'field'`; the
    staging models read 30-40 fields, so this makes them ~3x cheaper. The
    lateral (offset 0 keeps it a per-row step) leaves loaded_at and key
    filters free to reach the table's indexes. -#}
{% macro raw_rows(relation) -%}
    select r.shop_id, r.order_id, r.source_updated_at, d.payload, r.derived, r.payload_hash, r.batch_id, r.loaded_at
    from {{ relation }} as r
    cross join lateral (select r.payload || '{}'::jsonb as payload offset 0) as d
{%- endmacro %}

{#- Every order source; staging has one model set per entry. -#}
{% macro order_platforms() -%}
    {{ return(['taobao', 'jd', 'shopify', 'woocommerce', 'youzan', 'intake']) }}
{%- endmacro %}

{#- post-hook of the identity tables the next steps join (dbt_project.yml, D38): give
    the planner statistics for a table the run just built. dbt's `create table as`
    leaves none, and the models after it in the same run (and the next night's, until
    autovacuum gets there) were planned on default guesses: customer_identities' query
    for affected nodes took 2.4 s or 12.4 s in identical runs. An incremental model
    is analyzed when rebuilt whole; its nightly inserts are left to autovacuum. On
    every model it cost more than it saved (wide 200k-row marts: +15-25 s per full
    refresh). -#}
{% macro analyze_built() -%}
    {%- set materialized = config.get('materialized') -%}
    {%- if materialized == 'table' or (materialized == 'incremental' and should_full_refresh()) -%}
        analyze {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- post-hook of every model (dbt_project.yml, D48): an incremental model rebuilt whole
    gets statistics for the columns it is indexed on, the ones the next steps look it
    up by. Without them the incremental run right after a full refresh (until
    autovacuum gets there) took a night's customers for half the table: int_customer_
    profile read int_customer_orders whole (3.0 s against 1.4 s at 1M orders). Only
    those columns: ANALYZE of every column of the wide tables cost more than it saved
    (D38). A table model is left alone (D38); an incremental run leaves drift to
    autovacuum. -#}
{% macro analyze_index_columns() -%}
    {%- set columns = [] -%}
    {%- for index in config.get('indexes') or [] -%}
        {%- for column in index.columns if column not in columns -%}
            {%- do columns.append(column) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if config.get('materialized') == 'incremental' and columns and should_full_refresh() -%}
        analyze {{ this }} ({{ columns | join(', ') }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
