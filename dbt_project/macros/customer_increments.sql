{#-
  Customer-scoped incremental builds (DECISIONLOG D21).

  int_customer_orders, int_customer_paid_orders, int_customer_profile (D23),
  customer_lifecycle_history, points_ledger, int_customer_totals (D37) and
  int_customer_lifecycle (D46) are computed per customer
  (every window partitions by customer_id) and "as of" the run's business
  day. A nightly run rebuilds the rows of the customers whose inputs changed
  and keeps everyone else's:

  * int_customer_increments (a log) records, per run, a generation: the
    customers whose int_customer_orders rows differ from what they should be
    now (new, changed, refunded or re-identified orders, an order crossing the
    as-of boundary) plus, when the as-of day moved, the customers with a
    lifecycle event (at risk, churned) between the old and the new day's end,
    or a paid order entering or leaving the RFM or tier window (D37).
  * each consumer remembers the last generation it applied (in
    customer_increments_applied, written in the same transaction as its rows)
    and rebuilds the customers of every generation since; one that missed a
    run catches up, one whose generation left the log rebuilds everything.
  * a change of the settings or of a consumer's SQL marks a generation
    full_rebuild: every consumer then rebuilds all customers.
-#}

{%- macro customer_increment_consumers() -%}
    {{ return(['int_customer_orders', 'int_customer_paid_orders', 'int_customer_profile', 'customer_lifecycle_history',
               'points_ledger', 'int_customer_totals', 'int_customer_lifecycle']) }}
{%- endmacro %}

{#- What a generation's full_rebuild compares: every setting the consumers read
    and the consumers' own SQL (an upgrade changes the checksum). -#}
{%- macro customer_increment_settings_hash() -%}
    {%- set parts = [var('default_timezone'), var('points_per_cny'),
                     var('lifecycle_churn_days'), var('lifecycle_at_risk_days'),
                     var('lifecycle_cycle_churn_multiplier'), var('lifecycle_cycle_at_risk_multiplier'),
                     var('lifecycle_min_intervals_for_cycle'), var('lifecycle_min_cycle_days'),
                     var('lifecycle_loyal_min_orders'), tojson(var('contact_source_trust')),
                     var('rfm_window_days'), var('tier_window_days')] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') -%}
            {%- if node.resource_type == 'model' and node.name in customer_increment_consumers() -%}
                {%- do parts.append(node.name ~ ':' ~ node.checksum.checksum) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(local_md5(tojson(parts))) }}
{%- endmacro %}

{#- The columns of int_customer_orders, in order; the log compares them. -#}
{%- macro customer_order_columns() -%}
    {{ return(['customer_id', 'order_key', 'platform', 'shop_id', 'status', 'created_at', 'order_date', 'paid_at',
               'paid_date', 'amount_cny', 'is_paid_as_of', 'is_refunded_as_of', 'refunded_at', 'cost_cny',
               'category_list', 'receiver_name', 'buyer_platform_id', 'phone_e164', 'email', 'province', 'city',
               'address']) }}
{%- endmacro %}

{#- Orders as of the run's business day with their customer: int_customer_orders'
    rows, for every customer or those matching `customer_filter` (SQL). -#}
{%- macro customer_order_rows(customer_filter='true') -%}
    select
        f.customer_id,
        f.order_key,
        f.platform,
        f.shop_id,
        f.status,
        f.created_at,
        f.order_date,
        f.paid_at,
        f.paid_date,
        f.amount_cny,
        f.paid_at is not null
            and f.paid_at < {{ as_of_end() }}
            and f.status <> 'closed'
            and not (f.status = 'refunded' and coalesce(f.refunded_at, f.paid_at) < {{ as_of_end() }})
            as is_paid_as_of,
        f.status = 'refunded' and coalesce(f.refunded_at, f.paid_at) < {{ as_of_end() }} as is_refunded_as_of,
        f.refunded_at,
        f.cost_cny,
        -- text, not text[]: dbt unit tests cannot cast fixture columns to an array
        -- type on Postgres (they write `cast(null as ARRAY)`); chr(31) cannot occur in a category
        array_to_string(f.categories, chr(31)) as category_list,
        -- the contact fields dim_customers' golden record picks from (R4)
        f.receiver_name,
        f.buyer_platform_id,
        f.phone_e164,
        f.email,
        f.province,
        f.city,
        f.address
    from {{ ref('fct_orders') }} as f
    where f.created_at < {{ as_of_end() }}
      and {{ customer_filter }}
{%- endmacro %}

{%- macro customer_increments_applied_table() -%}
    {{ return(side_table(ref('int_customer_increments').schema, 'customer_increments_applied')) }}
{%- endmacro %}

{#- Decide, when a consumer is compiled, what it rebuilds: {'full': bool, 'after': seq}.
    Full on a first build or full refresh, when this consumer never recorded a
    generation, when generations since its last one have left the log (or the
    log was rebuilt), and when one of them is marked full_rebuild. -#}
{%- macro customer_increment_plan() -%}
    {%- if not execute or this is none or not is_incremental() -%}  {#- this is none in dbt unit tests -#}
        {{ return({'full': true, 'after': none}) }}
    {%- endif -%}
    {%- set applied = customer_increments_applied_table() -%}
    {%- if adapter.get_relation(applied.database, applied.schema, applied.identifier) is none -%}
        {{ return({'full': true, 'after': none}) }}
    {%- endif -%}
    {%- set log = ref('int_customer_increments') -%}
    {%- set sql -%}
        with mine as (select max(seq) as seq from {{ applied }} where model = '{{ this.identifier }}')
        select
            (select seq from mine),
            (select min(seq) from {{ log }} where is_marker),
            (select max(seq) from {{ log }} where is_marker),
            (select coalesce(bool_or(full_rebuild), false) from {{ log }}
             where is_marker and seq > coalesce((select seq from mine), 0))
    {%- endset -%}
    {%- set row = run_query(sql).rows[0] -%}
    {%- set mine, first, last, any_full = row[0], row[1], row[2], row[3] -%}
    {%- set full = mine is none or first is none or mine < first - 1 or mine > last or any_full -%}
    {{ return({'full': full, 'after': mine}) }}
{%- endmacro %}

{#- The consumer's row filter: `true` for a full rebuild, else the customers of
    every generation after the one it applied last, from the temp table
    customer_increment_scope() fills in the consumer's first pre-hook. -#}
{%- macro customer_increment_filter(column='customer_id') -%}
    {#- referenced unconditionally: dbt records the dependency when parsing, where is_incremental() is false -#}
    {%- set log = ref('int_customer_increments') -%}
    {%- set plan = customer_increment_plan() -%}
    {%- if plan.full -%}
        true
    {%- else -%}
        {{ column }} in (select customer_id from {{ customer_increment_scope_table() }})
    {%- endif -%}
{%- endmacro %}

{%- macro customer_increment_scope_table() -%}
    {{- this.identifier ~ '__customers' -}}
{%- endmacro %}

{#- pre_hook (the first) of every consumer: the customers it rebuilds, once, as an
    analyzed temp table (D47). The filter used to be `customer_id = any(array(select
    ... from the log))`: the planner cannot see an array's size and took a night's
    tens of thousands of customers for a few dozen, so two such sets were joined by
    a nested loop comparing every pair (int_customer_profile: 47 s at 5M orders for
    41k customers, 1.7 billion comparisons; it grew with the square of a night). -#}
{%- macro customer_increment_scope() -%}
    {%- set plan = customer_increment_plan() -%}
    {%- if plan.full -%}
        select 1
    {%- else -%}
        {% call night_set(customer_increment_scope_table()) -%}
        select distinct customer_id from {{ ref('int_customer_increments') }}
        where seq > {{ plan.after }} and customer_id is not null
        {%- endcall %};
        {{ prefer_index_probes() }}
    {%- endif -%}
{%- endmacro %}

{#- pre_hook: clear what is about to be rebuilt (same transaction as the insert). -#}
{%- macro customer_increment_clear() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ customer_increment_filter() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The table of generations applied. int_customer_increments creates it (its
    post-hook), before any consumer runs: consumers run in parallel threads, and two
    concurrent `create table if not exists` race (pg_type unique violation). -#}
{%- macro customer_increments_applied_create(relation=none) -%}
    create table if not exists {{ relation or customer_increments_applied_table() }} (
        model text primary key, seq bigint not null, applied_at timestamptz not null default now())
{%- endmacro %}

{#- post_hook: remember the newest generation this consumer now reflects. -#}
{%- macro customer_increment_record() -%}
    {%- set applied = customer_increments_applied_table() -%}
    {{ customer_increments_applied_create() }};
    insert into {{ applied }} (model, seq)
    select '{{ this.identifier }}', coalesce(max(seq), 0) from {{ ref('int_customer_increments') }}
    on conflict (model) do update set seq = excluded.seq, applied_at = now()
{%- endmacro %}

{#- The config every consumer shares. -#}
{%- macro customer_incremental_config() -%}
    {#- append_new_columns: a release that adds a column adds it here too; its SQL change
        marks the generation full_rebuild, so every customer's rows are rewritten with it -#}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
               'on_schema_change': 'append_new_columns',
               'pre_hook': ["{{ customer_increment_scope() }}", "{{ customer_increment_clear() }}"],
               'post_hook': ["{{ customer_increment_record() }}"]}) }}
{%- endmacro %}
