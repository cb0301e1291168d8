{#-
  Cross-database shims: every piece of SQL that PostgreSQL and Apache Spark write
  differently goes through one of these (adapter.dispatch), so the models read the
  same on both engines. `default__` is PostgreSQL's spelling; `spark__` Spark SQL's.
  Where dbt itself ships a cross-database macro (dbt.dateadd, dbt.datediff,
  dbt.date_trunc, dbt.hash, dbt.concat, ...), the models call that one instead.
-#}

{#- Text of a JSON value at a path of keys and array positions:
    json_text('payload', 'orders', 'order', 0, 'invoice_no'). -#}
{% macro json_text(column) -%}
    {{ return(adapter.dispatch('json_text', 'crm')(column, varargs)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    {%- for step in path -%}
        {%- set op = '->>' if loop.last else '->' -%}
        {%- if loop.first %}{{ column }}{% endif %} {{ op }} {% if step is number %}{{ step }}{% else %}'{{ step }}'{% endif %}
    {%- endfor -%}
{%- endmacro %}

{% macro spark__json_text(column, path) -%}
    get_json_object({{ column }}, '$
    {%- for step in path -%}
        {%- if step is number -%}[{{ step }}]{%- else -%}.{{ step }}{%- endif -%}
    {%- endfor -%}')
{%- endmacro %}

{#- A JSON array (or object) at a key, as JSON (PostgreSQL jsonb, Spark JSON text). -#}
{% macro json_array(column, key) -%}
    {{ return(adapter.dispatch('json_array', 'crm')(column, key)) }}
{%- endmacro %}

{% macro default__json_array(column, key) -%}({{ column }} -> '{{ key }}'){%- endmacro %}
{% macro spark__json_array(column, key) -%}get_json_object({{ column }}, '$.{{ key }}'){%- endmacro %}

{#- Whether a JSON object has a key (Shopify's buyer_accepts_marketing may be absent). -#}
{% macro json_has_key(column, key) -%}
    {{ return(adapter.dispatch('json_has_key', 'crm')(column, key)) }}
{%- endmacro %}

{% macro default__json_has_key(column, key) -%}
    ({{ column }} ? '{{ key }}')
{%- endmacro %}

{% macro spark__json_has_key(column, key) -%}
    (get_json_object({{ column }}, '$.{{ key }}') is not null)
{%- endmacro %}

{#- The elements of a JSON array as rows, with their position (1-based):
    `from t {{ json_array_rows('t.payload', 'line_items', 'item', 'line_no') }}` adds
    columns `item` (JSON text of the element, read with json_text) and `line_no`. -#}
{% macro json_array_rows(column, path, item, position) -%}
    {{ return(adapter.dispatch('json_array_rows', 'crm')(column, path, item, position)) }}
{%- endmacro %}

{% macro default__json_array_rows(column, path, item, position) -%}
    cross join lateral jsonb_array_elements(coalesce({{ column }}
        {%- for step in path.split('.') %} -> '{{ step }}'{% endfor %}, '[]'::jsonb))
        with ordinality as {{ item }}_rows({{ item }}, {{ position }})
{%- endmacro %}

{% macro spark__json_array_rows(column, path, item, position) -%}
    lateral view posexplode(coalesce(from_json(get_json_object({{ column }}, '$.{{ path }}'), 'array<string>'),
                                     array())) {{ item }}_rows as {{ position }}_0, {{ item }}
{%- endmacro %}

{#- The position column json_array_rows names (Spark's posexplode counts from 0). -#}
{% macro json_array_position(position) -%}
    {{ return(adapter.dispatch('json_array_position', 'crm')(position)) }}
{%- endmacro %}

{% macro default__json_array_position(position) -%}{{ position }}{%- endmacro %}

{% macro spark__json_array_position(position) -%}({{ position }}_0 + 1){%- endmacro %}

{#- The elements of a JSON array of strings as rows (phones landed as a JSON array). -#}
{% macro json_string_rows(column, value) -%}
    {{ return(adapter.dispatch('json_string_rows', 'crm')(column, value)) }}
{%- endmacro %}

{% macro default__json_string_rows(column, value) -%}
    cross join lateral jsonb_array_elements_text(coalesce({{ column }}, '[]'::jsonb)) as {{ value }}_rows({{ value }})
{%- endmacro %}

{% macro spark__json_string_rows(column, value) -%}
    lateral view explode(coalesce(from_json({{ column }}, 'array<string>'), array())) {{ value }}_rows as {{ value }}
{%- endmacro %}

{#- One field of the first element of a JSON array of {key, value} objects whose key
    is `key` (WooCommerce's meta_data): value[0].<field>. -#}
{% macro json_meta_value(column, key, field) -%}
    {{ return(adapter.dispatch('json_meta_value', 'crm')(column, key, field)) }}
{%- endmacro %}

{% macro default__json_meta_value(column, key, field) -%}
    (select m -> 'value' -> 0 ->> '{{ field }}'
       from jsonb_array_elements(coalesce({{ column }} -> 'meta_data', '[]'::jsonb)) as m
      where m ->> 'key' = '{{ key }}' limit 1)
{%- endmacro %}

{% macro spark__json_meta_value(column, key, field) -%}
    get_json_object(
        filter(coalesce(from_json(get_json_object({{ column }}, '$.meta_data'), 'array<struct<key:string,value:string>>'),
                        array()), m -> m.key = '{{ key }}')[0].value,
        '$[0].{{ field }}')
{%- endmacro %}

{#- Types. -#}
{% macro type_text() -%}{{ return(adapter.dispatch('type_text', 'crm')()) }}{%- endmacro %}
{% macro default__type_text() -%}text{%- endmacro %}
{% macro spark__type_text() -%}string{%- endmacro %}

{% macro type_timestamptz() -%}{{ return(adapter.dispatch('type_timestamptz', 'crm')()) }}{%- endmacro %}
{% macro default__type_timestamptz() -%}timestamptz{%- endmacro %}
{% macro spark__type_timestamptz() -%}timestamp{%- endmacro %}

{% macro type_money() -%}numeric(14, 2){%- endmacro %}

{#- A text value as a timestamp: 'YYYY-MM-DD HH:MM:SS' wall-clock time in `tz` (TOP, JD,
    Youzan send GMT+8); anything else (empty, 0000-00-00 ...) is null. -#}
{% macro local_ts(expr, tz='Asia/Shanghai') -%}
    {{ return(adapter.dispatch('local_ts', 'crm')(expr, tz)) }}
{%- endmacro %}

{% macro default__local_ts(expr, tz) -%}
    (case when {{ expr }} ~ '^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$' and {{ expr }} not like '0000%'
          then ({{ expr }})::timestamp at time zone '{{ tz }}' end)
{%- endmacro %}

{#- Spark sessions run in UTC (profiles.yml): a timestamp is the UTC wall clock. -#}
{% macro spark__local_ts(expr, tz) -%}
    (case when {{ expr }} rlike '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$' and {{ expr }} not like '0000%'
          then to_utc_timestamp(to_timestamp({{ expr }}), '{{ tz }}') end)
{%- endmacro %}

{#- An ISO 8601 text with an offset (Shopify) as a timestamp; empty is null. -#}
{% macro iso_ts(expr) -%}
    {{ return(adapter.dispatch('iso_ts', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__iso_ts(expr) -%}
    (case when nullif({{ expr }}, '') is not null then ({{ expr }})::timestamptz end)
{%- endmacro %}

{% macro spark__iso_ts(expr) -%}
    cast(nullif({{ expr }}, '') as timestamp)
{%- endmacro %}

{#- An ISO text without an offset that is UTC (WooCommerce's *_gmt fields). -#}
{% macro utc_ts(expr) -%}
    {{ return(adapter.dispatch('utc_ts', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__utc_ts(expr) -%}
    (nullif({{ expr }}, '') || '+00')::timestamptz
{%- endmacro %}

{% macro spark__utc_ts(expr) -%}
    cast(nullif({{ expr }}, '') as timestamp)
{%- endmacro %}

{#- A unix time (seconds) as a timestamp. -#}
{% macro unix_ts(expr) -%}
    {{ return(adapter.dispatch('unix_ts', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__unix_ts(expr) -%}to_timestamp(({{ expr }})::bigint){%- endmacro %}
{% macro spark__unix_ts(expr) -%}timestamp_seconds(cast({{ expr }} as bigint)){%- endmacro %}

{#- The local date of a timestamp in a time zone (a literal or a column). -#}
{% macro local_date(ts, tz) -%}
    {{ return(adapter.dispatch('local_date', 'crm')(ts, tz)) }}
{%- endmacro %}

{% macro default__local_date(ts, tz) -%}
    cast(({{ ts }}) at time zone {{ tz }} as date)
{%- endmacro %}

{% macro spark__local_date(ts, tz) -%}
    to_date(from_utc_timestamp({{ ts }}, {{ tz }}))
{%- endmacro %}

{#- The start of a local day (a date) in a time zone, as a timestamp. -#}
{% macro local_midnight(day, tz) -%}
    {{ return(adapter.dispatch('local_midnight', 'crm')(day, tz)) }}
{%- endmacro %}

{% macro default__local_midnight(day, tz) -%}
    (cast({{ day }} as timestamp) at time zone {{ tz }})
{%- endmacro %}

{% macro spark__local_midnight(day, tz) -%}
    to_utc_timestamp(cast({{ day }} as timestamp), {{ tz }})
{%- endmacro %}

{#- Days (fractional) between two timestamps. -#}
{% macro days_between(later, earlier) -%}
    {{ return(adapter.dispatch('days_between', 'crm')(later, earlier)) }}
{%- endmacro %}

{% macro default__days_between(later, earlier) -%}
    (extract(epoch from ({{ later }}) - ({{ earlier }})) / 86400.0)
{%- endmacro %}

{% macro spark__days_between(later, earlier) -%}
    ((unix_micros({{ later }}) - unix_micros({{ earlier }})) / 86400000000.0)
{%- endmacro %}

{#- A timestamp plus a (fractional) number of days. -#}
{% macro add_days(ts, days) -%}
    {{ return(adapter.dispatch('add_days', 'crm')(ts, days)) }}
{%- endmacro %}

{% macro default__add_days(ts, days) -%}
    ({{ ts }} + ({{ days }}) * interval '1 day')
{%- endmacro %}

{% macro spark__add_days(ts, days) -%}
    timestamp_micros(unix_micros({{ ts }}) + cast(round(({{ days }}) * 86400000000) as bigint))
{%- endmacro %}

{#- Whole days from one date to another (dbt.datediff's argument order). -#}
{% macro days_from(earlier, later) -%}
    {{ dbt.datediff(earlier, later, 'day') }}
{%- endmacro %}

{#- Whole years from a date to another (age in years). -#}
{% macro years_between(earlier, later) -%}
    {{ return(adapter.dispatch('years_between', 'crm')(earlier, later)) }}
{%- endmacro %}

{% macro default__years_between(earlier, later) -%}
    date_part('year', age({{ later }}, {{ earlier }}))
{%- endmacro %}

{% macro spark__years_between(earlier, later) -%}
    floor(months_between({{ later }}, {{ earlier }}) / 12)
{%- endmacro %}

{#- Arrays of text. -#}
{% macro sorted_distinct_array(expr) -%}
    {{ return(adapter.dispatch('sorted_distinct_array', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__sorted_distinct_array(expr) -%}
    array_agg(distinct {{ expr }} order by {{ expr }})
{%- endmacro %}

{% macro spark__sorted_distinct_array(expr) -%}
    array_sort(collect_set({{ expr }}))
{%- endmacro %}

{% macro empty_text_array() -%}
    {{ return(adapter.dispatch('empty_text_array', 'crm')()) }}
{%- endmacro %}

{% macro default__empty_text_array() -%}cast(array[] as text[]){%- endmacro %}
{% macro spark__empty_text_array() -%}cast(array() as array<string>){%- endmacro %}

{% macro array_size(expr) -%}
    {{ return(adapter.dispatch('array_size', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__array_size(expr) -%}coalesce(cardinality({{ expr }}), 0){%- endmacro %}
{% macro spark__array_size(expr) -%}coalesce(size({{ expr }}), 0){%- endmacro %}

{#- The elements of a text array column as rows, in a join clause. -#}
{% macro unnest_rows(expr, value) -%}
    {{ return(adapter.dispatch('unnest_rows', 'crm')(expr, value)) }}
{%- endmacro %}

{% macro default__unnest_rows(expr, value) -%}
    cross join lateral unnest({{ expr }}) as {{ value }}_rows({{ value }})
{%- endmacro %}

{% macro spark__unnest_rows(expr, value) -%}
    lateral view explode({{ expr }}) {{ value }}_rows as {{ value }}
{%- endmacro %}

{#- The value of `expr` on the first row of a group by `order_by` (a list of
    'column [desc]'), among the rows where it is not empty. -#}
{% macro first_in_group(expr, order_by) -%}
    {{ return(adapter.dispatch('first_in_group', 'crm')(expr, order_by)) }}
{%- endmacro %}

{% macro default__first_in_group(expr, order_by) -%}
    (array_agg({{ expr }} order by {{ order_by | join(', ') }})
        filter (where nullif({{ expr }}, '') is not null))[1]
{%- endmacro %}

{#- min_by over a struct of the sort keys; a descending timestamp key is negated. -#}
{% macro spark__first_in_group(expr, order_by) -%}
    {%- set keys = [] -%}
    {%- for key in order_by -%}
        {%- set parts = key.split(' ') -%}
        {%- if parts | length > 1 and parts[1] == 'desc' -%}
            {%- do keys.append('-unix_micros(' ~ parts[0] ~ ')') -%}
        {%- else -%}
            {%- do keys.append(parts[0]) -%}
        {%- endif -%}
    {%- endfor -%}
    min_by({{ expr }}, struct({{ keys | join(', ') }})) filter (where nullif({{ expr }}, '') is not null)
{%- endmacro %}

{#- The median of a customer's gaps so far, in two steps (a window, then a value per
    row): running_median_window(...) as w in one CTE, running_median_value('w', 'n')
    in the next. PostgreSQL has no ordered-set aggregate as a window: the gaps so far
    as an array (one window pass), their median computed per row; one or two gaps in
    closed form, as percentile_cont computes them. Spark's percentile is a window. -#}
{% macro running_median_window(expr, partition_by, order_by) -%}
    {{ return(adapter.dispatch('running_median_window', 'crm')(expr, partition_by, order_by)) }}
{%- endmacro %}

{% macro default__running_median_window(expr, partition_by, order_by) -%}
    array_agg({{ expr }}) over (partition by {{ partition_by }} order by {{ order_by }}
                                rows between unbounded preceding and current row)
{%- endmacro %}

{% macro spark__running_median_window(expr, partition_by, order_by) -%}
    percentile({{ expr }}, 0.5) over (partition by {{ partition_by }} order by {{ order_by }}
                                      rows between unbounded preceding and current row)
{%- endmacro %}

{#- `with x as {{ materialized_cte() }} (...)`: PostgreSQL computes a CTE once even where
    its columns are referenced several times (else it inlines a once-read CTE and repeats
    each expression per reference: the running median, a subquery per row, ran four times
    in int_customer_paid_orders). Spark has no such keyword. -#}
{% macro materialized_cte() -%}{{ return(adapter.dispatch('materialized_cte', 'crm')()) }}{%- endmacro %}
{% macro default__materialized_cte() -%}materialized{%- endmacro %}
{% macro spark__materialized_cte() -%}{%- endmacro %}

{% macro running_median_value(window_column, n) -%}
    {{ return(adapter.dispatch('running_median_value', 'crm')(window_column, n)) }}
{%- endmacro %}

{#- the array's first element is the first order's null gap -#}
{% macro default__running_median_value(g, n) -%}
    (case
        when {{ n }} = 2 then {{ g }}[2]::float8
        when {{ n }} = 3 then least({{ g }}[2], {{ g }}[3])::float8
            + (greatest({{ g }}[2], {{ g }}[3])::float8 - least({{ g }}[2], {{ g }}[3])::float8) * 0.5
        when {{ n }} > 3 then (select percentile_cont(0.5) within group (order by x) from unnest({{ g }}) as x)
    end)
{%- endmacro %}

{% macro spark__running_median_value(g, n) -%}
    cast({{ g }} as double)
{%- endmacro %}

{#- A day per row from `start_day` to `end_day` (inclusive), as column `column`. -#}
{% macro day_rows(start_day, end_day, column) -%}
    {{ return(adapter.dispatch('day_rows', 'crm')(start_day, end_day, column)) }}
{%- endmacro %}

{% macro default__day_rows(start_day, end_day, column) -%}
    select cast(d as date) as {{ column }}
    from generate_series(cast({{ start_day }} as timestamp), cast({{ end_day }} as timestamp), interval '1 day') as d
{%- endmacro %}

{% macro spark__day_rows(start_day, end_day, column) -%}
    select explode(sequence(cast({{ start_day }} as date), cast({{ end_day }} as date), interval 1 day)) as {{ column }}
{%- endmacro %}

{#- Integers 0..n as rows of column `column`, in a join clause (months since a cohort). -#}
{% macro integer_rows(upto, column) -%}
    {{ return(adapter.dispatch('integer_rows', 'crm')(upto, column)) }}
{%- endmacro %}

{% macro default__integer_rows(upto, column) -%}
    cross join lateral generate_series(0, {{ upto }}) as {{ column }}_rows({{ column }})
{%- endmacro %}

{% macro spark__integer_rows(upto, column) -%}
    lateral view explode(sequence(0, {{ upto }})) {{ column }}_rows as {{ column }}
{%- endmacro %}

{#- Text normalized for weak matching: trimmed, lower-cased, spaces and punctuation removed. -#}
{% macro norm_text(expr) -%}
    {{ return(adapter.dispatch('norm_text', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__norm_text(expr) -%}
    nullif(lower(regexp_replace(coalesce({{ expr }}, ''), '[[:space:]　,，.。#-]+', '', 'g')), '')
{%- endmacro %}

{% macro spark__norm_text(expr) -%}
    nullif(lower(regexp_replace(coalesce({{ expr }}, ''), '[\\s　,，.。#-]+', '')), '')
{%- endmacro %}

{#- Two Chinese name cores (int_identity__links) can be one person: equal, or one inside
    the other (a nickname core 平 in 武平, 芷若 in 周芷若, a surname 张 in 张伟). -#}
{% macro names_compatible(a, b) -%}
    ({{ a }} = {{ b }} or {{ adapter.dispatch('text_contains', 'crm')(a, b) }} or {{ adapter.dispatch('text_contains', 'crm')(b, a) }})
{%- endmacro %}

{% macro default__text_contains(haystack, needle) -%}strpos({{ haystack }}, {{ needle }}) > 0{%- endmacro %}
{% macro spark__text_contains(haystack, needle) -%}instr({{ haystack }}, {{ needle }}) > 0{%- endmacro %}

{#- True when the whole of `expr` matches the regular expression `pattern` (a quoted literal). -#}
{% macro matches(expr, pattern) -%}{{ return(adapter.dispatch('matches', 'crm')(expr, pattern)) }}{%- endmacro %}
{% macro default__matches(expr, pattern) -%}({{ expr }} ~ {{ pattern }}){%- endmacro %}
{% macro spark__matches(expr, pattern) -%}({{ expr }} rlike {{ pattern }}){%- endmacro %}

{#- Calendar months from one date's month to another's (0 = the same month). -#}
{% macro months_between_dates(earlier, later) -%}
    cast(((extract(year from {{ later }}) - extract(year from {{ earlier }})) * 12
          + extract(month from {{ later }}) - extract(month from {{ earlier }})) as int)
{%- endmacro %}

{#- A text array as one text (chr(31) between elements; it cannot occur in a category)
    and back. Tables a dbt unit test feeds hold no array: a fixture's null cannot be
    cast to PostgreSQL's ARRAY type. -#}
{% macro array_to_text(expr) -%}
    {{ return(adapter.dispatch('array_to_text', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__array_to_text(expr) -%}array_to_string({{ expr }}, chr(31)){%- endmacro %}
{% macro spark__array_to_text(expr) -%}array_join({{ expr }}, chr(31)){%- endmacro %}

{% macro text_to_array(expr) -%}
    {{ return(adapter.dispatch('text_to_array', 'crm')(expr)) }}
{%- endmacro %}

{% macro default__text_to_array(expr) -%}string_to_array(nullif({{ expr }}, ''), chr(31)){%- endmacro %}
{% macro spark__text_to_array(expr) -%}split(nullif({{ expr }}, ''), chr(31)){%- endmacro %}

{#- Connected components: `components` (node_key, component = the smallest node_key
    of its component) over the nodes of `nodes` (node_key) and the edges of `edges`
    (a, b; both directions listed). PostgreSQL walks the graph with a recursive CTE
    (UNION ends the walk at nodes already reached). Spark's recursive CTEs take UNION
    ALL only, which never ends on a cycle: every node takes the smallest label among
    itself and its neighbours, var identity_spark_rounds times (one hop per round). -#}
{% macro connected_components(nodes, edges) -%}
    {{ return(adapter.dispatch('connected_components', 'crm')(nodes, edges)) }}
{%- endmacro %}

{% macro default__connected_components(nodes, edges) -%}
reach (node_key, label) as (
    select node_key, node_key from {{ nodes }}
    union
    select u.b, r.label
    from reach as r
    inner join {{ edges }} as u on u.a = r.node_key
),

components as (
    select node_key, min(label) as component
    from reach
    group by node_key
)
{%- endmacro %}

{% macro spark__connected_components(nodes, edges) -%}
cc_neighbours as (
    select a, b from {{ edges }}
    union all
    select node_key as a, node_key as b from {{ nodes }}
),

cc_round_0 as (
    select node_key, node_key as label from {{ nodes }}
),
{% for round in range(1, var('identity_spark_rounds', 24) + 1) %}
cc_round_{{ round }} as (
    select n.a as node_key, min(r.label) as label
    from cc_neighbours as n
    inner join cc_round_{{ round - 1 }} as r on r.node_key = n.b
    group by n.a
),
{% endfor %}
components as (
    select node_key, label as component from cc_round_{{ var('identity_spark_rounds', 24) }}
)
{%- endmacro %}

{#- A timestamp as the same text on every engine (UTC, microseconds): for hash keys. -#}
{% macro timestamp_text(ts) -%}
    {{ return(adapter.dispatch('timestamp_text', 'crm')(ts)) }}
{%- endmacro %}

{% macro default__timestamp_text(ts) -%}
    to_char({{ ts }} at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')
{%- endmacro %}

{% macro spark__timestamp_text(ts) -%}
    date_format({{ ts }}, 'yyyy-MM-dd HH:mm:ss.SSSSSS')
{%- endmacro %}

{#- The scalar value of a WooCommerce meta_data entry whose key is `key` (a plugin's flag). -#}
{% macro json_meta_scalar(column, key) -%}
    {{ return(adapter.dispatch('json_meta_scalar', 'crm')(column, key)) }}
{%- endmacro %}

{% macro default__json_meta_scalar(column, key) -%}
    (select m ->> 'value'
       from jsonb_array_elements(coalesce({{ column }} -> 'meta_data', '[]'::jsonb)) as m
      where m ->> 'key' = '{{ key }}' limit 1)
{%- endmacro %}

{% macro spark__json_meta_scalar(column, key) -%}
    filter(coalesce(from_json(get_json_object({{ column }}, '$.meta_data'), 'array<struct<key:string,value:string>>'),
                    array()), m -> m.key = '{{ key }}')[0].value
{%- endmacro %}

{#- Aggregates over the elements of a JSON array, possibly nested (issue 29: refunds and
    fulfilments live in arrays inside the order). `path` is a list of array steps, each
    a dotted key path to an array: ['refunds', 'transactions'] is every element of every
    refunds[].transactions[]; ['orders.order'] is orders.order[]. `where` is a list of
    (field, 'in' | 'not in', [SQL expressions]) an element's text field must satisfy
    (a missing field is the empty string). Fields are read as text.
      json_elements_sum(col, path, field, where)  sum of a money field (null: no element)
      json_elements_max(col, path, field, where)  largest text value (ISO times sort)
      json_elements_min(col, path, field, where)  smallest text value
      json_elements_first(col, path, field, where) the field of the first matching element -#}
{% macro json_elements_sum(column, path, field, where=[]) -%}
    {{ return(adapter.dispatch('json_elements_agg', 'crm')('sum', column, path, field, where)) }}
{%- endmacro %}
{% macro json_elements_max(column, path, field, where=[]) -%}
    {{ return(adapter.dispatch('json_elements_agg', 'crm')('max', column, path, field, where)) }}
{%- endmacro %}
{% macro json_elements_min(column, path, field, where=[]) -%}
    {{ return(adapter.dispatch('json_elements_agg', 'crm')('min', column, path, field, where)) }}
{%- endmacro %}
{% macro json_elements_first(column, path, field, where=[]) -%}
    {{ return(adapter.dispatch('json_elements_agg', 'crm')('first', column, path, field, where)) }}
{%- endmacro %}

{% macro default__json_elements_agg(agg, column, path, field, where) -%}
    {%- set jsonpath = '$.' ~ (path | join('[*].')) ~ '[*]' -%}
    {%- set value = "e ->> '" ~ field ~ "'" -%}
    (select
        {%- if agg == 'sum' %} sum(cast(nullif(replace({{ value }}, ',', ''), '') as {{ type_money() }}))
        {%- elif agg == 'first' %} {{ value }}
        {%- else %} {{ agg }}({{ value }})
        {%- endif %}
     from jsonb_path_query(coalesce({{ column }}, '{}'::jsonb), '{{ jsonpath }}') with ordinality as el(e, n)
     where jsonb_typeof(e) = 'object'
     {%- for f, op, values in where %}
       and coalesce(e ->> '{{ f }}', '') {{ op }} ({{ values | join(', ') }})
     {%- endfor %}
     {%- if agg == 'first' %}
     order by n limit 1
     {%- endif %})
{%- endmacro %}

{% macro spark__json_elements_agg(agg, column, path, field, where) -%}
    {%- set typ = 'array<map<string,string>>' -%}
    {%- if path | length == 1 -%}
        {%- set elements = "coalesce(from_json(get_json_object(" ~ column ~ ", '$." ~ path[0] ~ "'), '" ~ typ ~ "'), cast(array() as " ~ typ ~ "))" -%}
    {%- else -%}
        {%- set elements = "flatten(transform(coalesce(from_json(get_json_object(" ~ column ~ ", '$." ~ path[0] ~ "'), 'array<string>'), cast(array() as array<string>)), p -> coalesce(from_json(get_json_object(p, '$." ~ path[1] ~ "'), '" ~ typ ~ "'), cast(array() as " ~ typ ~ "))))" -%}
    {%- endif -%}
    {%- if where -%}
        {%- set conds = [] -%}
        {%- for f, op, values in where -%}
            {%- do conds.append("coalesce(e['" ~ f ~ "'], '') " ~ op ~ " (" ~ (values | join(', ')) ~ ")") -%}
        {%- endfor -%}
        {%- set elements = "filter(" ~ elements ~ ", e -> " ~ (conds | join(' and ')) ~ ")" -%}
    {%- endif -%}
    {%- if agg == 'sum' -%}
    aggregate({{ elements }}, cast(null as {{ type_money() }}),
              (acc, e) -> cast(coalesce(acc, 0) + cast(nullif(replace(e['{{ field }}'], ',', ''), '') as {{ type_money() }}) as {{ type_money() }}))
    {%- elif agg == 'first' -%}
    get({{ elements }}, 0)['{{ field }}']
    {%- else -%}
    array_{{ agg }}(filter(transform({{ elements }}, e -> e['{{ field }}']), v -> v is not null))
    {%- endif -%}
{%- endmacro %}
