"""bench/push: plan N recipients through the contact policy into the ledger, then push
them to the sandbox gateway (SendGrid wire format, 1,000 personalizations a call)
with the ledger written per batch (claim before send, accepted after).

Env: BENCH_PUSH_N (default 1,000,000), BENCH_PUSH_CHANNEL (email | sms, default email).
Prints plan rate, then `push_msgs_per_s=N` last.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import ROOT, fresh_database, sandbox_process  # noqa: E402

AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
CHUNK = 100_000


def main() -> int:
    import psycopg
    from crm_pipeline.outreach.gateways import build_gateways, load_gateway_config
    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.outreach.push import push

    n = int(os.environ.get("BENCH_PUSH_N", "1000000"))
    channel = os.environ.get("BENCH_PUSH_CHANNEL", "email")
    cfg = ROOT / "config"
    policy = load_policy(cfg / "policy.yml")
    with sandbox_process(persons=500):
        url = fresh_database("crm_bench_push")
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            for start in range(0, n, CHUNK):
                proposals = []
                for i in range(start, min(n, start + CHUNK)):
                    recipient = f"bench{i:07d}@example.com" if channel == "email" else f"+8613{i:09d}"
                    c = Candidate(f"campaign:bench:C{i:07d}:{channel}:{AS_OF}", "campaign", channel, f"C{i:07d}",
                                  recipient, NOW, campaign="bench")
                    proposals.append(Proposal(c, "campaign_vip_thanks", {"name": f"客户{i}", "tier_name": "金卡"}))
                plan(conn, proposals, policy, NOW, AS_OF, cfg / "templates", "悦己生活")
                conn.commit()
        plan_s = time.perf_counter() - t0
        print(f"planned {n:,} messages in {plan_s:.1f}s: plan_msgs_per_s={n / plan_s:.0f}", flush=True)
        gw = load_gateway_config(cfg / "gateways.yml")
        with psycopg.connect(url) as conn:
            t1 = time.perf_counter()
            stats = push(conn, build_gateways(gw), policy, NOW)
            push_s = time.perf_counter() - t1
            accepted = conn.execute("select count(*) from outreach.message_ledger where status = 'accepted'").fetchone()[0]
    print(f"pushed: {stats.accepted:,} accepted in {stats.batches} batches, {push_s:.1f}s "
          f"(ledger accepted rows: {accepted:,}; retries {stats.retries})")
    if accepted != n:
        print(f"ERROR: {n - accepted} messages not accepted", file=sys.stderr)
        return 1
    print(f"push_msgs_per_s={accepted / push_s:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
