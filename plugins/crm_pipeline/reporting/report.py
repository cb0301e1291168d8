"""The morning report (seed 000 §10): out/<date>/report.html, one self-contained file.

Every figure is read from the warehouse (marts, outreach, ops). Charts are
inline SVG: the file opens offline, in a mail client or on a phone.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from html import escape
from pathlib import Path

from crm_pipeline.extract.freshness import recorded_stale
from crm_pipeline.extract.shops import status
from crm_pipeline.load.quarantine import summarize
from crm_pipeline.reporting import charts as ch
from crm_pipeline.reporting.clv_section import gather_clv, render_clv
from crm_pipeline.settings import get_settings

COHORT_MONTHS = 6  # months after the first order the report's cohort table shows

STAGE_ORDER = ["prospect", "new", "returning", "loyal", "win_back", "at_risk", "churned"]
CHECKPOINTS_ZH = {"raw_landing": "落地数据检查", "outbound": "外发前检查"}


def _q(conn, sql: str, *args):
    return conn.execute(sql, args).fetchall()


def chart_start(as_of: date) -> date:
    """The first Monday of the last 90 days up to ``as_of``."""
    first = as_of - timedelta(days=89)
    return first + timedelta(days=(7 - first.weekday()) % 7)


def gather(conn, as_of: date) -> dict:
    """All numbers the report shows (also useful as JSON for other tools)."""
    # the weekly charts' 90 days start on a Monday (ISO weeks, as date_trunc('week') counts
    # them), so the first bar is a whole week and does not look like a dip
    start = chart_start(as_of)
    d: dict = {"as_of": as_of.isoformat(), "chart_start": start.isoformat()}
    d["headline"] = dict(zip(
        ["customers", "paying_customers", "revenue_cny", "paid_orders"],
        _q(conn, "select count(*), count(*) filter (where paid_orders > 0), coalesce(sum(net_revenue_cny), 0),"
                 " coalesce(sum(paid_orders), 0) from marts.dim_customers")[0], strict=True))
    d["yesterday"] = dict(zip(["orders_created", "orders_paid", "revenue_cny", "new_customers", "returning_customers"],
                              (_q(conn, "select orders_created, orders_paid, revenue_cny, new_customers,"
                                        " returning_customers from marts.kpi_daily where kpi_date = %s", as_of)
                               or [(0, 0, 0, 0, 0)])[0], strict=True))
    d["platform_daily"] = _q(conn, """
        select date_trunc('week', paid_date)::date as wk, platform, count(*), sum(net_amount_cny)
        from marts.fct_orders where is_paid and paid_date between %s and %s group by 1, 2 order by 1, 2""",
                             start, as_of)
    # the same weeks as the chart above it; margin is revenue less the lines' catalog cost:
    # a platform none of whose paid orders has a cost (spreadsheet shops selling products
    # not in product_catalog) has no margin
    d["platform_totals"] = _q(conn, """
        select platform, count(*), sum(net_amount_cny), sum(net_amount_cny - cost_cny),
               avg(case when cost_cny > 0 then 1.0 else 0 end)
        from marts.fct_orders where is_paid and paid_date between %s and %s
        group by 1 order by 3 desc""", start, as_of)
    d["new_vs_returning"] = _q(conn, """
        select to_char(date_trunc('week', kpi_date), 'MM-DD'), sum(new_customers), sum(returning_customers)
        from marts.kpi_daily where kpi_date between %s and %s
        group by date_trunc('week', kpi_date) order by date_trunc('week', kpi_date)""", start, as_of)
    d["rfm"] = _q(conn, "select segment, count(*), round(avg(monetary_cny), 0) from marts.customer_rfm"
                        " group by 1 order by 2 desc")
    d["rfm_moves"] = _q(conn, "select previous_segment, segment, count(*) from marts.customer_rfm_changes"
                              " where as_of_date = %s group by 1, 2 order by 3 desc limit 12", as_of)
    d["stages"] = dict(_q(conn, "select stage, count(*) from marts.customer_lifecycle group by 1"))
    # a purchase that keeps the stage (loyal -> loyal) starts a new row but is no change
    d["transitions"] = _q(conn, "select transition, count(*) from marts.customer_lifecycle_history"
                                " where valid_from_date between %s and %s"
                                " and stage is distinct from previous_stage group by 1 order by 2 desc limit 12",
                          as_of - timedelta(days=29), as_of)
    d["stage_trend"] = _q(conn, "select kpi_date, stage, customers from marts.lifecycle_daily"
                                " where kpi_date between %s and %s and extract(dow from kpi_date) = 1"
                                " order by 1", as_of - timedelta(days=365), as_of)
    d["pareto"] = _q(conn, "select cum_customer_share, cum_revenue_share from marts.customer_pareto"
                           " order by revenue_rank")
    d["pareto_summary"] = (_q(conn, "select top_20pct_revenue_share, customer_share_for_80pct_revenue, paying_customers"
                                    " from marts.kpi_pareto") or [(0, 0, 0)])[0]
    d["tiers"] = _q(conn, "select t.tier, count(*), th.threshold_cny from marts.customer_tiers t"
                          " join marts.customer_tier_thresholds th on th.tier = t.tier group by 1, 3 order by 3")
    d["tier_changes"] = _q(conn, "select change, count(*) from marts.customer_tier_changes where as_of_date = %s"
                                 " group by 1", as_of)
    d["yearly"] = _q(conn, "select year, customers, new_customers, returning_share, repeat_purchase_rate,"
                           " churned_customers, net_customer_growth, win_back_rate, revenue_cny"
                           " from marts.kpi_yearly order by year")
    # the last twelve acquisition cohorts, all platforms, first six months after (R18, R19)
    d["cohorts"] = [[m.isoformat(), k, int(size), int(active)] for m, k, size, active in _q(conn, """
        select cohort_month, months_since_first, sum(cohort_customers), sum(active_customers)
        from marts.kpi_cohort_retention
        where cohort_month > (date_trunc('month', %s::date) - interval '12 months')::date
          and months_since_first <= %s
        group by 1, 2 order by 1, 2""", as_of, COHORT_MONTHS)]
    list_date = as_of + timedelta(days=1)
    d["calls"] = _q(conn, "select agent, priority_reason, count(*) from outreach.call_list_entries"
                          " where list_date = %s group by 1, 2 order by 1, 2", list_date)
    d["call_outcomes"] = _q(conn, "select count(*), count(*) filter (where reached), count(*) filter (where resolved),"
                                  " count(*) filter (where opt_out) from outreach.call_outcomes"
                                  " where list_date > %s", as_of - timedelta(days=30))
    d["messages"] = _q(conn, "select message_type, status, count(*) from outreach.message_ledger"
                             " where as_of_date = %s group by 1, 2 order by 1, 2", as_of)
    d["suppressions"] = _q(conn, "select rule, count(*) from outreach.suppressions where as_of_date = %s"
                                 " group by 1 order by 2 desc", as_of)
    d["campaigns"] = _q(conn, "select campaign, assigned_group, count(*) from outreach.campaign_assignments"
                              " group by 1, 2 order by 1, 2")
    d["quality"] = _q(conn, "select step, facts from ops.run_log where as_of_date = %s and step like 'quality:%%'"
                            " order by step", as_of)
    d["extract"] = _q(conn, "select step, facts from ops.run_log where as_of_date = %s and"
                            " (step like 'extract:%%' or step like 'intake:%%') order by step", as_of)
    # shops the night went on without (D45), and what their stale data held back
    plan = _q(conn, "select facts from ops.run_log where as_of_date = %s and step = 'outreach:plan'", as_of)
    d["stale_shops"] = recorded_stale(conn, as_of)
    d["held"] = (plan[0][0] if plan else {}).get("held") or {}
    d["shops"] = [[r.shop_id, r.platform, f"{r.read_to:%Y-%m-%d %H:%M %Z}" if r.read_to else "-",
                   "yes" if r.current else "NO"] for r in status(conn, as_of)]
    # by kind of reason (the offending value cut off and redacted: reasons quote it)
    d["quarantine"] = [[g.platform, g.shop_id, g.kind, g.records, g.open] for g in summarize(conn)[:10]]
    # the first night has no earlier day to compare segments and tiers with
    d["first_run"] = not _q(conn, "select 1 from ops.run_log where as_of_date < %s limit 1", as_of)
    d["agent_names"] = _agent_names()
    d["clv"] = gather_clv(conn, as_of)  # issue 33: backtest and fits (reporting/clv_section.py)
    return d


def _agent_names() -> dict[str, str]:
    from crm_pipeline.outreach.calls import load_call_config

    try:
        return {a[0]: a[1] for a in load_call_config(get_settings().config_dir / "agents.yml").agents}
    except (OSError, ValueError):
        return {}


def _campaign_results(conn) -> list[dict]:
    from crm_pipeline.outreach.campaigns import load_campaigns, report

    out = []
    for c in load_campaigns(get_settings().config_dir / "campaigns"):
        try:
            out.append(report(conn, c))
        except Exception as exc:  # a broken campaign file must not hide the rest of the report
            out.append({"campaign": c.name, "error": str(exc)})
    return out


MIN_REACH_SHOWN = 0.1  # the smallest share of a treatment group reached that gets a per-contacted lift


def _campaign_row(c: dict, as_of: date, pct) -> list:
    """One campaign's line: "too early" until it was sent and its measuring window is over."""
    name = ch.Term(c["campaign"], c.get("goal") or "")
    if "error" in c:
        return [name, "配置错误", c["error"], "", "", ""]
    t, h = c["treatment"], c["holdout"]
    start, end = (date.fromisoformat(x) for x in c["window"])
    groups = f"{t['customers']} / {h['customers']}"
    cr, lift = c["conversion_rate"], c["conversion_lift"]
    accepted = sum(m["count"] for m in c.get("messages") or [] if m["status"] == "accepted")
    if not t["customers"] or not h["customers"] or as_of < start:
        # the gateways may have taken the messages already (they leave the morning after
        # the night that planned them): say so, not "not sent"
        if accepted:
            return [name, groups, "", "", ch.Term(f"太早，已发送 {accepted} 条，观察期从 {start.isoformat()} 开始",
                                                  "too early: sent, measuring has not started"), ""]
        return [name, groups, "", "", ch.Term("太早，尚未发送", "too early: not sent yet"), ""]
    rates = [pct(cr["treatment"]), pct(cr["holdout"])]
    if as_of < end:
        return [name, groups, *rates, ch.Term(f"太早，观察期到 {end.isoformat()}", "too early: still measuring"), ""]
    measured = [f"{lift['estimate'] * 100:+.1f} 个百分点", f"[{lift['ci95'][0] * 100:+.1f}, {lift['ci95'][1] * 100:+.1f}]"]
    reached = c.get("conversion_lift_per_contacted")
    # under a tenth reached, the ratio would magnify noise tenfold: the plain lift only
    if reached and MIN_REACH_SHOWN <= reached["contact_rate"] < 1:
        # part of the treatment group got no message (budget, no contact, a cap): the lift per
        # assigned customer understates what a message did; say both
        share = f"干预组 {reached['contact_rate'] * 100:.0f}% 收到消息"
        measured = [ch.Term(f"{measured[0]}；按收到消息的客户 {reached['estimate'] * 100:+.1f}",
                            f"{share}: the lift per assigned customer over that share (Bloom)"),
                    ch.Term(f"{measured[1]}；[{reached['ci95'][0] * 100:+.1f}, {reached['ci95'][1] * 100:+.1f}]",
                            share)]
    return [name, groups, *rates, *measured]


def _margin(margin, costed_share):
    """A platform's margin; "—" where no paid order has a known cost (it would show revenue as
    margin), the figure with the costed share in its tooltip where some lack one."""
    if not costed_share:
        return ch.Term("—", "no product cost known (seeds/product_catalog.csv)")
    if costed_share < 1:
        return ch.Term(ch._fmt(float(margin)), f"{float(costed_share) * 100:.0f}% of paid orders have a cost")
    return float(margin)


def _margin_notes(platform_totals: list) -> str:
    """Said on the page, not only in a tooltip: where margin leaves out costs it does not know."""
    from crm_pipeline import labels as lb

    partly = [f"{lb.PLATFORMS.get(p, p)} {float(share) * 100:.0f}%" for p, *_, share in platform_totals
              if share and share < 1]
    none = [lb.PLATFORMS.get(p, p) for p, *_, share in platform_totals if not share]
    notes = []
    if partly:
        notes.append("毛利只扣除有商品成本的订单，其余订单的收入全部计入毛利（偏高）。"
                     f"有成本的付款订单占比：{'，'.join(partly)}。")
    if none:
        notes.append(f"毛利“—”：{'，'.join(none)}的付款订单都没有商品成本。")
    if notes:
        notes.append("商品成本在 seeds/product_catalog.csv 中维护（按 SKU 或商品标题）。")
    return "".join(f"<p class='muted'>{escape(n)}</p>" for n in notes)


def render(d: dict, campaigns: list[dict]) -> str:
    """The page: Chinese words throughout; an English key shows in the tooltip where a table keeps one."""
    from crm_pipeline import labels as lb

    T = ch.Term
    pct = lambda v: "—" if v is None else f"{float(v) * 100:.1f}%"  # noqa: E731  (no value is not 0%)
    as_of = date.fromisoformat(d["as_of"])
    list_day = (as_of + timedelta(days=1)).isoformat()
    first = d.get("first_run", False)
    h, y = d["headline"], d["yesterday"]
    kpis = [("顾客", h["customers"]), ("付费顾客", h["paying_customers"]),
            ("累计净收入 ¥", float(h["revenue_cny"])), ("当日订单", y["orders_created"]),
            ("当日付款", y["orders_paid"]), ("当日收入 ¥", float(y["revenue_cny"] or 0)),
            ("当日新客", y["new_customers"]), ("当日回头客", y["returning_customers"])]
    kpi_html = "".join(f"<div class='kpi'><b>{ch._fmt(float(v))}</b><span>{escape(k)}</span></div>" for k, v in kpis)

    weeks = sorted({r[0] for r in d["platform_daily"]})
    platforms = sorted({r[1] for r in d["platform_daily"]})
    rev = {T(lb.PLATFORMS.get(p, p), p): [float(next((r[3] for r in d["platform_daily"] if r[0] == w and r[1] == p), 0))
                                        for w in weeks] for p in platforms}
    platform_chart = ch.stacked_columns([w.strftime("%m-%d") for w in weeks], rev)
    weeks_from = date.fromisoformat(d.get("chart_start") or d["as_of"]).strftime("%m-%d")
    as_of_md = date.fromisoformat(d["as_of"]).strftime("%m-%d")
    platform_table = ch.table(["平台", "付款订单", "收入 ¥", "毛利 ¥"],
                              [[T(lb.PLATFORMS.get(p, p), p), int(o), float(r), _margin(m, share)]
                               for p, o, r, m, share in d["platform_totals"]])
    platform_table += _margin_notes(d["platform_totals"])
    nvr = ch.lines({T("新客", "new"): [(w, float(n)) for w, n, _ in d["new_vs_returning"]],
                    T("回头客", "returning"): [(w, float(r)) for w, _, r in d["new_vs_returning"]]})
    rfm = ch.hbar([(T(lb.zh(lb.RFM_SEGMENTS, s), s or "unscored"), float(n)) for s, n, _ in d["rfm"]])
    if first:
        moves = "<p class='muted'>第一次运行：还没有前一天可比较，明天起显示分群变化。</p>"
    else:
        moves = ch.table(["原分群", "新分群", "客户数"],
                         [[T(lb.zh(lb.RFM_SEGMENTS, a, "（新客户）") if a != "none" else "（新客户）", a),
                           T(lb.zh(lb.RFM_SEGMENTS, b), b), int(n)] for a, b, n in d["rfm_moves"]], numeric_from=2)
    funnel = ch.funnel([(T(lb.LIFECYCLE_STAGES[s], s), float(d["stages"].get(s, 0))) for s in STAGE_ORDER])

    def transition(t: str):
        a, _, b = t.partition("->")
        return T(f"{lb.LIFECYCLE_STAGES.get(a, '（首次）') if a != 'none' else '（首次）'} → "
                 f"{lb.LIFECYCLE_STAGES.get(b, b)}", t)

    transitions = ch.table(["阶段变化（近30天）", "客户数"], [[transition(t), int(n)] for t, n in d["transitions"]])
    trend = {}
    for day, stage, n in d["stage_trend"]:
        trend.setdefault(stage, []).append((day.strftime("%y-%m-%d"), float(n)))
    trend_chart = ch.lines({T(lb.LIFECYCLE_STAGES[s], s): trend[s] for s in STAGE_ORDER if s in trend})
    pareto_pts = d["pareto"]
    sample = pareto_pts[:: max(1, len(pareto_pts) // 60)] + pareto_pts[-1:] if pareto_pts else []
    pareto_chart = ch.lines({T("累计收入占比", "cumulative revenue share"):
                             [(f"{float(c) * 100:.0f}%", float(r) * 100) for c, r in sample]},
                            y_fmt=lambda v: f"{v:g}%")
    top20, share80, payers = d["pareto_summary"]
    tiers = ch.table(["会员等级", "客户数", "门槛 ¥（12个月消费）"],
                     [[T(lb.zh(lb.TIERS, t), t), int(n), float(th)] for t, n, th in d["tiers"]])
    if first:
        tier_changes = "第一次运行：还没有前一天可比较，明天起显示升级和降级。"
    else:
        tier_changes = "，".join(f"{lb.TIER_CHANGES.get(c, c)} {n}" for c, n in d["tier_changes"]) or "没有"
    yearly = ch.table(["年份", "客户数", "新客", "回头客占比", "复购率", "流失客户", "净增客户", "召回率", "收入 ¥"],
                      [[int(r[0]), int(r[1]), int(r[2]), pct(r[3]), pct(r[4]), int(r[5]), int(r[6]), pct(r[7]),
                        float(r[8])] for r in d["yearly"]])
    cohort_rows: dict[str, list] = {}
    for month, k, size, active in d["cohorts"]:
        row = cohort_rows.setdefault(month[:7], [month[:7], size] + [""] * COHORT_MONTHS)
        if k > 0:
            row[1 + k] = pct(active / size)
    cohorts = ch.table(["首次付款月份", "客户数"] + [f"+{k} 月" for k in range(1, COHORT_MONTHS + 1)],
                       list(cohort_rows.values()))
    agents = d.get("agent_names") or {}
    calls = ch.table(["坐席", "回访原因", "通数"],
                     [[T(agents.get(a, a), a), T(lb.CALL_REASONS.get(r, r), r), int(n)] for a, r, n in d["calls"]],
                     numeric_from=2)
    co = d["call_outcomes"][0] if d["call_outcomes"] else (0, 0, 0, 0)
    messages = ch.table(["消息类型", "状态", "条数"],
                        [[T(lb.MESSAGE_TYPES.get(t, t), t), T(lb.LEDGER_STATUS.get(s, s), s), int(n)]
                         for t, s, n in d["messages"]], numeric_from=2)
    supp = ch.hbar([(T(lb.SUPPRESSION_RULES.get(r, r), r), float(n)) for r, n in d["suppressions"]],
                   color=ch.PALETTE[3])
    camp = ch.table(["活动", "干预 / 对照 人数", "干预组转化率", "对照组转化率", "转化提升", "95% 区间"],
                    [_campaign_row(c, as_of, pct) for c in campaigns])
    q_rows = []
    for step, facts in d["quality"]:
        facts = facts if isinstance(facts, dict) else json.loads(facts)
        status = "<span class='ok'>通过</span>" if not facts.get("critical") else "<span class='bad'>未通过</span>"
        name = step.split(":", 1)[-1]
        q_rows.append(f"<tr><td title='{escape(step)}'>{escape(CHECKPOINTS_ZH.get(name, name))}</td><td>{status}</td>"
                      f"<td class='num'>{facts.get('evaluated')}</td>"
                      f"<td class='num'>{len(facts.get('critical') or [])}</td>"
                      f"<td class='num'>{len(facts.get('warnings') or [])}</td></tr>")
    q_table = ("<table><thead><tr><th>检查点</th><th>结果</th><th>检查项</th><th>严重</th><th>警告</th>"
               "</tr></thead><tbody>" + "".join(q_rows) + "</tbody></table>") if q_rows else "<p class='muted'>没有检查记录</p>"
    ex_rows = []
    for step, facts in d["extract"]:
        facts = facts if isinstance(facts, dict) else json.loads(facts)
        ex_rows.append([step.split(":")[1], int(facts.get("received", 0)), int(facts.get("landed", 0)),
                        int(facts.get("quarantined", 0))])
    ex_table = ch.table(["店铺", "收到", "落地", "隔离"], ex_rows)
    shops_table = ch.table(["店铺", "平台", "已读到", f"覆盖 {d['as_of']}"],
                           [[s, T(lb.PLATFORMS.get(p, p), p), r, "是" if c == "yes" else "否"] for s, p, r, c in d["shops"]])
    quarantine = ch.table(["平台", "店铺", "原因", "条数", "未关闭"],
                          [[T(lb.PLATFORMS.get(p, p), p), s, k, int(n), int(o)] for p, s, k, n, o in d["quarantine"]],
                          numeric_from=3)
    stale = ""
    if d["stale_shops"]:
        items = "".join(f"<li>{escape(f['describe'])}</li>" for f in d["stale_shops"])
        held = "，".join(f"<span title='{escape(k)}'>{escape(lb.MESSAGE_TYPES.get(k, k))}</span> {int(v)}"
                        for k, v in d["held"].items()) or "没有"
        stale = (f"<section class='wide'><h2 class='bad'>部分店铺没有读到当天结束</h2><ul>{items}</ul>"
                 f"<p>这些店铺的数据停在上次成功读取时。为它们暂缓的消息：{held}。本次运行以失败结束；"
                 f"排除原因后重跑这一天：在 Airflow 里清除失败的读取任务及其下游，或运行 "
                 f"<code>crm run --date {escape(d['as_of'])}</code>。</p></section>")
    first_note = ("<p>第一次运行：分群变化和会员升降级从下一次运行起才有可比较的前一天。</p>" if first else "")
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>CRM 日报 {d['as_of']}</title>
<style>{ch.CSS}</style></head><body>
<header><h1>CRM 日报 — {d['as_of']}</h1><p>营业日 {d['as_of']} 已结束；回访和消息名单用于 {list_day}。
鼠标停在名称上可看到它在数据表里的英文名。</p>{first_note}</header>
<main>
{stale}<section class="wide"><h2>概览</h2><div class="kpis">{kpi_html}</div></section>
<section><h2>各平台每周收入（元，{weeks_from} 起的每周，本周到 {as_of_md}）</h2>{platform_chart}{platform_table}</section>
<section><h2>新客与回头客（每周，{weeks_from} 起）</h2>{nvr}</section>
<section><h2>RFM 客户分群</h2>{rfm}<h2>今日分群变化</h2>{moves}</section>
<section><h2>生命周期漏斗（今日）</h2>{funnel}{transitions}</section>
<section class="wide"><h2>近一年各生命周期阶段（每周一）</h2>{trend_chart}</section>
<section><h2>二八分析：按客户占比的累计收入占比</h2>{pareto_chart}
<p>{payers} 位付费客户中，前 20% 带来 <b>{pct(top20)}</b> 的收入；80% 的收入来自 <b>{pct(share80)}</b> 的客户。</p></section>
<section><h2>会员等级</h2>{tiers}<p>今日升降级：{escape(tier_changes)}</p></section>
<section class="wide"><h2>店铺经营指标（按年）</h2>{yearly}</section>
<section class="wide"><h2>同期群：每月新客在之后第 N 个月再次购买的比例</h2>{cohorts}
<p class="muted">最新一个月的数据还不完整；全部同期群和平台见 marts.kpi_cohort_retention。</p></section>
<section><h2>{list_day} 回访清单</h2>{calls}
<p>近30天回访结果：记录 {co[0]} 通 · 接通 {co[1]} · 已解决 {co[2]} · 拒绝再联系 {co[3]}</p></section>
<section><h2>今日计划的消息</h2>{messages}<h2>未发送原因</h2>{supp}</section>
<section class="wide"><h2>营销活动与对照组</h2>{camp}</section>
{render_clv(d.get("clv") or {})}
<section><h2>数据质量</h2>{q_table}</section>
<section><h2>数据落地</h2>{ex_table}<h2>各店铺读取进度</h2>{shops_table}<h2>隔离记录（主要原因；未关闭 = 之后还没有有效版本落地）</h2>{quarantine}</section>
</main></body></html>"""


def write_report(as_of: date, url: str | None = None, out_dir: Path | None = None) -> Path:
    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        data = gather(conn, as_of)
        campaigns = _campaign_results(conn)
    folder = (out_dir or get_settings().out_dir) / as_of.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    path.write_text(render(data, campaigns), encoding="utf-8")
    return path


def publish_docs(as_of: date, url: str | None = None) -> dict[str, str]:
    """dbt docs (one self-contained page) and the GX Data Docs site into <out>/docs/, both readable offline.

    dbt writes its artifacts (manifest, catalog, compiled SQL) to a work folder under
    CRM_HOME; only the page goes to out/docs/dbt/. The GX site's CDN assets are swapped
    for vendored copies (quality/data_docs.py)."""
    import shutil

    from crm_pipeline.quality.data_docs import localize, vendor_dir
    from crm_pipeline.transform.dbt import reuse_partial_parse, run_dbt

    settings = get_settings()
    docs = settings.out_dir / "docs"
    work = settings.home / "dbt_docs"
    reuse_partial_parse(work)
    run_dbt(["docs", "generate", "--static", "--target-path", str(work)], as_of, url, capture=True)
    target = docs / "dbt"
    if target.exists():  # earlier versions put the whole target folder here
        shutil.rmtree(target)
    target.mkdir(parents=True)
    page = target / "static_index.html"
    shutil.copy2(work / "static_index.html", page)
    out = {"dbt": str(page)}
    site = settings.expectations_dir / "gx" / "uncommitted" / "data_docs" / "local_site"
    if site.exists():
        shutil.copytree(site, docs / "gx", dirs_exist_ok=True)
        localize(docs / "gx", vendor_dir(settings.expectations_dir))
        out["gx"] = str(docs / "gx" / "index.html")
    return out
