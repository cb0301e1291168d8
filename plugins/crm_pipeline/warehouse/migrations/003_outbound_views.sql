-- What leaves the pipeline, as GX sees it (expectations/: checkpoint "outbound").
-- The checks are computed from the warehouse, independently of the planner.

create or replace view outreach.v_outbound_pending as
select
    l.idempotency_key,
    l.message_type,
    l.message_class,
    l.channel,
    l.customer_id,
    l.recipient,
    l.campaign,
    l.send_after,
    exists (
        select 1 from outreach.optouts o
        where o.channel in (l.channel, 'all')
          and (o.customer_id = l.customer_id or o.contact = l.recipient)
          and (l.message_class = 'marketing'
               or coalesce((select (facts ->> 'transactional_respects_optout')::boolean
                            from ops.run_log where step = 'policy' order by recorded_at desc limit 1), true))
    ) as opted_out,
    case when l.campaign is null then false else (
        select count(*) from outreach.message_ledger x
        where x.campaign = l.campaign and x.channel = l.channel and x.status <> 'cancelled'
    ) > coalesce((select b.budget from outreach.campaign_budgets b
                  where b.campaign = l.campaign and b.channel = l.channel), 2147483647)
    end as over_budget,
    l.message_class = 'marketing' and ((
        select count(*) from outreach.message_ledger x
        where x.customer_id = l.customer_id
          and x.idempotency_key <> l.idempotency_key
          and x.message_class = 'marketing'
          and x.status in ('pending', 'sending', 'accepted', 'unknown')
          and abs(extract(epoch from x.send_after - l.send_after)) < 86400 * coalesce(
                (select (facts ->> 'overall_cap_days')::numeric
                 from ops.run_log where step = 'policy' order by recorded_at desc limit 1), 2)
    ) >= coalesce((select (facts ->> 'overall_cap_max')::int
                   from ops.run_log where step = 'policy' order by recorded_at desc limit 1), 1)
    ) as over_frequency_cap
from outreach.message_ledger as l
where l.status = 'pending';

create or replace view outreach.v_call_list_latest as
select
    e.*,
    exists (
        select 1 from outreach.optouts o
        where o.channel in ('phone', 'all') and o.customer_id = e.customer_id
    ) as opted_out
from outreach.call_list_entries as e
where e.list_date = (select max(list_date) from outreach.call_list_entries);
