-- Exactly-once on any clock (issue 30): a claim remembers when it was taken and by whom.
--   timezone     the recipient's time zone (their shop's): quiet hours and "today" are theirs
--   claim_token  fencing token of the push that holds the row in 'sending'; every HTTP attempt
--                and the final update check it, so a pusher that lost its claim (frozen, then
--                reconciled by another push) can neither send nor mark the row
--   claimed_at   the pipeline clock when the row was claimed: reconciliation asks the gateway
--                about that day, not the day it happens to run (a claim at 23:55 reconciled
--                after midnight)
alter table outreach.message_ledger add column if not exists timezone text;
alter table outreach.message_ledger add column if not exists claim_token text;
alter table outreach.message_ledger add column if not exists claimed_at timestamptz;
