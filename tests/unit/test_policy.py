"""The contact policy (R5, R13, R14): table-driven cases and properties on random histories."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.outreach.policy import (
    Candidate,
    Contact,
    OptOut,
    decide,
    end_of_quiet_hours,
    in_quiet_hours,
    load_policy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "config" / "policy.yml")
CN = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 10, 30, tzinfo=CN)


def cand(key="k1", mtype="campaign", channel="sms", customer="C1", recipient="+8613800001111", earliest=NOW, **kw):
    return Candidate(key=key, message_type=mtype, channel=channel, customer_id=customer, recipient=recipient,
                     earliest=earliest, **kw)


def only(decisions):
    assert len(decisions) == 1
    return decisions[0]


@pytest.mark.parametrize("case, candidate, optouts, history, rule", [
    ("plain marketing goes out", cand(), [], [], None),
    ("opted out by customer on the channel", cand(), [OptOut("sms", customer_id="C1")], [], "opted_out"),
    ("opted out on all channels", cand(), [OptOut("all", customer_id="C1")], [], "opted_out"),
    ("opted out by phone (TD reply)", cand(), [OptOut("sms", contact="+8613800001111")], [], "opted_out"),
    ("opt-out on email does not block sms", cand(), [OptOut("email", customer_id="C1")], [], None),
    ("transactional respects opt-out by default", cand(mtype="shipment_notice"), [OptOut("sms", customer_id="C1")],
     [], "opted_out"),
    ("no phone", cand(recipient=None), [], [], "no_contact"),
    ("a mainland landline takes no SMS", cand(recipient="+862038886666"), [], [], "no_contact"),
    ("a landline abroad takes no SMS", cand(mtype="shipment_notice", recipient="+442071838750"), [], [], "no_contact"),
    ("a US number may be a mobile", cand(recipient="+14155550123"), [], [], None),
    ("marketed yesterday", cand(), [], [Contact("C1", "sms", "marketing", NOW - timedelta(days=1))], "frequency_cap"),
    ("marketed 3 days ago is fine", cand(), [], [Contact("C1", "sms", "marketing", NOW - timedelta(days=3))], None),
    ("overall cap across channels", cand(channel="email", recipient="a@b.cn"), [],
     [Contact("C1", "sms", "marketing", NOW - timedelta(hours=20))], "frequency_cap"),
    ("transactional is not capped", cand(mtype="shipment_notice"), [],
     [Contact("C1", "sms", "marketing", NOW - timedelta(hours=2))], None),
    ("too late for its window", cand(mtype="payment_reminder_flash", earliest=NOW - timedelta(hours=5)), [], [],
     "expired"),
])
def test_policy_table(case, candidate, optouts, history, rule):
    decision = only(decide([candidate], POLICY, NOW, optouts, history))
    assert decision.rule == rule, case
    if rule is None:
        assert decision.send_after is not None and not in_quiet_hours(decision.send_after, POLICY)


def test_quiet_hours_defer_to_nine_in_the_customers_zone():
    night = datetime(2026, 11, 21, 22, 15, tzinfo=CN)
    d = only(decide([cand(mtype="shipment_notice", earliest=night)], POLICY, night))
    assert d.sent and d.send_after == datetime(2026, 11, 22, 9, 0, tzinfo=CN)
    # a customer in Europe: 22:15 Shanghai is 15:15 in Berlin, not quiet there
    d = only(decide([cand(mtype="shipment_notice", earliest=night, timezone="Europe/Berlin")], POLICY, night))
    assert d.send_after == night


def test_quiet_hours_boundaries():
    assert in_quiet_hours(datetime(2026, 1, 1, 21, 0, tzinfo=CN), POLICY)
    assert in_quiet_hours(datetime(2026, 1, 1, 8, 59, tzinfo=CN), POLICY)
    assert not in_quiet_hours(datetime(2026, 1, 1, 9, 0, tzinfo=CN), POLICY)
    assert end_of_quiet_hours(datetime(2026, 1, 1, 3, 0, tzinfo=CN), POLICY) == datetime(2026, 1, 1, 9, 0, tzinfo=CN)


def test_one_marketing_message_a_day_the_highest_priority_wins():
    decisions = decide([cand("a", "campaign"), cand("b", "birthday"), cand("c", "shipment_notice")], POLICY, NOW)
    by = {d.candidate.key: d for d in decisions}
    assert by["b"].sent and by["c"].sent  # birthday (priority 15) beats the campaign (60); transactional unaffected
    assert by["a"].rule == "lower_priority"


def test_unknown_message_type_is_a_configuration_error():
    with pytest.raises(KeyError, match="policy"):
        decide([cand(mtype="mystery")], POLICY, NOW)


# -- properties --------------------------------------------------------------------------------
customers = st.sampled_from(["C1", "C2", "C3"])
channels = st.sampled_from(["sms", "email"])
types = st.sampled_from(["campaign", "birthday", "care", "cadence_d7", "shipment_notice", "payment_reminder"])
offsets = st.integers(min_value=-72, max_value=72)


@st.composite
def scenario(draw):
    n = draw(st.integers(1, 25))
    cands = []
    for i in range(n):
        cands.append(cand(key=f"k{i}", mtype=draw(types), channel=draw(channels), customer=draw(customers),
                          recipient=draw(st.sampled_from(["+8613800000001", "+8613800000002", "a@b.cn", None])),
                          earliest=NOW + timedelta(hours=draw(offsets))))
    history = [Contact(draw(customers), draw(channels), "marketing", NOW + timedelta(hours=draw(offsets)))
               for _ in range(draw(st.integers(0, 6)))]
    optouts = [OptOut(draw(st.sampled_from(["sms", "email", "all"])), customer_id=draw(customers))
               for _ in range(draw(st.integers(0, 2)))]
    optouts += [OptOut("sms", contact="+8613800000002")] if draw(st.booleans()) else []
    return cands, history, optouts


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_no_opted_out_customer_ever_receives_marketing(s):
    cands, history, optouts = s
    for d in decide(cands, POLICY, NOW, optouts, history):
        c = d.candidate
        blocked = any(o.channel in (c.channel, "all") and (o.customer_id == c.customer_id or
                      (o.contact is not None and o.contact == c.recipient)) for o in optouts)
        if blocked:
            assert not d.sent


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_every_cap_holds_and_nothing_is_sent_in_quiet_hours(s):
    cands, history, optouts = s
    decisions = decide(cands, POLICY, NOW, optouts, history)
    sent = [d for d in decisions if d.sent]
    for d in sent:
        assert not in_quiet_hours(d.send_after, POLICY)
        assert d.send_after >= NOW
    marketing = [(d.candidate.customer_id, d.candidate.key, d.send_after) for d in sent
                 if POLICY.rule(d.candidate.message_type).message_class == "marketing"]
    window = timedelta(days=POLICY.overall_cap.days)
    for customer, key, at in marketing:
        close = [m for m in marketing if m[1] != key and m[0] == customer and abs(m[2] - at) < window]
        prior = [h for h in history if h.customer_id == customer and abs(h.at - at) < window]
        assert len(close) + len(prior) < POLICY.overall_cap.max_messages, (customer, at)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_every_candidate_gets_exactly_one_decision_with_a_reason_when_not_sent(s):
    cands, history, optouts = s
    decisions = decide(cands, POLICY, NOW, optouts, history)
    assert sorted(d.candidate.key for d in decisions) == sorted(c.key for c in cands)
    for d in decisions:
        assert d.sent or d.rule in {"opted_out", "no_contact", "quiet_hours", "expired", "lower_priority",
                                    "frequency_cap"}


def test_a_typo_in_triggers_yml_is_an_error_that_names_it(tmp_path):
    from crm_pipeline.outreach.triggers import DEFAULTS, load_trigger_config

    shipped = load_trigger_config()  # the file in config/ parses and names only known settings
    assert set(shipped) == set(DEFAULTS)
    bad = tmp_path / "triggers.yml"
    bad.write_text("care:\n  send_hours: 15\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"care: unknown setting\(s\) \['send_hours'\]"):
        load_trigger_config(bad)
    bad.write_text("birthdays:\n  enabled: false\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown section 'birthdays'"):
        load_trigger_config(bad)
