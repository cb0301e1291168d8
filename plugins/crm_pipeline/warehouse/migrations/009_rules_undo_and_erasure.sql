-- Manual identity rules can be undone (crm identity undo RULE_ID): the rule stays, inactive,
-- with when and why; the identity models read active rules only.
alter table ops.identity_rules add column if not exists deactivated_at timestamptz;
alter table ops.identity_rules add column if not exists deactivation_reason text;

-- Erasure tombstones (crm erase): no personal data, only what lets a later extraction of the
-- same orders be masked on landing, and an audit of what was done and why.
create table if not exists ops.erasures (
    erasure_id         bigserial primary key,
    requested_at       timestamptz not null default now(),
    reason             text,
    identifier_hashes  text[] not null default '{}',   -- sha256 of each phone (E.164) and e-mail (lower case)
    customer_ids       text[] not null default '{}',   -- pseudonymous ids the person had
    orders             integer not null default 0,
    salt               text not null                   -- pseudonyms of the person's buyer ids: the same on re-landing
);
create table if not exists ops.erased_orders (
    platform    text not null,
    shop_id     text not null,
    order_id    text not null,
    erasure_id  bigint not null references ops.erasures (erasure_id),
    primary key (platform, shop_id, order_id)
);
