-- The pusher takes due rows of one (channel, template) in send order, a batch at a
-- time; this index serves that scan without sorting the whole pending backlog.
create index if not exists message_ledger_push
    on outreach.message_ledger (status, channel, template, send_after, idempotency_key);
