"""The call list ranked by expected value (issue 33 item 5; config/clv.yml call_list_rank)."""

from datetime import date

from crm_pipeline.outreach.calls import CallCandidate, CallConfig, select_calls

DAY = date(2026, 11, 21)
CONFIG = CallConfig(agents=(("a", "Agent A", 2), ("b", "Agent B", 2)), high_value_share=0.5,
                    lukewarm_phrases=("还行",))


def c(customer, value):
    return CallCandidate(customer, 1, f"o:{customer}", value, name=f"n{customer}", phone="+8613800000000")


def test_the_value_share_goes_by_clv_when_given_and_by_order_value_otherwise():
    # big orders from customers the model expects little from; small ones from the valuable
    cands = [c("big1", 900), c("big2", 800), c("small1", 50), c("small2", 40), c("x", 10), c("y", 5)]
    clv = {"big1": 30.0, "big2": 20.0, "small1": 2500.0, "small2": 1800.0, "x": 1.0}

    def valued(entries, reason):
        return [e.candidate.customer_id for e in entries if e.priority_reason == reason]

    assert valued(select_calls(cands, CONFIG, DAY), "order_value") == ["big1", "big2"]
    assert valued(select_calls(cands, CONFIG, DAY, clv), "expected_value") == ["small1", "small2"]
    # a customer the model did not score ("y") comes after every scored one; ties by order value
    everyone = select_calls(cands, CallConfig(agents=(("a", "A", 10),), high_value_share=1.0,
                                              lukewarm_phrases=()), DAY, clv)
    assert [e.candidate.customer_id for e in everyone][-1] == "y"
