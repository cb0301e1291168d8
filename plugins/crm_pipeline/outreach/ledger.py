"""The outbox: plan messages into ``outreach.message_ledger`` before any HTTP call.

``plan`` takes proposals (from triggers and campaigns), drops those whose
idempotency key is already in the ledger (planned by an earlier run or try:
keys never contain a run id), applies the contact policy with opt-outs and
history read from the warehouse, renders templates (a missing placeholder is
a suppression, not a send) and writes ledger rows and suppression rows in one
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from crm_pipeline.outreach.policy import Candidate, Contact, OptOut, Policy, decide
from crm_pipeline.outreach.templates import MissingPlaceholder, TemplateError, render, template_name
from crm_pipeline.pii import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Proposal:
    candidate: Candidate
    template: str  # template base name, e.g. "shipment_notice" or "campaign_vip_thanks"
    params: dict
    order_key: str | None = None


@dataclass
class PlanStats:
    proposed: int = 0
    already_planned: int = 0
    planned: int = 0
    suppressed: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)  # group (e.g. trigger kind) -> PlanStats of its proposals

    def add_suppression(self, rule: str) -> None:
        self.suppressed[rule] = self.suppressed.get(rule, 0) + 1

    def group(self, name: str | None) -> PlanStats | None:
        if name is None:
            return None
        return self.groups.setdefault(name, PlanStats())

    def as_dict(self) -> dict:
        return {"proposed": self.proposed, "already_planned": self.already_planned, "planned": self.planned,
                "suppressed": dict(sorted(self.suppressed.items()))}


def load_optouts(conn) -> list[OptOut]:
    """Every opt-out resolved to the customers it is about now (migration 008): by the
    contact it was given for, and by the ids, phones and e-mails of whoever holds it."""
    return [OptOut(r[0], r[1], r[2]) for r in conn.execute(
        "select distinct channel, customer_id, contact from outreach.optout_blocks()")]


def load_history(conn, around: datetime, days: float) -> list[Contact]:
    """Marketing planned or sent around ``around``, counted for the person (R14): under the
    id it was sent under, the ids that person has now (a merge or split since), and the
    address it went to (``to:<recipient>``, whoever holds it)."""
    rows = conn.execute(
        """
        with sent as (
            select idempotency_key, customer_id, recipient, channel, message_class, send_after
            from outreach.message_ledger
            where message_class = 'marketing' and status in ('pending', 'sending', 'accepted', 'unknown')
              and send_after between %s and %s
        )
        select s.customer_id, s.channel, s.message_class, s.send_after, s.idempotency_key from sent s
        union all
        select a.customer_id, s.channel, s.message_class, s.send_after, s.idempotency_key
        from sent s join outreach.customer_aliases() a on a.alias_id = s.customer_id and a.customer_id <> s.customer_id
        union all
        select 'to:' || s.recipient, s.channel, s.message_class, s.send_after, s.idempotency_key from sent s
        """,
        (around - timedelta(days=days + 2), around + timedelta(days=days + 2)),
    ).fetchall()
    return [Contact(*r) for r in rows]


def record_policy_facts(conn, as_of: date, policy: Policy) -> None:
    facts = {"overall_cap_max": policy.overall_cap.max_messages, "overall_cap_days": policy.overall_cap.days,
             "transactional_respects_optout": policy.transactional_respects_optout,
             "quiet_hours": [policy.quiet_start.isoformat(), policy.quiet_end.isoformat()]}
    conn.execute(
        "insert into ops.run_log (as_of_date, step, facts) values (%s, 'policy', %s)"
        " on conflict (as_of_date, step) do update set facts = excluded.facts, recorded_at = now()",
        (as_of, json.dumps(facts)),
    )


def decided_keys(conn, keys: list[str], as_of: date) -> set[str]:
    """Keys already decided: planned into the ledger, or suppressed when this business day
    was planned (a rerun must not re-decide them against a history that now holds the
    winner of the first decision: same day, same ledger, same suppressions)."""
    return {r[0] for r in conn.execute(
        "select idempotency_key from outreach.message_ledger where idempotency_key = any(%s)"
        " union select idempotency_key from outreach.suppressions where idempotency_key = any(%s)"
        " and as_of_date = %s", (keys, keys, as_of))}


def insert_suppressions(conn, rows: list[tuple]) -> None:
    """(key, as_of, message_type, channel, customer_id, campaign, rule, detail) rows."""
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into outreach.suppressions (idempotency_key, as_of_date, message_type, channel,"
                " customer_id, campaign, rule, detail) values (%s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict (idempotency_key, rule) do nothing", rows)


def decide_proposals(conn, proposals: list[Proposal], policy: Policy, now: datetime) -> list:
    """The contact policy's decisions for proposals, with what it needs from the warehouse:
    opt-outs resolved to the people they are about, each person's recent marketing, and
    the marketing consent the shop needs (consent.py). Decides; writes nothing."""
    from crm_pipeline.outreach.consent import annotate

    days = max([policy.overall_cap.days] + [c.days for c in policy.channel_caps.values()])
    marketing = {p.candidate.key for p in proposals
                 if policy.rule(p.candidate.message_type).message_class == "marketing"}
    candidates = annotate(conn, [(p.candidate, p.order_key) for p in proposals], marketing)
    return decide(candidates, policy, now, load_optouts(conn), load_history(conn, now, days))


def policy_screen(conn, policy: Policy, now: datetime, as_of: date) -> Callable[[list[Proposal]], set[str]]:
    """The keys of the proposals the policy would send at ``now`` (decide_proposals; writes
    nothing): a campaign's budget pays only for those (campaigns.plan_campaign). As plan()
    for business day ``as_of``: a key already decided (a rerun) is not decided again, so it
    neither leaves nor caps another buyer's message."""
    def screen(proposals: list[Proposal]) -> set[str]:
        decided = decided_keys(conn, [p.candidate.key for p in proposals], as_of)
        fresh = [p for p in proposals if p.candidate.key not in decided]
        return {d.candidate.key for d in decide_proposals(conn, fresh, policy, now) if d.sent} if fresh else set()

    return screen


def plan(conn, proposals: list[Proposal], policy: Policy, now: datetime, as_of: date, templates_dir: Path,
         shop_name: str = "", group_of: Callable[[Proposal], str] | None = None) -> PlanStats:
    """Plan proposals into the ledger (caller commits). Idempotent per key.

    The proposals are decided together, so the policy's one-message-a-day priority applies
    across them (a care note outranks the coupon due the same day, R12): plan every trigger
    of a night in one call. ``group_of`` names a proposal's group for per-group counts
    (``stats.groups``)."""
    stats = PlanStats(proposed=len(proposals))
    if not proposals:
        return stats
    group = (lambda p: stats.group(group_of(p))) if group_of else (lambda p: None)
    for p in proposals:
        if (g := group(p)) is not None:
            g.proposed += 1
    record_policy_facts(conn, as_of, policy)
    existing = decided_keys(conn, [p.candidate.key for p in proposals], as_of)
    fresh, seen = [], set(existing)
    for p in proposals:  # a key proposed twice (two send days of a catch-up) is decided once
        if p.candidate.key not in seen:
            seen.add(p.candidate.key)
            fresh.append(p)
    stats.already_planned = len(proposals) - len(fresh)
    for p in proposals:
        if p.candidate.key in existing and (g := group(p)) is not None:
            g.already_planned += 1
    if not fresh:
        return stats
    decisions = decide_proposals(conn, fresh, policy, now)
    by_key = {p.candidate.key: p for p in fresh}
    ledger_rows, suppression_rows = [], []

    def suppress(p: Proposal, rule: str, detail: str) -> None:
        c = p.candidate
        suppression_rows.append((c.key, as_of, c.message_type, c.channel, c.customer_id, c.campaign, rule, detail))
        stats.add_suppression(rule)
        if (g := group(p)) is not None:
            g.add_suppression(rule)

    for d in decisions:
        p = by_key[d.candidate.key]
        c = d.candidate
        rule = policy.rule(c.message_type)
        if not d.sent:
            suppress(p, d.rule, d.detail)
            continue
        params = {"shop_name": shop_name, **p.params}
        try:
            rendered = render(templates_dir, template_name(p.template, c.channel), params)
        except MissingPlaceholder as exc:
            suppress(p, "missing_placeholder", str(exc))
            continue
        except TemplateError as exc:
            suppress(p, "no_template", str(exc))
            continue
        if (g := group(p)) is not None:
            g.planned += 1
        expires = c.earliest + timedelta(hours=rule.valid_hours)
        body = rendered.body if rendered.subject is None else f"{rendered.subject}\n{rendered.body}"
        ledger_rows.append((c.key, c.message_type, rule.message_class, c.channel, c.customer_id, c.recipient,
                            p.template, json.dumps(params, ensure_ascii=False, default=str), body, c.campaign,
                            p.order_key, as_of, d.send_after, expires, c.timezone or policy.timezone))
    if ledger_rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into outreach.message_ledger (idempotency_key, message_type, message_class, channel,"
                " customer_id, recipient, template, params, body, campaign, order_key, as_of_date, send_after,"
                " expires_at, timezone) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " on conflict (idempotency_key) do nothing",
                ledger_rows,
            )
    insert_suppressions(conn, suppression_rows)
    stats.planned = len(ledger_rows)
    log.info("planned %d message(s), suppressed %s, %d already in the ledger", stats.planned,
             stats.suppressed, stats.already_planned)
    return stats


def hold(conn, held: list[tuple[Proposal, str]], as_of: date, rule: str, detail_by_shop: dict[str, str],
         reconsider: list[str]) -> dict[str, int]:
    """Record proposals held back for the day (caller commits): a suppression row each,
    with ``rule`` and why (no contact data). Holds are not decisions: the day's earlier
    holds of every key in ``reconsider`` (this plan's proposals) are dropped first, so a
    rerun after the cause is gone plans them. A key already in the ledger, or stopped
    by another rule that day, stays as it was decided. Returns held counts by type."""
    conn.execute("delete from outreach.suppressions where as_of_date = %s and rule = %s"
                 " and idempotency_key = any(%s)", (as_of, rule, reconsider))
    if not held:
        return {}
    decided = decided_keys(conn, [p.candidate.key for p, _ in held], as_of)
    rows, counts = [], {}
    for p, shop_id in held:
        c = p.candidate
        if c.key in decided:
            continue
        rows.append((c.key, as_of, c.message_type, c.channel, c.customer_id, c.campaign, rule, detail_by_shop[shop_id]))
        counts[c.message_type] = counts.get(c.message_type, 0) + 1
    insert_suppressions(conn, rows)
    log.warning("held %d message(s) for shops whose data is not current: %s", len(rows), sorted(detail_by_shop))
    return dict(sorted(counts.items()))
