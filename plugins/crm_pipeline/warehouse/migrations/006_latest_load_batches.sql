-- Each shop's most recent successful extraction or intake run: what the raw_landing
-- checkpoint's quarantine-share suite looks at (a platform that changed its status
-- list or date format sends most of a night's orders to quarantine; D44).
create or replace view ops.v_latest_load_batches as
select distinct on (platform, shop_id)
    batch_id, platform, shop_id, mode, started_at, finished_at, received, landed, quarantined
from ops.load_batches
where status = 'succeeded'
order by platform, shop_id, started_at desc, batch_id desc;
