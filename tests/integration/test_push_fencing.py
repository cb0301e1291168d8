"""Exactly once on any clock (issue 30 §6), on a driven pipeline clock: a push killed
after the gateway took a batch claimed at 23:55 and reconciled after midnight, and a
pusher that froze (an Airflow retry started while the old task still runs), whether it
lost its claim to another push or held it mid-call. Each message reaches the gateway once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import MODEL_AS_OF
from helpers import gateway_messages, reset, rows

pytestmark = pytest.mark.integration
CN = ZoneInfo("Asia/Shanghai")
# 23:55 in Beijing is 15:55 in London: the recipients' waking hours, so the push may send
LONDON = "Europe/London"


class Killed(BaseException):
    """The pusher process dying: nothing after it runs (not an Exception, so nothing catches it)."""


def _config():
    from crm_pipeline.outreach.gateways import build_gateways, load_gateway_config
    from crm_pipeline.outreach.policy import load_policy
    from crm_pipeline.settings import get_settings

    cfg = get_settings().config_dir
    return load_policy(cfg / "policy.yml"), lambda: build_gateways(load_gateway_config(cfg / "gateways.yml"))


def _plan(url: str, at: datetime, n: int) -> list[str]:
    """n due SMS to London recipients, one template (one Aliyun batch)."""
    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    policy, _ = _config()
    proposals = [Proposal(Candidate(f"campaign:fence:C{i}:sms", "campaign", "sms", f"C{i}", f"+86139000000{i:02d}",
                                    at, timezone=LONDON, campaign="fence"),
                          "campaign_vip_thanks", {"name": f"客户{i}", "tier_name": "金卡"}) for i in range(n)]
    with connect(url) as conn:
        plan(conn, proposals, policy, at, MODEL_AS_OF, get_settings().config_dir / "templates", "悦己生活")
    return [p.candidate.key for p in proposals]


def _push(url: str, now: datetime, gateways=None):
    import psycopg
    from crm_pipeline.outreach.push import push

    policy, build = _config()
    with psycopg.connect(url) as conn:
        return push(conn, gateways or build(), policy, now)


def _sent_once(sandbox, n: int) -> None:
    sms = [m for m in gateway_messages(sandbox) if m["gateway"] == "aliyun"]
    per_number = Counter(m["to"] for m in sms)
    assert len(per_number) == n and set(per_number.values()) == {1}, per_number


@pytest.fixture
def clocked(make_database, sandbox, monkeypatch):
    from crm_pipeline import clock
    from crm_pipeline.settings import reload_settings

    monkeypatch.delenv("CRM_NOW", raising=False)
    reload_settings()
    reset(sandbox, messages=True)
    yield make_database("fence")
    clock.set_now(None)


def test_a_claim_at_2355_reconciled_after_midnight_is_not_sent_again(clocked, sandbox, monkeypatch):
    """The gateway took the batch at 23:55 (its day: the 21st); the pusher died before it
    could record that. The next push runs at 00:20 on the 22nd: it must ask the gateway
    about the claim's day, find the batch and mark it accepted, not send it again."""
    from crm_pipeline import clock
    from crm_pipeline.outreach import push as push_mod

    url = clocked
    claim = datetime(2026, 11, 21, 23, 55, tzinfo=CN)
    clock.set_now(claim)
    keys = _plan(url, claim, 5)

    real_finish = push_mod._finish

    def die_after_the_gateway_answered(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(push_mod, "_finish", die_after_the_gateway_answered)
    with pytest.raises(Killed):
        _push(url, claim)
    monkeypatch.setattr(push_mod, "_finish", real_finish)
    assert rows(url, "select distinct status from outreach.message_ledger") == [("sending",)]
    _sent_once(sandbox, 5)
    assert {m["received_at"][:10] for m in gateway_messages(sandbox)} == {"2026-11-21"}

    later = claim + timedelta(minutes=25)  # 00:20 on the 22nd, past the stale window
    clock.set_now(later)
    stats = _push(url, later)
    assert stats.reconciled_accepted == 5 and stats.reconciled_resend == 0 and stats.accepted == 0, stats
    assert rows(url, "select count(*) from outreach.message_ledger where status = 'accepted'"
                     " and idempotency_key = any(%s)", keys) == [(5,)]
    _sent_once(sandbox, 5)


def _in_thread(name: str, fn) -> tuple[threading.Thread, dict]:
    """Run ``fn`` in a thread; its result or exception lands in the returned dict."""
    out: dict = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            out["error"] = exc

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread, out


def _wait(predicate, what: str, timeout: float = 30.0, out: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if out and "error" in out:
            raise out["error"]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_frozen_pusher_that_lost_its_claim_neither_sends_nor_marks(clocked, sandbox, monkeypatch):
    """Pusher A claims a batch and freezes before its HTTP call. Eleven minutes later push B
    finds the claim stale, reconciles it (the gateway never got it), sends it and records
    it. When A resumes, its fencing token no longer matches: it sends nothing and marks
    nothing (before fencing, A sent the batch a second time and marked it accepted)."""
    from crm_pipeline import clock
    from crm_pipeline.outreach import push as push_mod

    url = clocked
    start = datetime(2026, 11, 21, 18, 0, tzinfo=CN)  # 10:00 in London
    clock.set_now(start)
    _plan(url, start, 4)

    real_check = push_mod._still_claimed
    frozen, resume = threading.Event(), threading.Event()
    def freeze_in_a(conn, token, keys):
        if threading.current_thread().name == "pusher-a":
            frozen.set()
            resume.wait(60)
        return real_check(conn, token, keys)

    monkeypatch.setattr(push_mod, "_still_claimed", freeze_in_a)
    thread, pusher_a = _in_thread("pusher-a", lambda: _push(url, start))
    try:
        _wait(frozen.is_set, "pusher A to claim its batch", out=pusher_a)
        assert rows(url, "select distinct status from outreach.message_ledger") == [("sending",)]
        later = start + timedelta(minutes=11)
        clock.set_now(later)
        stats_b = _push(url, later)
        assert stats_b.reconciled_resend == 4 and stats_b.accepted == 4, stats_b
    finally:
        resume.set()
        thread.join(60)
    stats_a = pusher_a["result"]
    assert stats_a.fenced == 4 and stats_a.accepted == 0, stats_a
    assert rows(url, "select status, count(*) from outreach.message_ledger group by 1") == [("accepted", 4)]
    _sent_once(sandbox, 4)


def test_a_pusher_frozen_mid_call_keeps_its_claim(clocked, sandbox, monkeypatch):
    """Pusher A holds its rows locked through its HTTP call. Frozen there, its claim goes
    stale on the clock, but push B cannot reconcile rows A holds: it leaves them alone, and
    A, resumed, sends and records them once."""
    from crm_pipeline import clock

    url = clocked
    start = datetime(2026, 11, 21, 18, 0, tzinfo=CN)  # 10:00 in London
    clock.set_now(start)
    _plan(url, start, 3)
    _, build = _config()
    gateways_a = build()
    real_send = gateways_a["sms"].send
    in_call, resume = threading.Event(), threading.Event()

    def freeze_mid_call(batch_id, messages):
        in_call.set()
        resume.wait(60)
        return real_send(batch_id, messages)

    monkeypatch.setattr(gateways_a["sms"], "send", freeze_mid_call)
    thread, pusher_a = _in_thread("pusher-a", lambda: _push(url, start, gateways_a))
    try:
        _wait(in_call.is_set, "pusher A to be in its HTTP call", out=pusher_a)
        later = start + timedelta(minutes=30)
        clock.set_now(later)
        stats_b = _push(url, later)
        assert stats_b.reconciled_resend == 0 and stats_b.reconciled_accepted == 0 and stats_b.accepted == 0
        assert rows(url, "select distinct status from outreach.message_ledger") == [("sending",)]
    finally:
        resume.set()
        thread.join(60)
    assert pusher_a["result"].accepted == 3 and pusher_a["result"].fenced == 0
    assert rows(url, "select status, count(*) from outreach.message_ledger group by 1") == [("accepted", 3)]
    _sent_once(sandbox, 3)
