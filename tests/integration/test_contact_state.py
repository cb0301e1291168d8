"""What a customer told us follows the person across identity changes (issue 31): an
opt-out told to an agent survives a merge that changes the customer's id, and both halves
of a split keep it; a TD reply from a customer's second phone stops marketing to the first;
the frequency cap and a campaign's hold-out count the person, whatever id they had.

Merges and splits happen the way they do in production: a manual identity rule
(`crm identity link|split`) and the next transform."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import MODEL_AS_OF
from helpers import rows

pytestmark = pytest.mark.integration
CN = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 10, 30, tzinfo=CN)


@pytest.fixture
def at_now(monkeypatch):
    from crm_pipeline import clock
    from crm_pipeline.settings import reload_settings

    monkeypatch.delenv("CRM_NOW", raising=False)
    reload_settings()
    clock.set_now(NOW)
    yield
    clock.set_now(None)


def _marketing_for(url, customers) -> list[tuple]:
    return rows(url, "select idempotency_key, customer_id, recipient from outreach.message_ledger"
                     " where message_class = 'marketing' and customer_id = any(%s)", list(customers))


def _nodes(url, customer) -> list[str]:
    return [r[0] for r in rows(url, "select distinct node_key from marts.customer_identities where customer_id = %s"
                                    " and identifier_type = 'platform_account' order by 1", customer)]


def _agent_opt_out(url, customer) -> None:
    rows(url, "insert into outreach.optouts (channel, customer_id, source, reason)"
              " values ('all', %s, 'call_outcome', 'told agent') returning 1", customer)


def _busy_customers(url, n: int) -> list[str]:
    """Customers the day's plan sends marketing to (so an opt-out visibly removes something)."""
    from crm_pipeline import pipeline

    pipeline.plan_outreach(MODEL_AS_OF, url)
    found = [r[0] for r in rows(url, "select distinct customer_id from outreach.message_ledger"
                                     " where message_class = 'marketing' order by 1")]
    assert len(found) >= n
    return found


def _replan(url) -> None:
    """Forget the day's plan and plan it again (a later night deciding the same messages)."""
    from crm_pipeline import pipeline

    rows(url, "delete from outreach.message_ledger returning 1")
    rows(url, "delete from outreach.suppressions returning 1")
    rows(url, "delete from ops.run_log where step like 'outreach:%%' returning 1")
    pipeline.plan_outreach(MODEL_AS_OF, url)


def test_an_agent_opt_out_survives_a_merge_that_changes_the_customer_id(modeled, clone_database, sandbox, at_now):
    from crm_pipeline import pipeline

    url = clone_database(modeled, "optout_merge")
    told = _busy_customers(url, 1)[0]
    # the customer it will merge into: an older single-node customer with a phone
    older = rows(url, """
        select c.customer_id from marts.dim_customers c
        join marts.customer_identities i on i.customer_id = c.customer_id and i.identifier_type = 'platform_account'
        where c.customer_id <> %s and c.phone_e164 is not null
        group by c.customer_id having count(*) = 1 and min(i.first_seen_at) < (
            select min(first_seen_at) from marts.customer_identities where customer_id = %s)
        order by c.customer_id limit 1""", told, told)[0][0]
    _agent_opt_out(url, told)
    rows(url, "delete from outreach.message_ledger returning 1")
    rows(url, "insert into ops.identity_rules (action, left_ref, right_ref, reason) values ('link', %s, %s, 'test')"
              " returning 1", _nodes(url, told)[0], _nodes(url, older)[0])
    pipeline.transform(MODEL_AS_OF, url=url)
    merged = rows(url, "select distinct customer_id from marts.customer_identities where node_key = %s",
                  _nodes(url, older)[0])[0][0]
    assert rows(url, "select count(*) from marts.dim_customers where customer_id = %s", told)[0][0] == 0, \
        "the merge gave the person another id"
    _replan(url)
    assert _marketing_for(url, [merged]) == []
    assert ("opted_out",) in rows(url, "select distinct rule from outreach.suppressions where customer_id = %s", merged)


def _record_call(url, customer, birthday, tags) -> None:
    """What an agent wrote on the call sheet, recorded as `crm calls import` records it."""
    from datetime import date

    from crm_pipeline.outreach.calls import Outcome, record_outcomes
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        record_outcomes(conn, [Outcome(date(2026, 11, 20), customer, 1, "agent-1", True, True, birthday, None,
                                       None, tags, False, None, 1, "test")], "test.xlsx")
        conn.commit()


def _enrichment(url, customer) -> tuple:
    got = rows(url, "select birthday, tags from marts.dim_customers where customer_id = %s", customer)
    assert got, customer
    return got[0]


def test_what_a_call_taught_follows_the_person_through_a_merge_and_a_split(modeled, clone_database):
    from datetime import date

    from crm_pipeline import pipeline

    url = clone_database(modeled, "enrich_follows")
    # merge: the called customer is absorbed into an older one and loses its id
    told, older = rows(url, """
        select c.customer_id, o.customer_id from marts.dim_customers c
        join marts.dim_customers o on o.first_order_at < c.first_order_at and o.customer_id <> c.customer_id
        where c.phone_e164 is not null
          and (select count(*) from marts.customer_identities i where i.customer_id = c.customer_id
               and i.identifier_type = 'platform_account') = 1
        order by c.customer_id, o.customer_id limit 1""")[0]
    _record_call(url, told, date(1990, 5, 1), "vip")
    rows(url, "insert into ops.identity_rules (action, left_ref, right_ref, reason) values ('link', %s, %s, 'test')"
              " returning 1", _nodes(url, told)[0], _nodes(url, older)[0])
    pipeline.transform(MODEL_AS_OF, url=url)
    merged = rows(url, "select distinct customer_id from marts.customer_identities where node_key = %s",
                  _nodes(url, older)[0])[0][0]
    assert rows(url, "select count(*) from marts.dim_customers where customer_id = %s", told)[0][0] == 0
    assert _enrichment(url, merged) == (date(1990, 5, 1), "vip")

    # split: a customer of two accounts (not the pair force-linked above), called on the phone
    # one account holds; after the split, that half keeps the answers and the other does not
    customer, phone = rows(url, """
        select c.customer_id, c.phone_e164 from marts.dim_customers c
        where c.phone_e164 is not null and c.customer_id <> %s and (select count(*) from marts.customer_identities i
              where i.customer_id = c.customer_id and i.identifier_type = 'platform_account') = 2
        order by 1 limit 1""", merged)[0]
    nodes = _nodes(url, customer)
    called = rows(url, "select node_key from marts.customer_identities where customer_id = %s"
                       " and identifier_type = 'phone' and identifier_value = %s order by node_key limit 1",
                  customer, phone)[0][0]
    other = next(n for n in nodes if n != called)
    _record_call(url, customer, date(1985, 1, 2), "gold")
    rows(url, "insert into ops.identity_rules (action, left_ref, reason) values ('split', %s, 'test') returning 1",
         other)
    pipeline.transform(MODEL_AS_OF, url=url)
    holder, = rows(url, "select customer_id from marts.customer_identities where node_key = %s"
                        " and identifier_type = 'platform_account'", called)[0]
    apart, = rows(url, "select customer_id from marts.customer_identities where node_key = %s"
                       " and identifier_type = 'platform_account'", other)[0]
    assert holder != apart
    assert _enrichment(url, holder) == (date(1985, 1, 2), "gold")
    assert _enrichment(url, apart) == (None, None)


def test_both_halves_of_a_split_keep_an_agent_opt_out(modeled, clone_database, sandbox, at_now):
    from crm_pipeline import pipeline

    url = clone_database(modeled, "optout_split")
    two = rows(url, """
        select customer_id from marts.customer_identities where identifier_type = 'platform_account'
        group by customer_id having count(*) >= 2 order by customer_id limit 1""")
    assert two, "the world has customers unified from two accounts"
    customer = two[0][0]
    nodes = _nodes(url, customer)
    _agent_opt_out(url, customer)
    rows(url, "insert into ops.identity_rules (action, left_ref, reason) values ('split', %s, 'test') returning 1",
         nodes[-1])
    pipeline.transform(MODEL_AS_OF, url=url)
    halves = {r[0] for r in rows(url, "select customer_id from marts.customer_identities where node_key = any(%s)",
                                 nodes)}
    assert len(halves) == 2, "the split rule made two customers"
    _replan(url)
    assert _marketing_for(url, halves) == []
    from crm_pipeline.outreach.ledger import load_optouts
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        blocked = {o.customer_id for o in load_optouts(conn) if o.customer_id}
    assert halves <= blocked

    # undoing the rule (crm identity undo) makes them one customer again, still opted out
    rows(url, "update ops.identity_rules set active = false where action = 'split' returning 1")
    pipeline.transform(MODEL_AS_OF, url=url)
    assert len({r[0] for r in rows(url, "select customer_id from marts.customer_identities"
                                        " where node_key = any(%s)", nodes)}) == 1


def test_a_td_reply_from_the_second_phone_stops_marketing_to_the_first(modeled, clone_database, at_now):
    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "optout_second_phone")
    found = rows(url, """
        select c.customer_id, c.phone_e164, i.identifier_value
        from marts.dim_customers c
        join marts.customer_identities i on i.customer_id = c.customer_id and i.identifier_type = 'phone'
        where i.identifier_value <> c.phone_e164 order by c.customer_id limit 1""")
    assert found, "the world has customers who order with two phones"
    customer, primary, secondary = found[0]
    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")

    def care(day: int) -> Proposal:
        return Proposal(Candidate(f"care:{customer}:{day}:sms", "care", "sms", customer, primary, NOW), "care",
                        {"name": "王芳"})

    with connect(url) as conn:  # planned to the first phone before the reply comes in
        assert plan(conn, [care(1)], policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活").planned == 1
    rows(url, "insert into outreach.optouts (channel, contact, source, reason) values ('sms', %s, 'td_reply', 'TD')"
              " returning 1", secondary)
    # at send time: the pending message to the first phone is flagged (the pusher cancels it)
    assert rows(url, "select opted_out from outreach.v_outbound_pending where customer_id = %s", customer) == [(True,)]
    # at planning: nothing new to either phone
    with connect(url) as conn:
        stats = plan(conn, [care(2)], policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
    assert stats.planned == 0 and stats.suppressed == {"opted_out": 1}
    # the opt-out was given on SMS only: e-mail marketing to the person is not stopped by it
    with connect(url) as conn:
        mail = Proposal(Candidate(f"care:{customer}:3:email", "care", "email", customer, "x@example.com", NOW),
                        "care", {"name": "王芳"})
        decided = plan(conn, [mail], policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
    assert "opted_out" not in decided.suppressed


def test_the_frequency_cap_counts_messages_sent_under_an_id_the_person_no_longer_has(warehouse):
    """R14: yesterday's message went to this phone under another customer id (before a merge):
    today's marketing to the same phone is capped."""
    from datetime import timedelta

    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")
    yesterday = NOW - timedelta(days=1)

    def care(customer, at):
        return Proposal(Candidate(f"care:{customer}:{at:%Y%m%d}:sms", "care", "sms", customer, "+8613912340000", at),
                        "care", {"name": "王芳"})

    with connect(warehouse) as conn:
        plan(conn, [care("OLD_ID", yesterday)], policy, yesterday, MODEL_AS_OF, cfg / "templates", "悦己生活")
    with connect(warehouse) as conn:
        stats = plan(conn, [care("NEW_ID", NOW)], policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
    assert stats.planned == 0 and stats.suppressed == {"frequency_cap": 1}


def test_marketing_needs_the_buyers_consent_where_the_shop_requires_it(modeled, clone_database, sandbox, at_now):
    """Issue 31 §2: a Shopify shop's marketing needs an opt-in (shops.yml default). A buyer who
    never opted in gets no marketing (no_consent) but still their shipment notice; one who
    opted in gets both; one who withdrew is opted out, and a message planned before the
    withdrawal is cancelled when it would leave."""
    from crm_pipeline import pipeline
    from crm_pipeline.outreach.ledger import Proposal, plan
    from crm_pipeline.outreach.policy import Candidate, load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "consent")
    picks = {}
    for consent in ("not_granted", "granted"):
        found = rows(url, """
            select c.customer_id, c.phone_e164, o.order_key
            from marts.customer_consent k
            join marts.dim_customers c using (customer_id)
            join lateral (select order_key, shop_id from marts.fct_orders f where f.customer_id = c.customer_id
                          order by f.created_at desc, f.order_key desc limit 1) o on true
            where k.channel = 'sms' and k.consent = %s and o.shop_id = 'shopify_global'
              and c.phone_e164 is not null
            order by c.customer_id limit 1""", consent)
        assert found, f"the world has a Shopify buyer whose SMS consent is {consent}"
        picks[consent] = found[0]
    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")

    def care(customer, phone, n=1):
        return Proposal(Candidate(f"care:{customer}:{n}:sms", "care", "sms", customer, phone, NOW), "care",
                        {"name": "王芳"})

    def notice(customer, phone, order_key):
        return Proposal(Candidate(f"shipment_notice:{order_key}:sms", "shipment_notice", "sms", customer, phone, NOW),
                        "shipment_notice", {"carrier": "顺丰速运", "tracking_no": "SF1"}, order_key)

    with connect(url) as conn:
        stats = plan(conn, [care(*picks["not_granted"][:2]), notice(*picks["not_granted"]),
                            care(*picks["granted"][:2]), notice(*picks["granted"])],
                     policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
    assert stats.suppressed == {"no_consent": 1} and stats.planned == 3
    no_consent = picks["not_granted"][0]
    assert rows(url, "select message_type from outreach.message_ledger where customer_id = %s", no_consent) == \
        [("shipment_notice",)]
    assert rows(url, "select rule from outreach.suppressions where customer_id = %s", no_consent) == [("no_consent",)]

    # the opted-in buyer unsubscribes on Shopify before their care note leaves: the latest fact wins
    granted = picks["granted"][0]
    rows(url, "update marts.customer_consent set consent = 'withdrawn', platform_state = 'unsubscribed'"
              " where customer_id = %s and channel = 'sms' returning 1", granted)
    pipeline.push_due(url)
    assert rows(url, "select status from outreach.message_ledger where idempotency_key = %s",
                f"care:{granted}:1:sms") == [("cancelled",)]
    assert rows(url, "select rule from outreach.suppressions where idempotency_key = %s",
                f"care:{granted}:1:sms") == [("opted_out",)]
    with connect(url) as conn:
        again = plan(conn, [care(*picks["granted"][:2], n=2)], policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
    assert again.suppressed == {"opted_out": 1}


def test_a_campaign_budget_pays_only_for_messages_that_may_leave(modeled, clone_database, at_now, tmp_path):
    """A buyer who never opted in (where the shop needs it), or whom a frequency cap stops
    (a marketing SMS the day before), is proposed so that the policy records the
    suppression, but takes nothing from the channel's budget: a budget of N plans N
    messages as long as N buyers the policy lets through are left (the demo's SMS budget
    of 400 went to 326 messages, 51 no-consent and 23 frequency-cap suppressions)."""
    from datetime import timedelta

    from crm_pipeline.outreach.campaigns import load_campaign, plan_campaign
    from crm_pipeline.outreach.ledger import plan, policy_screen
    from crm_pipeline.outreach.policy import load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")
    send_day = MODEL_AS_OF + timedelta(days=1)

    def run(budget: int, capped: list[tuple[str, str]] = ()) -> tuple[list[str], dict]:
        url = clone_database(modeled, f"budget{budget}")
        path = tmp_path / f"budget_{budget}.yml"
        path.write_text(
            "name: budget_test\ngoal: test\nstart_date: 2026-11-18\nend_date: 2026-11-30\n"
            f"send_dates: [{send_day.isoformat()}]\nsend_time: '10:00'\n"
            "audience: {min_paid_orders: 1}\n"
            f"channels: {{sms: {{budget: {budget}, template: campaign_vip_thanks}}}}\nholdout: 0.0\n",
            encoding="utf-8")
        campaign = load_campaign(path)
        with connect(url) as conn:
            for customer, phone in capped:  # another shop campaign's SMS, accepted yesterday
                conn.execute(
                    "insert into outreach.message_ledger (idempotency_key, message_type, message_class, channel,"
                    " customer_id, recipient, template, params, body, as_of_date, send_after, expires_at, timezone,"
                    " status) values (%s, 'campaign', 'marketing', 'sms', %s, %s, 't', '{}', 'b', %s, %s, %s,"
                    " 'Asia/Shanghai', 'accepted')",
                    (f"planted:{customer}", customer, phone, MODEL_AS_OF, NOW - timedelta(days=1), NOW))
            proposals, _ = plan_campaign(conn, campaign, send_day, "Asia/Shanghai",
                                         screen=policy_screen(conn, policy, NOW, MODEL_AS_OF))
            stats = plan(conn, proposals, policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
        ledger = {r[0] for r in rows(url, "select customer_id from outreach.message_ledger"
                                          " where campaign = 'budget_test'")}
        # planned, most valuable first (the campaign's order)
        return [p.candidate.customer_id for p in proposals if p.candidate.customer_id in ledger], stats.suppressed

    unlimited, suppressed = run(100_000)
    assert suppressed.get("no_consent", 0) > 0, "the world has buyers who never opted in"
    # the three most valuable buyers the policy let through are capped by a message yesterday
    url = clone_database(modeled, "budget_phones")
    phone = dict(rows(url, "select customer_id, phone_e164 from marts.dim_customers where customer_id = any(%s)",
                      unlimited[:3]))
    capped = [(c, phone[c]) for c in unlimited[:3]]
    budget = len(unlimited) - len(capped) - 1
    planned, suppressed = run(budget, capped)
    assert len(planned) == budget, "every budgeted message may leave"
    assert not set(planned) & {c for c, _ in capped}
    assert suppressed.get("frequency_cap", 0) >= len(capped) and suppressed.get("no_consent", 0) > 0


def test_a_planned_wave_takes_nobody_new_on_a_rerun(modeled, clone_database, at_now, tmp_path):
    """R22: once a wave is planned its treatment and hold-out groups are fixed. A rerun of
    the night after more buyers became eligible (here: the audience widened) plans and
    assigns nobody new, so the lift compares people who were contacted with people who
    were held out."""
    from datetime import timedelta

    from crm_pipeline.outreach.campaigns import load_campaign, plan_campaign
    from crm_pipeline.warehouse import connect

    url = clone_database(modeled, "wave")
    send_day = MODEL_AS_OF + timedelta(days=1)

    def campaign(min_orders: int):
        path = tmp_path / f"wave_{min_orders}.yml"
        path.write_text(
            "name: wave_test\ngoal: test\nstart_date: 2026-11-18\nend_date: 2026-11-30\n"
            f"send_dates: [{send_day.isoformat()}]\nsend_time: '10:00'\n"
            f"audience: {{min_paid_orders: {min_orders}}}\n"
            "channels: {sms: {budget: 100000, template: campaign_vip_thanks}}\nholdout: 0.2\n", encoding="utf-8")
        return load_campaign(path)

    with connect(url) as conn:
        first, facts = plan_campaign(conn, campaign(3), send_day, "Asia/Shanghai")
    assigned = rows(url, "select count(*) from outreach.campaign_assignments where campaign = 'wave_test'")[0][0]
    assert first and assigned == facts["audience"]
    with connect(url) as conn:
        again, later = plan_campaign(conn, campaign(1), send_day, "Asia/Shanghai")
    assert later["audience"] > facts["audience"]
    assert rows(url, "select count(*) from outreach.campaign_assignments where campaign = 'wave_test'")[0][0] == assigned
    assert {p.candidate.customer_id for p in again} == {p.candidate.customer_id for p in first}
    assert later["joined_after_planning"] == later["audience"] - assigned


def test_the_campaign_report_counts_who_was_contacted(modeled, clone_database, at_now, tmp_path):
    """R22 with a budget that reaches part of the treatment group: the report's lift per
    assigned customer and per contacted customer (Bloom: over the share reached) equal the
    figures computed here from the assignments, the ledger and the planted purchases."""
    from datetime import timedelta

    from crm_pipeline.outreach.campaigns import load_campaign, plan_campaign, report
    from crm_pipeline.outreach.ledger import plan, policy_screen
    from crm_pipeline.outreach.policy import load_policy
    from crm_pipeline.settings import get_settings
    from crm_pipeline.warehouse import connect

    cfg = get_settings().config_dir
    policy = load_policy(cfg / "policy.yml")
    send_day = MODEL_AS_OF + timedelta(days=1)
    url = clone_database(modeled, "reach")
    path = tmp_path / "reach.yml"
    path.write_text(
        "name: reach_test\ngoal: test\nstart_date: 2026-11-18\nend_date: 2026-11-30\n"
        f"send_dates: [{send_day.isoformat()}]\nsend_time: '10:00'\naudience: {{min_paid_orders: 1}}\n"
        "channels: {sms: {budget: 120, template: campaign_vip_thanks}}\nholdout: 0.3\n", encoding="utf-8")
    campaign = load_campaign(path)
    with connect(url) as conn:
        proposals, _ = plan_campaign(conn, campaign, send_day, "Asia/Shanghai", screen=policy_screen(conn, policy, NOW, MODEL_AS_OF))
        plan(conn, proposals, policy, NOW, MODEL_AS_OF, cfg / "templates", "悦己生活")
        conn.execute("update outreach.message_ledger set status = 'accepted' where campaign = 'reach_test'")
        # one the gateway refused: no contact
        failed = conn.execute("update outreach.message_ledger set status = 'failed' where idempotency_key ="
                              " (select min(idempotency_key) from outreach.message_ledger where campaign = 'reach_test')"
                              " returning customer_id").fetchone()[0]
    groups = dict(rows(url, "select customer_id, assigned_group from outreach.campaign_assignments"
                            " where campaign = 'reach_test'"))
    contacted = {r[0] for r in rows(url, "select customer_id from outreach.message_ledger"
                                         " where campaign = 'reach_test'")} - {failed}
    treated = sorted(c for c, g in groups.items() if g == "treatment")
    held = sorted(c for c, g in groups.items() if g == "holdout")
    reached, unreached = [c for c in treated if c in contacted], [c for c in treated if c not in contacted]
    assert len(reached) == 119 and unreached and held, (len(reached), len(unreached), len(held))
    # purchases in the measuring window: a fifth of the reached, a tenth of the rest
    buyers = reached[::5] + unreached[::10] + held[::10]
    with connect(url) as conn:
        for n, customer in enumerate(buyers):
            conn.execute(
                "insert into marts.fct_orders select (jsonb_populate_record(null::marts.fct_orders,"
                " to_jsonb(o) || jsonb_build_object('order_key', %s::text, 'customer_id', %s::text, 'is_paid', true,"
                " 'paid_date', %s::date))).* from marts.fct_orders o limit 1",
                (f"planted:{n}", customer, send_day + timedelta(days=3)))
    with connect(url) as conn:
        got = report(conn, campaign)
    t_rate = (len(reached[::5]) + len(unreached[::10])) / len(treated)
    h_rate = len(held[::10]) / len(held)
    share = len(reached) / len(treated)
    assert got["treatment"]["customers"] == len(treated) and got["treatment"]["contacted"] == len(reached)
    assert got["conversion_lift"]["estimate"] == pytest.approx(t_rate - h_rate)
    assert got["conversion_lift_per_contacted"]["contact_rate"] == pytest.approx(share)
    assert got["conversion_lift_per_contacted"]["estimate"] == pytest.approx((t_rate - h_rate) / share)
