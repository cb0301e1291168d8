"""Campaigns as files (R15, R21-R23): config/campaigns/<name>.yml.

A campaign has a goal, a theme, dates, an audience selector over the marts,
channels with budgets and templates, and a hold-out fraction. ``plan``
returns proposals for the contact policy; ``report`` measures conversion and
repurchase of treated vs hold-out customers with the lift and a 95% CI.

Hold-out assignment is a hash of (campaign, customer): deterministic, and it
is recorded in outreach.campaign_assignments the first time a customer is
eligible, so it never flips.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.outreach.ledger import Proposal
from crm_pipeline.outreach.policy import Candidate
from crm_pipeline.outreach.triggers import CUSTOMER_ZONE

AUDIENCE_FILTERS = {
    # selector key -> (SQL condition with %(name)s, description)
    "segments": "r.segment = any(%(segments)s)",
    "stages": "l.stage = any(%(stages)s)",
    "tiers": "t.tier = any(%(tiers)s)",
    "platforms": "c.platforms_used && %(platforms)s::text[]",
    "categories": "c.categories_bought && %(categories)s::text[]",
    "provinces": "c.province = any(%(provinces)s)",
    "tags": "exists (select 1 from unnest(string_to_array(coalesce(c.tags, ''), ',')) tg where trim(tg) = any(%(tags)s))",
    "min_paid_orders": "c.paid_orders >= %(min_paid_orders)s",
    "min_net_revenue": "c.net_revenue_cny >= %(min_net_revenue)s",
    "max_days_since_last_paid": "c.days_since_last_paid <= %(max_days_since_last_paid)s",
    "min_days_since_last_paid": "c.days_since_last_paid >= %(min_days_since_last_paid)s",
    # issue 33: the night's CLV (marts.customer_clv); customers without a fitted CLV never match
    "min_clv_cny": "exists (select 1 from clv.customer_scores v where v.customer_id = c.customer_id"
                   " and v.clv_cny >= %(min_clv_cny)s)",
    "max_clv_cny": "exists (select 1 from clv.customer_scores v where v.customer_id = c.customer_id"
                   " and v.clv_cny <= %(max_clv_cny)s)",
}


class CampaignError(ValueError):
    pass


@dataclass(frozen=True)
class Campaign:
    name: str
    goal: str
    theme: str
    start_date: date
    end_date: date
    send_dates: tuple[date, ...]
    send_time: time
    audience: dict
    channels: dict  # channel -> {"budget": int, "template": str}
    holdout: float
    measure_days: int = 30
    selling_point: str = ""
    followup: dict = field(default_factory=dict)


def load_campaign(path: Path) -> Campaign:
    import yaml

    d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = f"campaign file {path.name}"
    for key in ("name", "goal", "start_date", "end_date", "audience", "channels"):
        if not d.get(key):
            raise CampaignError(f"{where}: '{key}' is required (R15/R21: a goal, dates, a target group, channels)")
    unknown = set(d["audience"]) - set(AUDIENCE_FILTERS)
    if unknown:
        raise CampaignError(f"{where}: unknown audience filter(s) {sorted(unknown)}; known: {sorted(AUDIENCE_FILTERS)}")
    holdout = float(d.get("holdout", 0.1))
    if not 0 <= holdout < 1:
        raise CampaignError(f"{where}: holdout must be in [0, 1)")
    channels = {}
    for ch, cfg in d["channels"].items():
        if ch not in ("sms", "email", "webhook"):
            raise CampaignError(f"{where}: unknown channel {ch!r}")
        if int(cfg.get("budget", -1)) < 0 or not cfg.get("template"):
            raise CampaignError(f"{where}: channel {ch} needs a budget >= 0 and a template")
        channels[ch] = {"budget": int(cfg["budget"]), "template": str(cfg["template"])}
    start, end = d["start_date"], d["end_date"]
    sends = tuple(d.get("send_dates") or [start])
    for s in sends:
        if not start <= s <= end:
            raise CampaignError(f"{where}: send date {s} is outside {start}..{end}")
    hh, mm = str(d.get("send_time", "10:00")).split(":")
    return Campaign(name=str(d["name"]), goal=str(d["goal"]), theme=str(d.get("theme", "")), start_date=start,
                    end_date=end, send_dates=sends, send_time=time(int(hh), int(mm)), audience=dict(d["audience"]),
                    channels=channels, holdout=holdout, measure_days=int(d.get("measure_days", 30)),
                    selling_point=str(d.get("selling_point", "")), followup=dict(d.get("followup") or {}))


def load_campaigns(folder: Path) -> list[Campaign]:
    return [load_campaign(p) for p in sorted(folder.glob("*.yml"))]


def find_campaign(folder: Path, name: str) -> Campaign:
    path = folder / f"{name}.yml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yml")))
        raise CampaignError(f"no campaign {name!r} in {folder} (known: {known or 'none'})")
    return load_campaign(path)


def is_holdout(campaign: str, customer_id: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(f"{campaign}|{customer_id}".encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def audience(conn, campaign: Campaign) -> list[dict]:
    """Customers matching every filter, most valuable first (budget order)."""
    conditions, params = [], {}
    for key, value in campaign.audience.items():
        conditions.append(AUDIENCE_FILTERS[key])
        params[key] = list(value) if isinstance(value, (list, tuple)) else value
    sql = f"""
        select c.customer_id, c.name, c.phone_e164, c.email, c.net_revenue_cny, r.segment, l.stage,
               coalesce(t.tier, 'member') as tier, {CUSTOMER_ZONE.format(customer='c.customer_id')} as timezone
        from marts.dim_customers c
        left join marts.customer_rfm r on r.customer_id = c.customer_id
        left join marts.customer_lifecycle l on l.customer_id = c.customer_id
        left join marts.customer_tiers t on t.customer_id = c.customer_id
        where {' and '.join(conditions) if conditions else 'false'}
        order by c.net_revenue_cny desc, c.customer_id
    """
    cols = ["customer_id", "name", "phone", "email", "net_revenue_cny", "segment", "stage", "tier", "timezone"]
    return [dict(zip(cols, row, strict=True)) for row in conn.execute(sql, params).fetchall()]


TIER_NAMES = {"member": "普通", "silver": "银卡", "gold": "金卡", "platinum": "铂金"}


def plan_campaign(conn, campaign: Campaign, send_date: date, tz: str,
                  screen: Callable[[list[Proposal]], set[str]] | None = None) -> tuple[list[Proposal], dict]:
    """Assign hold-outs, apply budgets and channel order; return proposals + counts.

    ``screen`` (the keys of the proposals the contact policy would send, without writing:
    ``ledger.policy_screen``) makes the budget pay only for messages that may leave: a
    buyer a frequency cap or a landline stops on one channel gets the next channel with
    budget left, or is proposed unpaid so that the policy records why (D125)."""
    members = audience(conn, campaign)
    facts = {"audience": len(members), "holdout": 0, "treated": 0, "over_budget": 0, "no_contact": 0}
    # the person's assignment, whatever id it was made under (a merge or split since: R22's
    # hold-out stays held out; when the halves of a split disagree, held out wins)
    groups = dict(conn.execute(
        "select a.customer_id, case when bool_or(ca.assigned_group = 'holdout') then 'holdout' else 'treatment' end"
        " from outreach.campaign_assignments ca join outreach.customer_aliases() a on a.alias_id = ca.customer_id"
        " where ca.campaign = %s group by a.customer_id"
        " union all select customer_id, assigned_group from outreach.campaign_assignments"
        " where campaign = %s and customer_id not in (select customer_id from outreach.customer_aliases())",
        (campaign.name, campaign.name)).fetchall())
    # a wave's audience is fixed when it is first planned: a rerun of the night, or a night
    # rerun after more orders came in, adds nobody to groups whose messages may be out (the
    # lift would count people who were never contacted as treated)
    if conn.execute("select 1 from outreach.campaign_assignments where campaign = %s and as_of_date = %s limit 1",
                    (campaign.name, send_date)).fetchone():
        late = [m for m in members if m["customer_id"] not in groups]
        facts["joined_after_planning"] = len(late)
        members = [m for m in members if m["customer_id"] in groups]
    # record assignment the first time a person is eligible; an existing assignment wins
    fresh = [(campaign.name, m["customer_id"], "holdout" if is_holdout(campaign.name, m["customer_id"], campaign.holdout)
              else "treatment", send_date) for m in members if m["customer_id"] not in groups]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into outreach.campaign_assignments (campaign, customer_id, assigned_group, as_of_date)"
            " values (%s, %s, %s, %s) on conflict (campaign, customer_id) do nothing", fresh)
    groups.update({row[1]: row[2] for row in fresh})
    conn.execute("insert into outreach.campaign_budgets (campaign, channel, budget) select %s, ch, b"
                 " from unnest(%s::text[], %s::int[]) as x(ch, b)"
                 " on conflict (campaign, channel) do update set budget = excluded.budget",
                 (campaign.name, list(campaign.channels), [c["budget"] for c in campaign.channels.values()]))
    used = {ch: conn.execute("select count(*) from outreach.message_ledger where campaign = %s and channel = %s"
                             " and status <> 'cancelled'", (campaign.name, ch)).fetchone()[0]
            for ch in campaign.channels}
    already = {r[0] for r in conn.execute(
        "select l.customer_id from outreach.message_ledger l where l.campaign = %s"
        " union select a.customer_id from outreach.message_ledger l"
        " join outreach.customer_aliases() a on a.alias_id = l.customer_id where l.campaign = %s",
        (campaign.name, campaign.name))}
    consented = consent_check(conn, members, campaign)
    pending = []  # (member, channels with a contact, of those the consented ones), most valuable first
    for m in members:
        if groups.get(m["customer_id"]) == "holdout":
            facts["holdout"] += 1
            continue
        if m["customer_id"] in already:
            facts["treated"] += 1
            continue
        # channels in the campaign's order; one the buyer has not opted into (where the shop needs
        # it) gives way to the next one they have, e.g. e-mail when only e-mail is consented
        options = [(ch, cfg, m["phone"] if ch == "sms" else m["email"] if ch == "email" else m["customer_id"])
                   for ch, cfg in campaign.channels.items()]
        options = [o for o in options if o[2]]
        pending.append((m, options, [o for o in options if consented(m["customer_id"], o[0], o[2])]))
    # what the policy lets through on each channel, one batch per channel rank (a buyer's two
    # channels must not compete for the one-a-day slot)
    passes: set[str] | None = None
    if screen is not None:
        passes = set()
        for rank in range(len(campaign.channels)):
            batch = [_proposal(campaign, m, allowed[rank], send_date, tz) for m, _, allowed in pending
                     if rank < len(allowed)]
            if batch:
                passes |= screen(batch)
    proposals: list[Proposal] = []
    paid: set[str] = set()  # keys the budget pays for
    for m, options, allowed in pending:
        within = [o for o in allowed if used[o[0]] < o[1]["budget"]]
        sendable = [o for o in within
                    if passes is None or _proposal(campaign, m, o, send_date, tz).candidate.key in passes]
        # proposed unpaid where nothing may leave: the policy records the suppression (no
        # consent, a frequency cap, a landline) and the budget goes to the next buyer
        chosen = sendable[0] if sendable else within[0] if within else options[0] if options and not allowed else None
        if chosen is None:
            facts["over_budget" if options else "no_contact"] += 1
            continue
        proposal = _proposal(campaign, m, chosen, send_date, tz)
        if chosen in sendable:
            used[chosen[0]] += 1
            paid.add(proposal.candidate.key)
            if allowed and chosen != allowed[0]:
                # the first channel was over budget, or stopped by the policy (an opt-out of that
                # channel only, a cap on it): the buyer gets the next one
                why = "next_channel_policy" if allowed[0] in within else "next_channel_over_budget"
                facts[why] = facts.get(why, 0) + 1
        facts["treated"] += 1
        proposals.append(proposal)
    if screen is not None:
        proposals = _within_budget(proposals, paid, used, campaign, screen, facts)
        # treated counts every proposal, those the policy will stop included (their suppressions)
        facts["paid_messages"] = len(paid)
    return proposals, facts


def _within_budget(proposals: list[Proposal], paid: set[str], used: dict, campaign: Campaign,
                   screen: Callable[[list[Proposal]], set[str]], facts: dict) -> list[Proposal]:
    """The screen decided each channel rank as one batch; the plan decides these proposals as
    another. Where the two differ (two buyers sharing a phone: the one the screen let through
    went over budget, so the other's message is no longer capped), an unpaid proposal would
    leave: it is paid for while the budget lasts, else dropped, until none would. A paid
    one that will not leave (two ranks' messages to one address) gives its message back; the
    slot is not offered again this wave."""
    while True:
        leaving = screen(proposals)
        for p in proposals:
            if p.candidate.key in paid and p.candidate.key not in leaving:
                paid.discard(p.candidate.key)
                used[p.candidate.channel] -= 1
        extra = [p for p in proposals if p.candidate.key in leaving and p.candidate.key not in paid]
        if not extra:
            return proposals
        for p in extra:
            ch = p.candidate.channel
            if used[ch] < campaign.channels[ch]["budget"]:
                used[ch] += 1
                paid.add(p.candidate.key)
            else:
                proposals = [q for q in proposals if q is not p]
                facts["treated"] -= 1
                facts["over_budget"] += 1


def _proposal(campaign: Campaign, m: dict, option: tuple, send_date: date, tz: str) -> Proposal:
    """The campaign message to member ``m`` on ``option`` (channel, its config, contact)."""
    ch, cfg, contact = option
    key = f"campaign:{campaign.name}:{m['customer_id']}:{ch}:{send_date.isoformat()}"
    zone = m["timezone"] or tz  # the send time is the customer's own (their shop's zone)
    cand = Candidate(key=key, message_type="campaign", channel=ch, customer_id=m["customer_id"],
                     recipient=contact, earliest=datetime.combine(send_date, campaign.send_time, ZoneInfo(zone)),
                     timezone=zone, campaign=campaign.name)
    params = {"name": m["name"] or "亲", "tier_name": TIER_NAMES.get(m["tier"], m["tier"]), "theme": campaign.theme}
    return Proposal(cand, cfg["template"], params)


def consent_check(conn, members: list[dict], campaign: Campaign):
    """(customer_id, channel, contact) -> whether marketing may use that channel (consent.py)."""
    from crm_pipeline.outreach.consent import lookup, shop_requirements

    items = [(m["customer_id"], None, ch, m["phone"] if ch == "sms" else m["email"] if ch == "email" else None)
             for m in members for ch in campaign.channels]
    if not items:
        return lambda customer, channel, contact: True
    required = shop_requirements()
    shops, consent = lookup(conn, items)

    def consented(customer: str, channel: str, contact: str | None) -> bool:
        state = consent.get((customer, channel))
        if state == "withdrawn":
            return False
        needs = any(required.get(s, False) for s in shops.get((customer, "", contact or ""), set()))
        return state == "granted" or not needs

    return consented


def followup_proposals(conn, campaign: Campaign, day: date, tz: str) -> list[Proposal]:
    """R23: after the campaign, apologise to unhappy customers, invite happy ones to follow the shop."""
    if not campaign.followup or day <= campaign.end_date:
        return []
    rows = conn.execute(
        f"""
        with treated as (
            select customer_id from outreach.campaign_assignments where campaign = %(c)s and assigned_group = 'treatment'
        ),
        mood as (
            select t.customer_id,
                   bool_or(o.status = 'refunded' or co.resolved = false) as unhappy,
                   bool_or(co.resolved = true or (o.status = 'completed' and o.refunded_at is null)) as happy
            from treated t
            left join marts.fct_orders o on o.customer_id = t.customer_id
                 and o.order_date between %(start)s and %(end)s
            left join outreach.call_outcomes co on co.customer_id = t.customer_id
                 and co.list_date between %(start)s and %(end)s
            group by t.customer_id
        )
        select m.customer_id, c.name, c.phone_e164, m.unhappy, m.happy,
               {CUSTOMER_ZONE.format(customer='m.customer_id')} as timezone
        from mood m join marts.dim_customers c on c.customer_id = m.customer_id
        where m.unhappy or m.happy
        """,
        {"c": campaign.name, "start": campaign.start_date, "end": campaign.end_date},
    ).fetchall()
    day = campaign.end_date + timedelta(days=1)
    proposals = []
    for customer_id, name, phone, unhappy, _happy, zone in rows:
        kind = "apology" if unhappy else "follow_us"
        template = campaign.followup.get(f"{kind}_template")
        if not template:
            continue
        key = f"campaign_followup:{campaign.name}:{kind}:{customer_id}:sms"
        cand = Candidate(key=key, message_type="campaign_followup", channel="sms", customer_id=customer_id,
                         recipient=phone, earliest=datetime.combine(day, campaign.send_time, ZoneInfo(zone or tz)),
                         timezone=zone or tz, campaign=campaign.name)
        proposals.append(Proposal(cand, template, {"name": name or "亲", "coupon": campaign.followup.get("coupon", "")}))
    return proposals


# -- results (R22) -----------------------------------------------------------------------
def two_proportion_ci(x1: int, n1: int, x2: int, n2: int, z: float = 1.96) -> tuple[float, float, float]:
    """Difference p1 - p2 with a Wald 95% interval (0-width when a group is empty)."""
    if n1 == 0 or n2 == 0:
        return 0.0, 0.0, 0.0
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p1 - p2
    return diff, diff - z * se, diff + z * se


def per_contacted(lift: float, lo: float, hi: float, contact_rate: float) -> dict | None:
    """The lift among the treated who were contacted (Bloom's estimator): the lift per
    assigned customer (intention to treat) over the share of the treatment group a message
    reached. Hold-outs are never contacted, and an assigned customer without a message
    (over budget, no contact, a cap) buys as their hold-out twin would, so the whole
    difference comes from the contacted. The interval scales the same way (the share is
    known, not estimated). None when nobody was contacted."""
    if contact_rate <= 0:
        return None
    return {"estimate": lift / contact_rate, "ci95": [lo / contact_rate, hi / contact_rate],
            "contact_rate": contact_rate}


def report(conn, campaign: Campaign) -> dict:
    send = min(campaign.send_dates)
    end = send + timedelta(days=campaign.measure_days)
    rows = conn.execute(
        """
        with people as (  -- one row per person as they are now (held out wins, as when planning)
            select coalesce(al.customer_id, ca.customer_id) as customer_id,
                   case when bool_or(ca.assigned_group = 'holdout') then 'holdout' else 'treatment' end
                       as assigned_group
            from outreach.campaign_assignments ca
            left join outreach.customer_aliases() al on al.alias_id = ca.customer_id
            where ca.campaign = %(c)s
            group by 1
        ),
        contacted as (  -- a campaign message the gateway took (or may have: unknown), by person
            select distinct coalesce(al.customer_id, l.customer_id) as customer_id
            from outreach.message_ledger l
            left join outreach.customer_aliases() al on al.alias_id = l.customer_id
            where l.campaign = %(c)s and l.status in ('accepted', 'unknown')
        )
        select a.assigned_group,
               count(*) as customers,
               count(*) filter (where a.customer_id in (select customer_id from contacted)) as contacted,
               count(*) filter (where exists (
                   select 1 from marts.fct_orders o where o.customer_id = a.customer_id and o.is_paid
                   and o.paid_date >= %(send)s and o.paid_date < %(end)s)) as converted,
               count(*) filter (where (
                   select count(*) from marts.fct_orders o where o.customer_id = a.customer_id and o.is_paid
                   and o.paid_date >= %(send)s and o.paid_date < %(end)s) >= 2) as repurchased,
               coalesce(sum((select sum(o.net_amount_cny) from marts.fct_orders o where o.customer_id = a.customer_id
                   and o.is_paid and o.paid_date >= %(send)s and o.paid_date < %(end)s)), 0) as revenue
        from people a
        group by a.assigned_group
        """,
        {"c": campaign.name, "send": send, "end": end},
    ).fetchall()
    empty = {"customers": 0, "contacted": 0, "converted": 0, "repurchased": 0, "revenue_cny": 0.0}
    groups = {r[0]: {"customers": r[1], "contacted": r[2], "converted": r[3], "repurchased": r[4],
                     "revenue_cny": float(r[5])} for r in rows}
    t, h = groups.get("treatment", dict(empty)), groups.get("holdout", dict(empty))
    lift, lo, hi = two_proportion_ci(t["converted"], t["customers"], h["converted"], h["customers"])
    rlift, rlo, rhi = two_proportion_ci(t["repurchased"], t["customers"], h["repurchased"], h["customers"])
    rate = t["contacted"] / t["customers"] if t["customers"] else 0.0
    sent = conn.execute("select channel, status, count(*) from outreach.message_ledger where campaign = %s"
                        " group by 1, 2 order by 1, 2", (campaign.name,)).fetchall()
    return {
        "campaign": campaign.name, "goal": campaign.goal, "window": [send.isoformat(), end.isoformat()],
        "treatment": t, "holdout": h,
        "conversion_rate": {"treatment": t["converted"] / t["customers"] if t["customers"] else None,
                            "holdout": h["converted"] / h["customers"] if h["customers"] else None},
        # per assigned customer (intention to treat), and per contacted customer where a
        # budget, a missing contact or the policy left part of the treatment group uncontacted
        "conversion_lift": {"estimate": lift, "ci95": [lo, hi]},
        "repurchase_lift": {"estimate": rlift, "ci95": [rlo, rhi]},
        "conversion_lift_per_contacted": per_contacted(lift, lo, hi, rate),
        "repurchase_lift_per_contacted": per_contacted(rlift, rlo, rhi, rate),
        "messages": [{"channel": c, "status": s, "count": n} for c, s, n in sent],
    }
