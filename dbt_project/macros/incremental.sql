{#-
  Incremental reads straight from the raw layer.

  The staging views compute every column from the jsonb payload. Filtering a
  view by "order_key in (changed keys)" makes Postgres evaluate those
  expressions for every landed row before the filter (18 s for 1M versions),
  so the incremental paths below start from the raw tables' loaded_at index and
  reach the staging rows of the changed orders only, by primary key.
-#}

{% macro raw_order_table(platform, versions=false) -%}
    {%- set tables = {'taobao': 'taobao_trades', 'jd': 'jd_orders', 'shopify': 'shopify_orders',
                      'woocommerce': 'woocommerce_orders', 'youzan': 'youzan_orders', 'intake': 'intake_orders'} -%}
    {{- source('raw', tables[platform] ~ ('_versions' if versions else '')) -}}
{%- endmacro %}

{#- dbt infers dependencies at parse time, when is_incremental() is false:
    declare what the incremental branch reads. -#}
{% macro depends_on_raw_orders(versions=false) -%}
{% for p in order_platforms() %}
-- depends_on: {{ raw_order_table(p, versions) }}
{%- if versions %}
-- depends_on: {{ ref('stg_' ~ p ~ '__order_versions') }}
{%- endif %}
{%- endfor %}
{%- endmacro %}

{#- Every landed version of the orders that got a new version after `since` (a
    SQL timestamptz expression): changed keys from the raw loaded_at index, then
    the staging rows of those keys one by one (offset 0 keeps the view from
    being flattened into a full scan). -#}
{% macro order_versions_changed_since(platform, since) -%}
    select v.*
    from (
        select distinct shop_id, order_id
        from {{ raw_order_table(platform, versions=true) }}
        where loaded_at > {{ since }}
    ) as changed
    cross join lateral (
        select * from {{ ref('stg_' ~ platform ~ '__order_versions') }} as s
        where s.shop_id = changed.shop_id and s.order_id = changed.order_id
        offset 0
    ) as v
{%- endmacro %}

{#- Line items of the current version of the orders int_orders (re)wrote after
    `since` (its modeled_at stamp), from the raw table by primary key. -#}
{% macro order_items_of_orders_modeled_since(platform, since) -%}
    {%- set relation -%}
    (select r.* from {{ raw_order_table(platform) }} as r
     where (r.shop_id, r.order_id) in (
         select shop_id, order_id from {{ ref('int_orders') }}
         where platform = '{{ platform }}' and modeled_at > {{ since }}))
    {%- endset -%}
    {{ order_item_rows(platform, relation) }}
{%- endmacro %}

{#- Whether the model's existing table has `column` (a table built before the
    column was added is upgraded by on_schema_change, and rebuilt once where the
    column is a watermark). -#}
{% macro this_has_column(column) -%}
    {{- return(relation_has_column(this, column)) -}}
{%- endmacro %}

{#- Whether `relation` (this model's table or another model's) has `column`. -#}
{% macro relation_has_column(relation, column) -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {{- return(column in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list)) -}}
{%- endmacro %}

{#- Where an incremental model picks up: the newest `column` already in the
    model minus the lookback, as a constant (a literal lets Postgres estimate
    the changed rows from the loaded_at statistics and use the index; a
    subquery is estimated at a third of the table and scanned in full).
    lookback=false for a watermark the pipeline stamps itself (modeled_at: dbt
    runs one after another, so nothing commits late). A model built before the
    column existed starts from the beginning. -#}
{% macro incremental_since(column, lookback=true) -%}
    {%- if execute and is_incremental()
           and this_has_column(column) -%}
        {%- set sql -%}
            select extract(epoch from coalesce(max({{ column }}), timestamptz '1900-01-01')
                                      - interval '{{ var("incremental_lookback_days") if lookback else 0 }} days')::text
            from {{ this }}
        {%- endset -%}
        {%- set epoch = run_query(sql).columns[0].values()[0] -%}
        to_timestamp({{ epoch }})
    {%- else -%}
        timestamptz '1900-01-01'
    {%- endif -%}
{%- endmacro %}

{#- The run's stamp on the rows an incremental model (re)writes. -#}
{% macro modeled_at() -%}
    cast('{{ run_started_at }}' as timestamptz)
{%- endmacro %}

{#- Identity nodes touched by the orders int_orders (re)wrote after `since` (its
    modeled_at stamp; int_orders rewrites only orders whose row changed, so the
    raw layer's lookback does not reach the identity models): each order's node;
    the per-order node it had while it carried no buyer id (an order that later
    gains one moves off that node, which must be rebuilt or dropped); and the node
    fct_orders still shows for it, from the previous run (an order whose buyer id
    changed leaves that node). fct_orders is built after the identity models, so
    it is read directly, not by ref (that would be a cycle). -#}
{% macro identity_nodes_touched_since(since) -%}
    {%- set previous = {'relation': none} -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name == 'fct_orders' -%}
            {%- do previous.update({'relation': adapter.get_relation(node.database, node.schema, node.alias)}) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set previous = previous.relation -%}
    select node_key from {{ ref('int_orders') }} where modeled_at > {{ since }}
    union
    select platform || ':' || shop_id || ':order:' || order_id from {{ ref('int_orders') }} where modeled_at > {{ since }}
    {%- if previous is not none %}
    union
    select f.node_key from {{ previous }} as f
    where f.order_key in (select order_key from {{ ref('int_orders') }} where modeled_at > {{ since }})
    {%- endif %}
{%- endmacro %}

{#- Before an incremental rebuild keyed by node (strategy append): remove the rows
    of every node it rebuilds. A node that rebuilds to no rows (no order left, or no
    identifier left) is gone with them, which delete+insert (deleting only the keys
    it inserts) missed. Runs inside the model's transaction; the watermark is read
    before anything is deleted. -#}
{#- The rows of the nodes an identity node model (keyed by node, stamped
    last_modeled_at) rebuilds in this run. -#}
{% macro touched_nodes_filter() -%}
    node_key in (select node_key from {{ touched_nodes_table() }})
{%- endmacro %}

{% macro touched_nodes_table() -%}
    {{- this.identifier ~ '__touched' -}}
{%- endmacro %}

{#- pre_hook (the first) of the identity node models, incremental runs: the nodes the
    model rebuilds, once, as an analyzed temp table (dropped at commit) that its delete
    and its select read by the node_key index (D48). The filter used to be an array of
    the subquery, computed twice per model and taken by the planner for ten rows. -#}
{% macro touched_nodes_scope() -%}
    {%- if is_incremental() -%}
    {% call night_set(touched_nodes_table()) -%}
    {{ identity_nodes_touched_since(incremental_since('last_modeled_at', lookback=false)) }}
    {%- endcall %};
    {{ prefer_index_probes() }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro delete_touched_nodes() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where {{ touched_nodes_filter() }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- customer_identities, incremental by node: the nodes whose rows may differ from
    what the table holds, kept in a temp table for the model's select. Per node,
    against the account row the table holds for it: the node models rebuilt it
    since (their last_modeled_at is the run that rebuilt the node, later than the
    row's modeled_at), it belongs to another customer now, or it is new or gone.
    And every node holding an identifier whose status or holders changed (compared
    with identifier_status, so a new split rule, junk seed or holder cap reaches
    every row it blocks), among the identifiers identifier_status rewrote since this
    table last wrote (D47). A table from before the modeled_at stamp: every node. -#}
{% macro customer_identities_affected() -%}
    {%- if is_incremental() -%}
    create temporary table customer_identities__affected on commit drop as
    {%- if this_has_column('modeled_at') %}
    select coalesce(t.node_key, c.node_key) as node_key
    from (
        select node_key, customer_id, modeled_at from {{ this }} where identifier_type = 'platform_account'
    ) as t
    full join (
        select r.node_key, r.customer_id, n.last_modeled_at
        from {{ ref('int_identity__resolved') }} as r
        inner join {{ ref('int_identity__nodes') }} as n on n.node_key = r.node_key
    ) as c on c.node_key = t.node_key
    where t.node_key is null or c.node_key is null
       or t.customer_id <> c.customer_id or c.last_modeled_at > t.modeled_at
    union
    select t.node_key
    from {{ this }} as t
    inner join {{ ref('int_identity__identifier_status') }} as s
        on s.identifier_type = t.identifier_type and s.identifier_value = t.identifier_value
    where t.identifier_type <> 'platform_account'
      and (s.status <> t.link_status or s.holders <> t.identifier_holders)
      {%- if relation_has_column(ref('int_identity__identifier_status'), 'modeled_at') %}
      -- only the identifiers the status build rewrote since this table last wrote (D47)
      and s.modeled_at > {{ incremental_since('modeled_at', lookback=false) }}
      {%- endif %}
    {%- else %}
    select node_key from {{ this }} union select node_key from {{ ref('int_identity__nodes') }}
    {%- endif -%}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{% macro customer_identities_delete_affected() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where node_key in (select node_key from customer_identities__affected)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- fct_orders' identity record (D46): for every identity node, the customer its
    orders carry in fct_orders. After any successful build of fct_orders every row
    carries its node's customer in int_identity__resolved, so the record follows the
    resolution, in the same transaction as the rows. The next run then finds moved
    nodes by comparing the record with the new resolution (one join over nodes)
    instead of every order with it: a node whose customer differs from its record
    (or that has none) has rows that do too, and no other node has. A run that fails
    rolls both back. -#}
{% macro fct_orders_identity_applied(schema=none) -%}
    {{ return(side_table(schema or ref('int_identity__resolved').schema, 'fct_orders_identity_applied')) }}
{%- endmacro %}

{#- pre_hook of fct_orders, in the build's transaction. Temp tables for the model and
    the post-hooks:
      fct_orders__changed  the orders it rewrites: incremental, those int_orders
                           rewrote since this model last ran (its stamp, no lookback)
                           and those of every moved node (by the int_orders node_key
                           index; an order that changed node is in the first branch);
                           a whole build, one null key;
      fct_orders__moved    the nodes whose record entry is rewritten;
      fct_orders__left     the nodes the rewritten orders carried before, of which
                           those with no order left leave the record.
    A whole build, or a table from before the record (every order is compared once),
    rewrites the whole record. -#}
{% macro fct_orders_changed_before() -%}
    {%- set applied = fct_orders_identity_applied() -%}
    {%- set resolved = ref('int_identity__resolved') -%}
    {%- set incremental = is_incremental() -%}
    {%- set exists = side_table_exists(applied) -%}
    {%- set recorded = incremental and exists -%}
    -- applied_at: when (the run's stamp) a node's orders last took its customer;
    -- fct_order_items compares the orders of the nodes applied since it last ran (D48)
    {%- if exists and not relation_has_column(applied, 'applied_at') %}
    -- a record from before the stamp: every node counts as applied now (compared once)
    alter table {{ applied }} add column applied_at timestamptz;
    update {{ applied }} set applied_at = {{ modeled_at() }};
    {%- endif %}
    create table if not exists {{ applied }} (
        node_key text primary key, customer_id text not null, applied_at timestamptz);
    -- the night's nodes and orders are joined as analyzed sets, by index (D48): an
    -- array of them was taken for ten rows and met a nested loop over every pair
    -- (fct_orders: 12.5M comparisons for 5,000 orders at 1M, growing with a night's square)
    {% call night_set('fct_orders__moved') -%}
    {%- if recorded %}
    select i.node_key
    from {{ resolved }} as i
    left join {{ applied }} as a on a.node_key = i.node_key
    where a.customer_id is distinct from i.customer_id
    {%- else %}
    select node_key from {{ resolved }}
    {%- endif %}
    {%- endcall %};
    {{ prefer_index_probes() }};
    {% call night_set('fct_orders__changed') -%}
    {%- if recorded %}
    select order_key from {{ ref('int_orders') }}
    where modeled_at > {{ incremental_since('modeled_at', lookback=false) }}
    union
    select order_key from {{ ref('int_orders') }}
    where node_key in (select node_key from fct_orders__moved)
    {%- elif incremental %}
    select order_key from {{ ref('int_orders') }}
    where modeled_at > {{ incremental_since('modeled_at', lookback=false) }}
    union
    select f.order_key
    from {{ this }} as f
    inner join {{ resolved }} as i on i.node_key = f.node_key
    where i.customer_id <> f.customer_id
    {%- else %}
    select null::text as order_key
    {%- endif %}
    {%- endcall %};
    create temporary table fct_orders__left on commit drop as
    {%- if recorded %}
    select distinct node_key from {{ this }} where order_key in (select order_key from fct_orders__changed)
    {%- else %}
    select node_key from {{ applied }}
    {%- endif %}
{%- endmacro %}

{#- post_hook of fct_orders: the record follows the resolution for the moved nodes and
    drops the nodes no order carries any more. -#}
{% macro fct_orders_identity_record() -%}
    {%- set applied = fct_orders_identity_applied() -%}
    insert into {{ applied }} (node_key, customer_id, applied_at)
    select i.node_key, i.customer_id, {{ modeled_at() }}
    from {{ ref('int_identity__resolved') }} as i
    where i.node_key in (select node_key from fct_orders__moved)
    on conflict (node_key) do update set customer_id = excluded.customer_id, applied_at = excluded.applied_at;
    delete from {{ applied }} as a
    where a.node_key in (select node_key from fct_orders__left)
      and not exists (select 1 from {{ ref('int_orders') }} as o where o.node_key = a.node_key)
{%- endmacro %}

{#- fct_orders' change log (D46): the orders each build rewrote (a null key: the
    whole table), appended in the build's transaction. int_customer_increments
    compares only the orders logged since the entry it read last, and removes
    what it has read. -#}
{% macro fct_orders_changes(schema) -%}
    {{ return(side_table(schema, 'fct_orders_changes')) }}
{%- endmacro %}

{% macro fct_orders_changes_record() -%}
    {%- set log = fct_orders_changes(ref('int_orders').schema) -%}
    create table if not exists {{ log }} (
        seq bigint generated always as identity primary key, order_key text, logged_at timestamptz not null default now());
    insert into {{ log }} (order_key) select order_key from fct_orders__changed
{%- endmacro %}

{#- post_hook of int_customer_increments: drop the fct_orders_changes entries this
    generation has seen (same transaction as the generation). -#}
{% macro fct_orders_changes_read() -%}
    {%- set log = fct_orders_changes(this.schema) -%}
    {%- if side_table_exists(log) -%}
    delete from {{ log }}
    where seq <= (select fct_orders_change_seq from {{ this }} where is_marker order by seq desc limit 1)
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- A set a hook's night is joined with (customers, nodes, orders), as a temp table
    dropped at commit and analyzed (D47, D48). The query is the call block's body. An
    array or an unanalyzed set is guessed at a few rows whatever the night holds, and
    the planner then compared every pair of two such sets (47 s for one model at 5M). -#}
{% macro night_set(name) -%}
    create temporary table {{ name }} on commit drop as
    {{ caller() }};
    analyze {{ name }}
{%- endmacro %}

{#- With a night_set the tables are probed by index: they are read in place (cached),
    so a probe costs what its page costs, not a disk seek. This transaction only (D47). -#}
{% macro prefer_index_probes() -%}
    set local random_page_cost = 1.1
{%- endmacro %}

{#- A table the hooks keep beside the models (a log, a record), in `schema`. -#}
{% macro side_table(schema, identifier) -%}
    {{ return(api.Relation.create(database=this.database, schema=schema, identifier=identifier)) }}
{%- endmacro %}

{#- Whether a table the hooks create beside the models exists. Asked of the database:
    dbt's relation cache, filled when the run starts, does not see a table a hook
    created earlier in the same run. -#}
{% macro side_table_exists(relation) -%}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {{ return(run_query("select to_regclass('" ~ relation.schema ~ "." ~ relation.identifier ~ "') is not null")
              .columns[0].values()[0]) }}
{%- endmacro %}

{#- pre_hook of fct_order_items (after customer_increment_scope): the orders whose lines
    it rewrites, as an analyzed temp table (D48). Those are the lines int_order_items
    (re)wrote since this model last ran (its stamp, no lookback): every order int_orders
    rewrote, so every change of status, payment or dates. And the orders whose customer
    differs from fct_orders': an order changes customer without being rewritten by
    int_orders only when its node moves (a merge or split), and fct_orders' identity
    record stamps each node it applies (`applied_at`, the run's stamp), so those are
    the orders of the nodes applied since this model last ran (a whole fct_orders build
    applies every node). Without the record's stamp (a table from before it), the orders
    of the night's customers are compared instead (int_customer_increments lists both
    customers of a moved order, D23). Both also compare the orders from the as-of day
    on, which the customers' log (orders as of the day) cannot see. -#}
{% macro fct_order_items_changed() -%}
    {%- if is_incremental() -%}
    {%- set since = incremental_since('modeled_at', lookback=false) -%}
    {%- set applied = fct_orders_identity_applied(ref('int_order_items').schema) -%}
    {%- set by_node = side_table_exists(applied) and relation_has_column(applied, 'applied_at') -%}
    {% call night_set('fct_order_items__changed') -%}
    select order_key from {{ ref('int_order_items') }}
    where modeled_at > {{ since }}
    {%- if by_node %}
    union
    select t.order_key
    from {{ ref('int_orders') }} as n
    inner join {{ ref('fct_orders') }} as o on o.order_key = n.order_key
    inner join {{ this }} as t on t.order_key = o.order_key
    where n.node_key in (select node_key from {{ applied }} where applied_at is null or applied_at > {{ since }})
      and t.customer_id is distinct from o.customer_id
    {%- endif %}
    {%- for scope in ([] if by_node else [customer_increment_filter('o.customer_id')])
                     + ['o.order_date >= ' ~ as_of_date() ~ ' - 1'] %}
    union
    select t.order_key
    from {{ ref('fct_orders') }} as o
    inner join {{ this }} as t on t.order_key = o.order_key
    where {{ scope }}
      and (t.customer_id, t.is_paid, t.status, t.order_date, t.paid_at)
          is distinct from (o.customer_id, o.is_paid, o.status, o.order_date, o.paid_at)
    {%- endfor %}
    {%- endcall %};
    {{ prefer_index_probes() }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
