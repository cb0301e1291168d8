"""The daily report reads right: round axis ticks, "too early" for campaigns without results, keys in tooltips."""

from datetime import date

from crm_pipeline.reporting import charts as ch
from crm_pipeline.reporting.report import _campaign_row, _margin, _margin_notes


def pct(v):
    return f"{float(v or 0) * 100:.1f}%"


def campaign(treated=800, holdout=80, converted=(40, 2), window=("2026-11-21", "2026-12-05"), messages=()):
    return {"messages": [{"channel": "sms", "status": s, "count": n} for s, n in messages],"campaign": "vip_thanks", "goal": "win back", "window": list(window),
            "treatment": {"customers": treated, "converted": converted[0]},
            "holdout": {"customers": holdout, "converted": converted[1]},
            "conversion_rate": {"treatment": converted[0] / treated if treated else None,
                                "holdout": converted[1] / holdout if holdout else None},
            "conversion_lift": {"estimate": 0.025, "ci95": [0.001, 0.049]}}


def test_a_campaign_without_results_is_too_early_not_zero():
    assert str(_campaign_row(campaign(), date(2026, 11, 20), pct)[4]) == "太早，尚未发送"
    assert str(_campaign_row(campaign(treated=0, holdout=0, converted=(0, 0)), date(2026, 12, 20), pct)[4]) \
        == "太早，尚未发送"
    # messages the gateways took before the measuring window opens: not "not sent"
    sent = _campaign_row(campaign(messages=(("accepted", 760), ("cancelled", 40))), date(2026, 11, 20), pct)
    assert str(sent[4]) == "太早，已发送 760 条，观察期从 2026-11-21 开始"
    measuring = _campaign_row(campaign(), date(2026, 11, 30), pct)
    assert str(measuring[4]) == "太早，观察期到 2026-12-05" and measuring[2] == "5.0%"
    done = _campaign_row(campaign(), date(2026, 12, 6), pct)
    assert done[4] == "+2.5 个百分点" and done[5] == "[+0.1, +4.9]"


def test_axis_ticks_are_round_numbers():
    for high in (816.5, 37.2, 12_345.0, 0.37, 2_500_000.0):
        ticks = ch.nice_ticks(0, high)
        step = ticks[1] - ticks[0]
        assert ticks[0] == 0 and ticks[-1] >= high and len(ticks) <= 6
        assert any(abs(step / 10 ** k - m) < 1e-9 for k in range(-3, 8) for m in (1, 2, 2.5, 5)), (high, ticks)
    svg = ch.lines({ch.Term("新客", "new"): [("a", 816.5), ("b", 12.0)]})
    assert ">816.50<" not in svg and ">1k<" in svg and "<title>new</title>新客" in svg


def test_tables_show_chinese_with_the_key_in_a_tooltip():
    html = ch.table(["分群", "客户数"], [[ch.Term("重要价值客户", "champions"), 3]])
    assert "<td title='champions'>重要价值客户</td>" in html


def test_no_margin_is_shown_where_no_order_has_a_cost():
    """A platform none of whose paid orders has a catalog cost would show its revenue as
    margin: it shows "—"; a partly costed one says how much is costed."""
    assert str(_margin(315_000.0, 0)) == "—"
    assert str(_margin(315_000.0, None)) == "—"
    partly = _margin(1200.0, 0.5)
    assert str(partly) == "1.2k" and partly.key == "50% of paid orders have a cost"
    assert _margin(1200.0, 1) == 1200.0


def test_the_page_says_where_margin_leaves_out_unknown_costs():
    totals = [("shopify", 10, 1000.0, 400.0, 1), ("intake", 5, 500.0, 450.0, 0.4), ("jd", 3, 300.0, 300.0, 0)]
    notes = _margin_notes(totals)
    assert "有成本的付款订单占比：表格导入 40%。" in notes and "毛利“—”：京东的付款订单都没有商品成本。" in notes
    assert "seeds/product_catalog.csv" in notes
    assert _margin_notes([("shopify", 10, 1000.0, 400.0, 1)]) == ""


def test_the_clv_section_gives_its_reasons_in_chinese():
    """The CLV run keeps English details for the data team (clv.fits, clv.backtests); the
    report's readers get the reason in Chinese, the detail only as a tooltip."""
    import re

    from crm_pipeline.clv.config import ClvConfig
    from crm_pipeline.reporting.clv_section import render_clv

    small = "12 repeat buyer(s) among 80 customers; the models need at least 100 (min_repeat_buyers in config/clv.yml)"
    flat = "Gamma-Gamma q and gamma ran off together: spend does not vary between customers beyond chance"
    late = "150 customers in fitted populations before 2026-09-25; a backtest needs 200 (backtest_min_customers)"
    fits = [("shop:big", "fitted", flat, 500, 300, 0.5, 10.0, 0.2, 2.0, 6.0, 201.0, 2000.0, 0.05),
            ("shop:small", "not_enough_data", small, 80, 12, None, None, None, None, None, None, None, None)]
    backtest = (date(2026, 9, 25), "not_enough_data", late, 150, None, None, None, None, None, None, None, [])
    # today's config differs from the run's: the page says what the run used (its detail)
    html = render_clv({"backtest": backtest, "fits": fits, "totals": None,
                       "config": ClvConfig(min_repeat_buyers=50, backtest_min_customers=80)})
    visible = re.sub(r"title='[^']*'", "", html)
    assert "repeat buyer" not in visible and "ran off" not in visible and "a backtest needs" not in visible
    assert "复购客户 12 位，模型至少需要 100 位" in visible
    assert "总体平均 ¥60.00" in visible  # p * gamma / (q - 1) = 6 * 2000 / 200
    assert "回测至少需要 200 位" in visible
    assert small in html and late in html  # the detail stays, as a tooltip


def test_the_weekly_charts_start_on_a_whole_week():
    """The 90-day weekly charts group by ISO week (Monday): starting them 89 days back cut
    the first week short, and its bar looked like a dip. They start on the first Monday."""
    from datetime import timedelta

    from crm_pipeline.reporting.report import chart_start

    for k in range(14):
        as_of = date(2026, 11, 20) + timedelta(days=k)
        start = chart_start(as_of)
        assert start.weekday() == 0, (as_of, start)
        assert as_of - timedelta(days=89) <= start < as_of - timedelta(days=82), (as_of, start)


def test_a_campaign_that_reached_part_of_its_group_shows_the_lift_per_contacted():
    """A budget that reaches 40% of the treatment group: the lift per assigned customer
    (+2.0 points) is 40% of what a message did (+5.0 per contacted customer, Bloom)."""
    from crm_pipeline.outreach.campaigns import per_contacted

    c = campaign()
    c["conversion_lift"] = {"estimate": 0.02, "ci95": [0.004, 0.036]}
    c["conversion_lift_per_contacted"] = per_contacted(0.02, 0.004, 0.036, 0.4)
    row = _campaign_row(c, date(2026, 12, 6), pct)
    assert str(row[4]) == "+2.0 个百分点；按收到消息的客户 +5.0"
    assert str(row[5]) == "[+0.4, +3.6]；[+1.0, +9.0]" and "40%" in row[5].key
    c["conversion_lift_per_contacted"] = per_contacted(0.02, 0.004, 0.036, 1.0)  # everyone reached: one figure
    assert _campaign_row(c, date(2026, 12, 6), pct)[4] == "+2.0 个百分点"
    assert per_contacted(0.02, 0.0, 0.04, 0.0) is None
