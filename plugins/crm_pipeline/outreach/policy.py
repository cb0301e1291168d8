"""One contact policy for every channel (R5, R13, R14; seed 002: CRM is not spam).

Pure functions over plain data: what to send, when, and why not. The planner
feeds them candidates plus history read from the warehouse; the tests feed
them tables and random histories (hypothesis).

Order of rules for each candidate message:
  1. opted_out          an opt-out matches customer or contact on this channel (R13),
                        or the buyer withdrew marketing consent on the platform
     no_consent         marketing where the shop needs an opt-in and the buyer gave none
  2. no_contact         no phone / e-mail for the channel, or a landline for SMS
  3. quiet_hours        planned time falls in quiet hours in the recipient's own
                        time zone: deferred to the end of quiet hours, or dropped
                        when the type says so (R5)
  4. expired            the (deferred) send time is past the message's window
  5. lower_priority     another marketing message for the same customer and
                        day (their local day) has higher priority (one a day, the best one)
  6. frequency_cap      marketing cap per channel and overall (R14)
Transactional messages skip 5 and 6 (and 1 if the policy allows it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.load.normalize import can_receive_sms


@dataclass(frozen=True)
class TypeRule:
    message_class: str  # transactional | marketing
    priority: int  # lower number wins
    quiet_hours: str = "defer"  # defer | drop
    valid_hours: float = 48.0
    # sent only while the shop's orders were read within this many minutes: a message about an
    # order's state (unpaid, shipped) is re-checked against facts at most this old (push.py)
    fresh_orders_minutes: int | None = None


@dataclass(frozen=True)
class Cap:
    max_messages: int
    days: float


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Shanghai"
    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)
    channel_caps: dict = field(default_factory=lambda: {"sms": Cap(1, 2), "email": Cap(1, 2), "webhook": Cap(1, 2)})
    overall_cap: Cap = Cap(1, 2)
    transactional_respects_optout: bool = True
    types: dict = field(default_factory=dict)

    def rule(self, message_type: str) -> TypeRule:
        if message_type in self.types:
            return self.types[message_type]
        base = message_type.split(":")[0]
        if base in self.types:
            return self.types[base]
        raise KeyError(f"message type {message_type!r} is not in the contact policy (config/policy.yml: message_types)")


@dataclass(frozen=True)
class Candidate:
    key: str  # idempotency key
    message_type: str
    channel: str
    customer_id: str
    recipient: str | None
    earliest: datetime  # aware; the trigger's own time (e.g. order + delay)
    timezone: str | None = None  # customer's zone (default: policy zone)
    campaign: str | None = None
    consent_required: bool = False  # the shop's marketing needs the buyer's opt-in (consent.py)
    consent: str | None = None  # the buyer's latest consent on this channel: granted | withdrawn | None


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    send_after: datetime | None  # None when suppressed
    rule: str | None = None  # suppression rule
    detail: str = ""

    @property
    def sent(self) -> bool:
        return self.rule is None


@dataclass(frozen=True)
class Contact:
    """A message already planned or sent (counts toward caps)."""

    customer_id: str
    channel: str
    message_class: str
    at: datetime
    key: str | None = None  # the message's idempotency key: one message counts once, whoever it is filed under


@dataclass(frozen=True)
class OptOut:
    channel: str  # sms | email | webhook | phone | all
    customer_id: str | None = None
    contact: str | None = None


def load_policy(path: Path) -> Policy:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def hhmm(value: str) -> time:
        hh, mm = str(value).split(":")
        return time(int(hh), int(mm))

    caps = data.get("frequency_caps", {}).get("marketing", {})
    channel_caps = {ch: Cap(int(c["max"]), float(c["days"])) for ch, c in (caps.get("per_channel") or {}).items()}
    overall = caps.get("overall") or {"max": 1, "days": 2}
    types = {
        name: TypeRule(
            message_class=str(t["class"]),
            priority=int(t.get("priority", 50)),
            quiet_hours=str(t.get("quiet_hours", "defer")),
            valid_hours=float(t.get("valid_hours", 48)),
            fresh_orders_minutes=(int(t["fresh_orders_minutes"]) if t.get("fresh_orders_minutes") is not None
                                  else None),
        )
        for name, t in (data.get("message_types") or {}).items()
    }
    for name, rule in types.items():
        if rule.message_class not in ("transactional", "marketing"):
            raise ValueError(f"{path}: message type {name}: class must be transactional or marketing")
        if rule.quiet_hours not in ("defer", "drop"):
            raise ValueError(f"{path}: message type {name}: quiet_hours must be defer or drop")
    quiet = data.get("quiet_hours") or {}
    return Policy(
        timezone=str(data.get("timezone", "Asia/Shanghai")),
        quiet_start=hhmm(quiet.get("start", "21:00")),
        quiet_end=hhmm(quiet.get("end", "09:00")),
        channel_caps=channel_caps,
        overall_cap=Cap(int(overall["max"]), float(overall["days"])),
        transactional_respects_optout=bool(data.get("transactional_respects_optout", True)),
        types=types,
    )


# -- the rules ------------------------------------------------------------------------
def in_quiet_hours(moment: datetime, policy: Policy, tz: str | None = None) -> bool:
    local = moment.astimezone(ZoneInfo(tz or policy.timezone)).time()
    start, end = policy.quiet_start, policy.quiet_end
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def end_of_quiet_hours(moment: datetime, policy: Policy, tz: str | None = None) -> datetime:
    """The first moment at or after ``moment`` that is outside quiet hours."""
    zone = ZoneInfo(tz or policy.timezone)
    local = moment.astimezone(zone)
    if not in_quiet_hours(moment, policy, tz):
        return moment
    candidate = datetime.combine(local.date(), policy.quiet_end, zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), policy.quiet_end, zone)
    return candidate


def is_opted_out(c: Candidate, optouts: Iterable[OptOut]) -> bool:
    hashed = "sha256:" + hashlib.sha256(c.recipient.encode("utf-8")).hexdigest() if c.recipient else None
    for o in optouts:
        if o.channel not in (c.channel, "all"):
            continue
        if o.customer_id is not None and o.customer_id == c.customer_id:
            return True
        # a contact as given, or as kept after the person was erased (a hash: crm erase)
        if o.contact is not None and c.recipient is not None and o.contact in (c.recipient, hashed):
            return True
    return False


def _local_day(moment: datetime, tz: str) -> object:
    return moment.astimezone(ZoneInfo(tz)).date()


def decide(candidates: list[Candidate], policy: Policy, now: datetime, optouts: Iterable[OptOut] = (),
           history: Iterable[Contact] = ()) -> list[Decision]:
    """Apply the policy to a batch of candidates (see module doc). Deterministic."""
    optouts = list(optouts)
    history = list(history)
    decisions: dict[str, Decision] = {}
    timed: list[tuple[Candidate, datetime, TypeRule]] = []
    for c in sorted(candidates, key=lambda c: c.key):
        rule = policy.rule(c.message_type)
        tz = c.timezone or policy.timezone
        if is_opted_out(c, optouts) and (rule.message_class == "marketing" or policy.transactional_respects_optout):
            decisions[c.key] = Decision(c, None, "opted_out", f"{c.channel} opt-out on record")
            continue
        if rule.message_class == "marketing" and c.consent == "withdrawn":  # a withdrawal is an opt-out
            decisions[c.key] = Decision(c, None, "opted_out", f"withdrew {c.channel} marketing consent on the platform")
            continue
        if rule.message_class == "marketing" and c.consent_required and c.consent != "granted":
            decisions[c.key] = Decision(c, None, "no_consent",
                                        f"the shop needs the buyer's opt-in for {c.channel} marketing; none on record")
            continue
        if not c.recipient:
            decisions[c.key] = Decision(c, None, "no_contact", f"no {c.channel} address for the customer")
            continue
        if c.channel == "sms" and not can_receive_sms(c.recipient):
            decisions[c.key] = Decision(c, None, "no_contact", "the customer's number is a landline (no SMS)")
            continue
        at = max(c.earliest, now)
        if in_quiet_hours(at, policy, tz):
            if rule.quiet_hours == "drop":
                decisions[c.key] = Decision(c, None, "quiet_hours", "falls in quiet hours and the type is not deferred")
                continue
            at = end_of_quiet_hours(at, policy, tz)
        if at > c.earliest + timedelta(hours=rule.valid_hours):
            decisions[c.key] = Decision(c, None, "expired",
                                        f"cannot go out within {rule.valid_hours:g}h of its trigger")
            continue
        timed.append((c, at, rule))

    # one marketing message per customer and day (their day): the highest priority (then key) wins
    best: dict[tuple, tuple] = {}
    for c, at, rule in timed:
        if rule.message_class != "marketing":
            continue
        slot = (c.customer_id, _local_day(at, c.timezone or policy.timezone))
        rank = (rule.priority, c.key)
        if slot not in best or rank < best[slot][0]:
            best[slot] = (rank, c.key, c.message_type)
    winners = {v[1] for v in best.values()}
    winner_of = {c.key: best[(c.customer_id, _local_day(at, c.timezone or policy.timezone))][2]
                 for c, at, rule in timed if rule.message_class == "marketing"}

    # marketing contacts per person: under their customer id, and under the address a
    # message went to ("to:<recipient>"), so a message sent under an id the customer no
    # longer has, or to their phone under someone else's id, still counts (R14)
    sent_marketing: dict[str, list[Contact]] = {}
    for h in history:
        if h.message_class == "marketing":
            sent_marketing.setdefault(h.customer_id, []).append(h)
    for c, at, rule in sorted(timed, key=lambda x: (x[1], x[2].priority, x[0].key)):
        if rule.message_class == "marketing":
            if c.key not in winners:
                decisions[c.key] = Decision(c, None, "lower_priority",
                                            f"{winner_of[c.key]} ranks higher for this customer that day "
                                            f"(one marketing message a day)")
                continue
            mine = sent_marketing.setdefault(c.customer_id, [])
            to = sent_marketing.setdefault(f"to:{c.recipient}", [])
            seen = {h.key for h in mine if h.key}
            reason = _cap_reason(c, at, policy, mine + [h for h in to if not h.key or h.key not in seen])
            if reason:
                decisions[c.key] = Decision(c, None, "frequency_cap", reason)
                continue
            contact = Contact(c.customer_id, c.channel, "marketing", at, c.key)
            mine.append(contact)
            to.append(contact)
        decisions[c.key] = Decision(c, at)
    return [decisions[c.key] for c in sorted(candidates, key=lambda c: c.key) if c.key in decisions]


def _cap_reason(c: Candidate, at: datetime, policy: Policy, mine: list[Contact]) -> str | None:
    """Why the caps stop ``c`` given this customer's marketing contacts ``mine``, or None."""
    cap = policy.channel_caps.get(c.channel)
    if cap is not None:
        window = timedelta(days=cap.days)
        n = sum(1 for h in mine if h.channel == c.channel and abs(at - h.at) < window)
        if n >= cap.max_messages:
            return f"{n} {c.channel} marketing message(s) within {cap.days:g} days (cap {cap.max_messages})"
    window = timedelta(days=policy.overall_cap.days)
    n = sum(1 for h in mine if abs(at - h.at) < window)
    if n >= policy.overall_cap.max_messages:
        return f"{n} marketing message(s) on any channel within {policy.overall_cap.days:g} days " \
               f"(cap {policy.overall_cap.max_messages})"
    return None


def with_recipient(c: Candidate, recipient: str | None) -> Candidate:
    return replace(c, recipient=recipient)
