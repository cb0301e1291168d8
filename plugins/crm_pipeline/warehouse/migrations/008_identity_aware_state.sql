-- What a customer told us follows the person, not today's customer id (issue 31).
--
-- A customer id is derived from the customer's identity nodes and changes when a customer
-- merges with an older node or is split. Opt-outs keep what they were given for: the
-- contact (a TD reply's phone, an unsubscribed e-mail) or the customer id an agent or a
-- `crm optout add --customer` named. These functions resolve them, each time they are
-- asked, against the identity marts as they are now:
--   * by contact: every customer who holds that phone or e-mail now (R13: an opt-out given
--     by phone stays with whoever holds that phone);
--   * by customer id: every customer who now holds a node that was ever under that id — the
--     customer it merged into, both halves of a split (when in doubt, do not message);
-- and block, for each of those customers, their id, the ids they had before (a message
-- planned under an old id) and every phone and e-mail they hold (a TD reply from the second
-- phone stops marketing to the first).
--
-- An erased person's opt-outs stay in force as 'sha256:<hex of the contact>' (crm erase).
--
-- Functions, not views: a view over marts.* would be dropped by dbt's table swaps. They
-- read the marts by name at run time and fall back to the opt-outs as given where the
-- marts do not exist yet (a new warehouse before its first transform).

create or replace function outreach.customer_aliases()
returns table (customer_id text, alias_id text)
language plpgsql stable as $fn$
-- current customer id -> every id it answers to (itself, and the ids its nodes were under)
begin
    if to_regclass('marts.customer_identities') is null then
        return;
    end if;
    if to_regclass('marts.identity_changes') is null then
        return query select distinct ci.customer_id, ci.customer_id from marts.customer_identities ci;
        return;
    end if;
    return query
    select distinct ci.customer_id, ci.customer_id from marts.customer_identities ci
    union
    select ci.customer_id, h.old_id
    from marts.customer_identities ci
    join (select ic.node_key, ic.previous_customer_id as old_id from marts.identity_changes ic
          union select ic.node_key, ic.customer_id from marts.identity_changes ic) h on h.node_key = ci.node_key
    where ci.identifier_type = 'platform_account';
end
$fn$;

create or replace function outreach.optout_blocks()
returns table (channel text, customer_id text, contact text, created_at timestamptz)
language plpgsql stable as $fn$
begin
    if to_regclass('marts.customer_identities') is null then
        return query select o.channel, o.customer_id, o.contact, o.created_at from outreach.optouts o;
        return;
    end if;
    return query
    with aliases as (
        select a.customer_id, a.alias_id from outreach.customer_aliases() a
    ),
    hashed as (  -- an erased person's contacts, kept as hashes: whoever holds one again
        select o.channel, o.contact, o.created_at from outreach.optouts o where o.contact like 'sha256:%'
    ),
    blocked as (  -- the current customers each opt-out is about
        select o.channel, ci.customer_id, o.created_at
        from outreach.optouts o
        join marts.customer_identities ci
          on o.contact is not null and ci.identifier_type in ('phone', 'email') and ci.identifier_value = o.contact
        union
        select h.channel, ci.customer_id, h.created_at
        from hashed h
        join marts.customer_identities ci
          on ci.identifier_type in ('phone', 'email')
         and 'sha256:' || encode(sha256(convert_to(ci.identifier_value, 'UTF8')), 'hex') = h.contact
        union
        select o.channel, a.customer_id, o.created_at
        from outreach.optouts o
        join aliases a on o.customer_id is not null and a.alias_id = o.customer_id
    )
    select o.channel, o.customer_id, o.contact, o.created_at from outreach.optouts o   -- as given
    union
    select b.channel, a.alias_id, null::text, b.created_at                              -- their ids, old and new
    from blocked b join aliases a on a.customer_id = b.customer_id
    union
    select b.channel, null::text, ci.identifier_value, b.created_at                     -- every phone and e-mail
    from blocked b
    join marts.customer_identities ci
      on ci.customer_id = b.customer_id and ci.identifier_type in ('phone', 'email');
end
$fn$;

-- the outbound check and the pusher's opt-out watch ask the resolved opt-outs
create or replace view outreach.v_outbound_pending as
with blocks as materialized (
    select * from outreach.optout_blocks()
),
policy as materialized (
    select facts from ops.run_log where step = 'policy' order by recorded_at desc limit 1
)
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
        select 1 from blocks o
        where o.channel in (l.channel, 'all')
          and (o.customer_id = l.customer_id or o.contact = l.recipient
               or o.contact = 'sha256:' || encode(sha256(convert_to(l.recipient, 'UTF8')), 'hex'))
          and (l.message_class = 'marketing'
               or coalesce((select (facts ->> 'transactional_respects_optout')::boolean from policy), true))
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
                (select (facts ->> 'overall_cap_days')::numeric from policy), 2)
    ) >= coalesce((select (facts ->> 'overall_cap_max')::int from policy), 1)
    ) as over_frequency_cap
from outreach.message_ledger as l
where l.status = 'pending';
