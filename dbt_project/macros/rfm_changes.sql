{#-
  customer_rfm_changes keeps on each row the day a later row of the same customer
  superseded it (`superseded_on`, null on a customer's latest row). A night finds
  every customer's previous segment among the rows not superseded before its day,
  through the index on superseded_on, instead of sorting the whole history, which
  grows by every day's moves (DECISIONLOG D29). Any day may be (re)run in any order.
-#}

{#- Before the day's rows are replaced: a table from before this column gets it
    (with its index, and every row's value from the history); the rows the day's
    old rows superseded get back what they had (a rerun of the day). -#}
{% macro rfm_changes_before() -%}
    {%- if is_incremental() -%}
        {%- if not this_has_column('superseded_on') -%}
            alter table {{ this }} add column superseded_on date;
            update {{ this }} as r set superseded_on = n.next_date
            from (select customer_id, as_of_date,
                         lead(as_of_date) over (partition by customer_id order by as_of_date) as next_date
                  from {{ this }}) as n
            where n.customer_id = r.customer_id and n.as_of_date = r.as_of_date and n.next_date is not null;
            create index if not exists {{ this.identifier }}__superseded_on on {{ this }} (superseded_on);
        {%- endif %}
        update {{ this }} as r set superseded_on = d.superseded_on
        from {{ this }} as d
        where d.as_of_date = {{ as_of_date() }} and d.customer_id = r.customer_id
          and r.superseded_on = {{ as_of_date() }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- After: each customer with a row on the day supersedes its latest earlier row,
    and the day's row is superseded by the customer's next later row, if a later
    day was already run. -#}
{% macro rfm_changes_after() -%}
    {%- if is_incremental() -%}
        update {{ this }} as r set superseded_on = {{ as_of_date() }}
        from {{ this }} as d
        where d.as_of_date = {{ as_of_date() }} and r.customer_id = d.customer_id
          and r.as_of_date < {{ as_of_date() }}
          and (r.superseded_on is null or r.superseded_on > {{ as_of_date() }});
        update {{ this }} as d set superseded_on = (
            select min(n.as_of_date) from {{ this }} as n
            where n.customer_id = d.customer_id and n.as_of_date > {{ as_of_date() }})
        where d.as_of_date = {{ as_of_date() }}
          and exists (select 1 from {{ this }} where as_of_date > {{ as_of_date() }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
