-- A day's call list is issued once (issue 32): the rows as the agents' sheets show
-- them, so a rerun of the day keeps the list and its files (it rewrites only a file
-- that is missing, from these rows), and `crm calls list --reissue` adds a version.
create table if not exists outreach.call_lists (
    list_date    date not null,
    version      smallint not null check (version >= 1),
    issued_at    timestamptz not null default now(),
    entries      integer not null,
    fingerprint  text not null,
    rows         jsonb,                 -- null: issued before rows were kept (files are not rewritten)
    primary key (list_date, version)
);

-- lists written before this migration count as issued: a rerun keeps them
insert into outreach.call_lists (list_date, version, entries, fingerprint, rows)
select list_date, 1, count(*), 'before-030', null
from outreach.call_list_entries
group by list_date
on conflict do nothing;

-- The outbound check (no one on the list asked not to be called, R13) judges a list
-- by the opt-outs known when it was issued: an opt-out an agent records from that
-- very list, or one that arrives after it went out, does not fail a rerun of the day.
create or replace view outreach.v_call_list_latest as
select
    e.*,
    exists (  -- opt-outs resolved to whoever they are about now (migration 008)
        select 1 from outreach.optout_blocks() o
        where o.channel in ('phone', 'all') and o.customer_id = e.customer_id
          and o.created_at <= coalesce(
              (select max(l.issued_at) from outreach.call_lists l where l.list_date = e.list_date), now())
    ) as opted_out
from outreach.call_list_entries as e
where e.list_date = (select max(list_date) from outreach.call_list_entries);
