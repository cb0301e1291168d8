{#-
  Views are left in place when nothing that defines them changed (D39).

  dbt's view materialization recreates every view on every run: a new view, two
  renames, the comments, a drop with cascade (~8 statements, ~0.1 s of dbt's
  Python per view, under an exclusive lock that waits for analysts' queries).
  The 21 staging and union views change only when the project does, so each
  nightly run paid that for nothing.

  Here a view records a fingerprint of everything the default materialization
  would write (compiled SQL, which carries the run's vars; description and
  column docs; persist_docs and grants) as the last line of its comment. When
  the view exists, has no hooks, the run is not a full refresh and the
  fingerprint matches, the node runs one catalog query and returns; otherwise
  it is built exactly as dbt's default does (the body below is dbt-core 1.11's
  `materialization view, default`, plus the fingerprint). A view dropped by a
  cascade (an upstream view rebuilt) has no comment any more and is rebuilt.
-#}

{% macro view_fingerprint(sql) -%}
    {%- set parts = [sql, model.description, tojson(model.columns), tojson(config.get('persist_docs')),
                     tojson(config.get('grants'))] -%}
    {{- 'dbt-fingerprint:' ~ local_md5(tojson(parts)) -}}
{%- endmacro %}

{% macro view_is_current(relation, fingerprint) -%}
    {%- set found = run_query(
        "select obj_description(to_regclass(" ~ dbt.string_literal(relation.include(database=false).render()) ~ "), 'pg_class')") -%}
    {%- set comment = found.rows[0][0] if found.rows else none -%}
    {{- return(comment is not none and comment.endswith(fingerprint)) -}}
{%- endmacro %}

{%- materialization view, adapter='postgres' -%}

  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set fingerprint = view_fingerprint(sql) -%}
  {#- the project-wide statistics hook (D48) does nothing on a view: not a hook here -#}
  {%- set own_post_hooks = post_hooks | rejectattr('sql', 'equalto', '{{ analyze_index_columns() }}') | list -%}
  {%- set has_hooks = (pre_hooks | length) > 0 or (own_post_hooks | length) > 0 -%}
  {%- if execute and not has_hooks and not should_full_refresh() and view_is_current(target_relation, fingerprint) -%}
    {% call statement('main') -%}
      select 'view unchanged' as status
    {%- endcall %}
    {#- leftovers of a run killed between its commit and its cleanup (from dbt's cache: no query) -#}
    {{ drop_relation_if_exists(load_cached_relation(make_intermediate_relation(target_relation))) }}
    {{ drop_relation_if_exists(load_cached_relation(make_backup_relation(target_relation, 'view'))) }}
    {{ adapter.commit() }}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set intermediate_relation =  make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type = 'view' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}
  {% set grant_config = config.get('grants') %}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {{ get_create_view_as_sql(intermediate_relation, sql) }}
  {%- endcall %}

  {% if existing_relation is not none %}
    {% set existing_relation = load_cached_relation(existing_relation) %}
    {% if existing_relation is not none %}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
    {% endif %}
  {% endif %}
  {{ adapter.rename_relation(intermediate_relation, target_relation) }}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}

  {% do persist_docs(target_relation, model) %}
  {#- the fingerprint goes last in the relation comment, in the same transaction as the view -#}
  {%- set described = model.description if (config.persist_relation_docs() and model.description) else '' -%}
  {% call statement('fingerprint') -%}
    {{ alter_relation_comment(target_relation, (described ~ '\n\n' if described else '') ~ fingerprint) }}
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {{ adapter.commit() }}

  {{ drop_relation_if_exists(backup_relation) }}

  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}
