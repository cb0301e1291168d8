-- Outreach: the outbox (ledger), why-not-sent, opt-outs, call lists and outcomes, campaigns.

-- Every message is planned here, with its idempotency key, before any HTTP call.
create table if not exists outreach.message_ledger (
    idempotency_key  text primary key,      -- trigger|campaign + customer + channel + date; never a run id
    message_type     text not null,         -- payment_reminder, shipment_notice, cadence_d7, campaign, ...
    message_class    text not null check (message_class in ('transactional', 'marketing')),
    channel          text not null check (channel in ('sms', 'email', 'webhook')),
    customer_id      text not null,
    recipient        text not null,         -- E.164 phone or e-mail (PII: crm_ops only)
    template         text not null,
    params           jsonb not null default '{}'::jsonb,
    body             text,                  -- rendered text (what the customer reads)
    campaign         text,
    order_key        text,
    as_of_date       date not null,         -- the business day that planned it
    send_after       timestamptz not null,  -- quiet hours / deferral
    expires_at       timestamptz not null,  -- not sent by then: cancelled, never sent late
    status           text not null default 'pending'
                     check (status in ('pending', 'sending', 'accepted', 'failed', 'unknown', 'cancelled')),
    attempts         integer not null default 0,
    gateway          text,
    gateway_batch    text,                  -- e.g. Aliyun OutId of the batch call
    gateway_ref      text,                  -- BizId / X-Message-Id
    error            text,
    planned_at       timestamptz not null default now(),
    sent_at          timestamptz,
    updated_at       timestamptz not null default now()
);
create index if not exists message_ledger_status on outreach.message_ledger (status, send_after);
create index if not exists message_ledger_customer on outreach.message_ledger (customer_id, channel, as_of_date);

-- Every message that was considered and not sent, with the rule that stopped it.
create table if not exists outreach.suppressions (
    idempotency_key  text not null,
    as_of_date       date not null,
    message_type     text not null,
    channel          text not null,
    customer_id      text not null,
    campaign         text,
    rule             text not null,         -- opted_out, frequency_cap, quiet_hours_dropped, missing_placeholder, ...
    detail           text,
    created_at       timestamptz not null default now(),
    primary key (idempotency_key, rule)
);
create index if not exists suppressions_day on outreach.suppressions (as_of_date, rule);

-- Opt-outs are absolute per channel (R13); matched by customer or by contact.
create table if not exists outreach.optouts (
    optout_id        bigserial primary key,
    channel          text not null check (channel in ('sms', 'email', 'webhook', 'phone', 'all')),
    customer_id      text,
    contact          text,                  -- E.164 phone or lower-cased e-mail
    source           text not null,         -- call_outcome, td_reply, cli, platform
    reason           text,
    created_at       timestamptz not null default now(),
    check (customer_id is not null or contact is not null)
);
create unique index if not exists optouts_unique
    on outreach.optouts (channel, coalesce(customer_id, ''), coalesce(contact, ''));

-- Who was put on which call list (R7), so second callbacks and reruns are exact.
create table if not exists outreach.call_list_entries (
    list_date        date not null,
    customer_id      text not null,
    call_round       smallint not null,     -- 1 = 15 days after purchase, 2 = 30 days after an unresolved first
    order_key        text not null,
    agent            text not null,
    priority_reason  text not null,         -- all_fit | order_value | good_rating_lukewarm_review | random_sample
    priority_rank    integer not null,
    primary key (list_date, customer_id, call_round)
);

-- Filled call sheets read back (R8); feed the golden record, opt-outs and next lists.
create table if not exists outreach.call_outcomes (
    list_date        date not null,
    customer_id      text not null,
    call_round       smallint not null,
    agent            text,
    reached          boolean,
    resolved         boolean,
    birthday         date,
    gender           text,
    preferences      text,
    tags             text,
    opt_out          boolean not null default false,
    notes            text,
    source_file      text not null,
    imported_at      timestamptz not null default now(),
    primary key (list_date, customer_id, call_round)
);

-- Campaign assignment: treated or hold-out, fixed once decided (R22).
create table if not exists outreach.campaign_assignments (
    campaign         text not null,
    customer_id      text not null,
    assigned_group   text not null check (assigned_group in ('treatment', 'holdout')),
    as_of_date       date not null,
    assigned_at      timestamptz not null default now(),
    primary key (campaign, customer_id)
);

-- Channel budgets of campaigns (R21), checked again at the exit by GX.
create table if not exists outreach.campaign_budgets (
    campaign     text not null,
    channel      text not null,
    budget       integer not null check (budget >= 0),
    primary key (campaign, channel)
);

-- Per-day run facts the report and the demo summary read.
create table if not exists ops.run_log (
    as_of_date   date not null,
    step         text not null,
    facts        jsonb not null,
    recorded_at  timestamptz not null default now(),
    primary key (as_of_date, step)
);
