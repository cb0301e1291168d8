{#-
  int_identity__identifier_status, incremental by identifier (D47).

  An identifier's status (R3) depends on the node_identifiers rows that carry it,
  and on the junk seed, the active split rules and identity_max_holders. A night
  changes the rows of the nodes int_identity__node_identifiers rebuilt, so only
  the identifiers those nodes carry now or carried before can change their counts:
    - now: node_identifiers rows stamped since the status table last wrote
      (last_modeled_at);
    - before: node_identifiers' pre-hook logs the identifiers of the rows it
      deletes (identity_identifier_changes), in its own transaction; a whole
      build of node_identifiers, and a log that did not exist, log one null
      entry, which makes the next status build recompute every identifier.
  The global inputs reach their identifiers without a log: every identifier not
  'used' today, or held by more people than the cap, is recomputed each run, and
  so is every identifier the seed or a split rule names. That covers a junk value
  or a split rule added or removed and the cap lowered or raised. (A change to the
  hard-coded patterns in the model is a code change: run a full refresh.)
  The status build reads the log and removes what it read in its transaction.
-#}

{% macro identifier_changes(schema) -%}
    {{ return(side_table(schema, 'identity_identifier_changes')) }}
{%- endmacro %}

{#- pre_hook of int_identity__node_identifiers (replaces delete_touched_nodes there):
    the rows of every node it rebuilds are deleted, and their identifiers logged. -#}
{% macro node_identifiers_delete_touched() -%}
    {%- set log = identifier_changes(this.schema) -%}
    do $$ begin
        if to_regclass('{{ log.schema }}.{{ log.identifier }}') is null then
            create table {{ log }} (
                seq bigint generated always as identity primary key,
                identifier_type text,
                identifier_value text,
                logged_at timestamptz not null default now());
            -- what was removed before the log existed is unknown: the reader recomputes all
            insert into {{ log }} (identifier_type, identifier_value) values (null, null);
        end if;
    end $$;
    {%- if is_incremental() %}
    with gone as (
        delete from {{ this }}
        where {{ touched_nodes_filter() }}
        returning identifier_type, identifier_value
    )
    insert into {{ log }} (identifier_type, identifier_value)
    select distinct identifier_type, identifier_value from gone
    {%- else %}
    insert into {{ log }} (identifier_type, identifier_value) values (null, null)
    {%- endif %}
{%- endmacro %}

{#- pre_hook of int_identity__identifier_status: temp tables for the model and the
    post-hook, then (incremental) the affected identifiers' rows are deleted;
      identifier_status__read      the log entries this build reads (and removes);
      identifier_status__affected  the identifiers it recomputes (a null row: all). -#}
{% macro identifier_status_affected() -%}
    {%- set log = identifier_changes(ref('int_identity__node_identifiers').schema) -%}
    create temporary table identifier_status__read on commit drop as
    {%- if side_table_exists(log) %}
    select seq, identifier_type, identifier_value from {{ log }};
    {%- else %}
    select null::bigint as seq, null::text as identifier_type, null::text as identifier_value;
    {%- endif %}
    {%- if is_incremental() %}
    {% call night_set('identifier_status__affected') -%}
    {%- if this_has_column('modeled_at') %}
    select identifier_type, identifier_value from identifier_status__read
    union
    select identifier_type, identifier_value from {{ ref('int_identity__node_identifiers') }}
    where last_modeled_at > {{ incremental_since('modeled_at', lookback=false) }}
    union
    select identifier_type, identifier_value from {{ this }}
    where status <> 'used' or holders > {{ var('identity_max_holders') }}
    union
    select identifier_type, identifier_value from {{ ref('junk_identifiers') }}
    union
    select identifier_type, identifier_value from ({{ identifier_split_rules() }}) as s
    {%- else %}
    select null::text as identifier_type, null::text as identifier_value
    {%- endif %}
    {%- endcall %};
    delete from {{ this }}
    where {{ identifier_status_affected_filter() }}
    {%- endif %}
{%- endmacro %}

{#- The rows of the identifiers the pre-hook listed (all, after its null row). -#}
{% macro identifier_status_affected_filter() -%}
    (exists (select 1 from identifier_status__affected where identifier_type is null)
     or (identifier_type, identifier_value) in (
         select identifier_type, identifier_value from identifier_status__affected))
{%- endmacro %}

{#- post_hook of int_identity__identifier_status: remove the log entries it read. -#}
{% macro identifier_status_read() -%}
    {%- set log = identifier_changes(ref('int_identity__node_identifiers').schema) -%}
    {%- if side_table_exists(log) -%}
    delete from {{ log }} where seq in (select seq from identifier_status__read)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The identifiers blocked by `crm identity split phone:+86...` (active rules). -#}
{% macro identifier_split_rules() -%}
    select split_part(left_ref, ':', 1) as identifier_type,
           substr(left_ref, length(split_part(left_ref, ':', 1)) + 2) as identifier_value
    from {{ source('ops', 'identity_rules') }}
    where action = 'split' and active and split_part(left_ref, ':', 1) in ('phone', 'email', 'name_address')
{%- endmacro %}
