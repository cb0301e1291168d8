{#-
  persist_docs writes the model's description and column docs as comments on
  every run (D46). COMMENT takes a SHARE UPDATE EXCLUSIVE lock, the lock
  autovacuum holds while it vacuums or analyzes a table. On an incremental model
  the table stays, so after a night's inserts autovacuum is often at work on it
  when dbt comments: the COMMENT waits deadlock_timeout (1 s), then cancels
  autovacuum, and the table's statistics are not refreshed. These overrides of
  dbt-postgres 1.11's macros issue a COMMENT only when the text differs from the
  one in the catalog (which never locks); a rebuilt table or view has none yet,
  so it is commented as before. An empty description is no comment (COMMENT ... IS
  '' removes it), so it compares equal to none.
-#}

{% macro postgres__alter_relation_comment(relation, comment) %}
  {%- set escaped_comment = postgres_escape_comment(comment) -%}
  {%- set relation_type = 'materialized view' if relation.type == 'materialized_view' else relation.type -%}
  do $crm_comment$ begin
    if coalesce(obj_description({{ crm_regclass(relation) }}, 'pg_class'), '') <> {{ escaped_comment }} then
      comment on {{ relation_type }} {{ relation }} is {{ escaped_comment }};
    end if;
  end $crm_comment$;
{% endmacro %}

{% macro postgres__alter_column_comment(relation, column_dict) %}
  {%- set existing_columns = adapter.get_columns_in_relation(relation) | map(attribute="name") | list -%}
  {%- set columns = [] -%}
  {%- for column_name in column_dict if (column_name in existing_columns) -%}
    {%- do columns.append(column_name) -%}
  {%- endfor -%}
  {%- if columns -%}
  do $crm_comment$ begin
  {%- for column_name in columns %}
    {%- set escaped_comment = postgres_escape_comment(column_dict[column_name]['description']) %}
    {%- set quoted = adapter.quote(column_name) if column_dict[column_name]['quote'] else column_name %}
    if coalesce(col_description({{ crm_regclass(relation) }},
                                (select attnum from pg_attribute
                                 where attrelid = {{ crm_regclass(relation) }} and attname = '{{ column_name }}')), '')
       <> {{ escaped_comment }} then
      comment on column {{ relation }}.{{ quoted }} is {{ escaped_comment }};
    end if;
  {%- endfor %}
  end $crm_comment$;
  {%- endif -%}
{% endmacro %}

{% macro crm_regclass(relation) -%}
  '{{ relation.include(database=false) }}'::regclass
{%- endmacro %}
