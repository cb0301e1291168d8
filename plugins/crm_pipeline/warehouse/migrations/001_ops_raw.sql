-- Operational schemas owned by the Python side (dbt owns staging/intermediate/marts).
create schema if not exists raw;
create schema if not exists ops;
create schema if not exists outreach;

-- One row per extraction or intake run (audit log: reruns add rows, data does not change).
create table if not exists ops.load_batches (
    batch_id        text primary key,
    platform        text not null,
    shop_id         text not null,
    mode            text not null,                  -- nightly | backfill | intraday | intake
    window_start    timestamptz,
    window_end      timestamptz,
    source          text,                           -- file path for intake, endpoint otherwise
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    status          text not null default 'running',-- running | succeeded | failed | abandoned
    pages           integer not null default 0,
    received        integer not null default 0,
    landed          integer not null default 0,     -- valid records (new or unchanged)
    new_versions    integer not null default 0,     -- records that added a version
    quarantined     integer not null default 0,
    error           text,
    constraint load_batches_balance check (status <> 'succeeded' or received = landed + quarantined)
);
create index if not exists load_batches_shop on ops.load_batches (platform, shop_id, started_at);

-- Incremental extraction position per shop (never in Airflow Variables).
create table if not exists ops.watermarks (
    platform     text not null,
    shop_id      text not null,
    watermark    timestamptz not null,              -- orders modified before this are landed
    batch_id     text not null,
    updated_at   timestamptz not null default now(),
    primary key (platform, shop_id)
);

-- Malformed records: never dropped, always explained.
create table if not exists raw.quarantine (
    quarantine_id   bigserial primary key,
    platform        text not null,
    shop_id         text not null,
    batch_id        text not null,
    record_ref      text,                           -- order id when there is one, else page/row position
    reason          text not null,
    payload         text not null,                  -- as received (may not be valid JSON)
    payload_hash    text not null,
    quarantined_at  timestamptz not null default now(),
    unique (platform, shop_id, payload_hash, reason)
);

-- Manual identity rules (crm identity link|split), read by dbt as a source.
create table if not exists ops.identity_rules (
    rule_id      bigserial primary key,
    action       text not null check (action in ('link', 'split')),
    left_ref     text not null,                     -- node key "platform:shop:buyer" or identifier "phone:+86..."
    right_ref    text,                              -- second node for link
    reason       text,
    created_by   text not null default current_user,
    created_at   timestamptz not null default now(),
    active       boolean not null default true
);

create table if not exists ops.schema_migrations (
    version     text primary key,
    applied_at  timestamptz not null default now()
);

-- Spreadsheets already imported (by content), so the nightly inbox scan skips them.
create table if not exists ops.intake_files (
    shop_id      text not null,
    file_name    text not null,
    sha256       text not null,
    batch_id     text not null,
    received     integer not null,
    landed       integer not null,
    quarantined  integer not null,
    imported_at  timestamptz not null default now(),
    primary key (shop_id, sha256)
);
