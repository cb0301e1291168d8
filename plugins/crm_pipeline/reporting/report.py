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
from crm_pipeline.settings import get_settings

COHORT_MONTHS = 6  # months after the first order the report's cohort table shows

STAGE_ORDER = ["prospect", "new", "returning", "loyal", "win_back", "at_risk", "churned"]
STAGE_ZH = {"prospect": "潜在 prospect", "new": "新客 new", "returning": "回头客 returning", "loyal": "忠诚 loyal",
            "win_back": "召回 win-back", "at_risk": "流失预警 at risk", "churned": "已流失 churned"}


def _q(conn, sql: str, *args):
    return conn.execute(sql, args).fetchall()


def gather(conn, as_of: date) -> dict:
    """All numbers the report shows (also useful as JSON for other tools)."""
    start = as_of - timedelta(days=89)
    d: dict = {"as_of": as_of.isoformat()}
    d["headline"] = dict(zip(
        ["customers", "paying_customers", "revenue_cny", "paid_orders"],
        _q(conn, "select count(*), count(*) filter (where paid_orders > 0), coalesce(sum(net_revenue_cny), 0),"
                 " coalesce(sum(paid_orders), 0) from marts.dim_customers")[0], strict=True))
    d["yesterday"] = dict(zip(["orders_created", "orders_paid", "revenue_cny", "new_customers", "returning_customers"],
                              (_q(conn, "select orders_created, orders_paid, revenue_cny, new_customers,"
                                        " returning_customers from marts.kpi_daily where kpi_date = %s", as_of)
                               or [(0, 0, 0, 0, 0)])[0], strict=True))
    d["platform_daily"] = _q(conn, """
        select date_trunc('week', paid_date)::date as wk, platform, count(*), sum(amount_cny)
        from marts.fct_orders where is_paid and paid_date between %s and %s group by 1, 2 order by 1, 2""",
                             start, as_of)
    d["platform_totals"] = _q(conn, """
        select platform, sum(paid_orders), sum(revenue_cny), sum(margin_cny)
        from marts.kpi_platform_monthly group by 1 order by 3 desc""")
    d["new_vs_returning"] = _q(conn, """
        select to_char(date_trunc('week', kpi_date), 'MM-DD'), sum(new_customers), sum(returning_customers)
        from marts.kpi_daily where kpi_date between %s and %s
        group by date_trunc('week', kpi_date) order by date_trunc('week', kpi_date)""", start, as_of)
    d["rfm"] = _q(conn, "select segment, count(*), round(avg(monetary_cny), 0) from marts.customer_rfm"
                        " group by 1 order by 2 desc")
    d["rfm_moves"] = _q(conn, "select previous_segment, segment, count(*) from marts.customer_rfm_changes"
                              " where as_of_date = %s group by 1, 2 order by 3 desc limit 12", as_of)
    d["stages"] = dict(_q(conn, "select stage, count(*) from marts.customer_lifecycle group by 1"))
    d["transitions"] = _q(conn, "select transition, count(*) from marts.customer_lifecycle_history"
                                " where valid_from_date between %s and %s group by 1 order by 2 desc limit 12",
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
    return d


def _campaign_results(conn) -> list[dict]:
    from crm_pipeline.outreach.campaigns import load_campaigns, report

    out = []
    for c in load_campaigns(get_settings().config_dir / "campaigns"):
        try:
            out.append(report(conn, c))
        except Exception as exc:  # a broken campaign file must not hide the rest of the report
            out.append({"campaign": c.name, "error": str(exc)})
    return out


def render(d: dict, campaigns: list[dict]) -> str:
    pct = lambda v: f"{float(v or 0) * 100:.1f}%"  # noqa: E731
    h, y = d["headline"], d["yesterday"]
    kpis = [("顾客 customers", h["customers"]), ("付费顾客 paying", h["paying_customers"]),
            ("累计净收入 net revenue ¥", float(h["revenue_cny"])), ("昨日订单 orders", y["orders_created"]),
            ("昨日付款 paid", y["orders_paid"]), ("昨日收入 revenue ¥", float(y["revenue_cny"] or 0)),
            ("昨日新客 new", y["new_customers"]), ("昨日回头客 returning", y["returning_customers"])]
    kpi_html = "".join(f"<div class='kpi'><b>{ch._fmt(float(v))}</b><span>{escape(k)}</span></div>" for k, v in kpis)

    weeks = sorted({r[0] for r in d["platform_daily"]})
    platforms = sorted({r[1] for r in d["platform_daily"]})
    rev = {p: [float(next((r[3] for r in d["platform_daily"] if r[0] == w and r[1] == p), 0)) for w in weeks]
           for p in platforms}
    platform_chart = ch.stacked_columns([w.strftime("%m-%d") for w in weeks], rev)
    platform_table = ch.table(["platform", "paid orders", "revenue ¥", "margin ¥"],
                              [[p, int(o), float(r), float(m)] for p, o, r, m in d["platform_totals"]])
    nvr = ch.lines({"new 新客": [(w, float(n)) for w, n, _ in d["new_vs_returning"]],
                    "returning 回头客": [(w, float(r)) for w, _, r in d["new_vs_returning"]]})
    rfm = ch.hbar([(s or "unscored", float(n)) for s, n, _ in d["rfm"]])
    moves = ch.table(["from", "to", "customers"], [[a, b, int(n)] for a, b, n in d["rfm_moves"]], numeric_from=2)
    funnel = ch.funnel([(STAGE_ZH[s], float(d["stages"].get(s, 0))) for s in STAGE_ORDER])
    transitions = ch.table(["transition (30 days)", "customers"], [[t, int(n)] for t, n in d["transitions"]])
    trend = {}
    for day, stage, n in d["stage_trend"]:
        trend.setdefault(stage, []).append((day.strftime("%y-%m-%d"), float(n)))
    trend_chart = ch.lines({s: trend[s] for s in STAGE_ORDER if s in trend})
    pareto_pts = d["pareto"]
    sample = pareto_pts[:: max(1, len(pareto_pts) // 60)] + pareto_pts[-1:] if pareto_pts else []
    pareto_chart = ch.lines({"cumulative revenue share": [(f"{float(c) * 100:.0f}%", float(r) * 100) for c, r in sample]},
                            y_fmt=lambda v: f"{v:.0f}%")
    top20, share80, payers = d["pareto_summary"]
    tiers = ch.table(["tier", "customers", "threshold ¥ (12m spend)"],
                     [[t, int(n), float(th)] for t, n, th in d["tiers"]])
    tier_changes = ", ".join(f"{c}: {n}" for c, n in d["tier_changes"]) or "none"
    yearly = ch.table(["year", "customers", "new", "returning share", "repeat rate", "churned", "net growth",
                       "win-back rate", "revenue ¥"],
                      [[int(r[0]), int(r[1]), int(r[2]), pct(r[3]), pct(r[4]), int(r[5]), int(r[6]), pct(r[7]),
                        float(r[8])] for r in d["yearly"]])
    cohort_rows: dict[str, list] = {}
    for month, k, size, active in d["cohorts"]:
        row = cohort_rows.setdefault(month[:7], [month[:7], size] + [""] * COHORT_MONTHS)
        if k > 0:
            row[1 + k] = pct(active / size)
    cohorts = ch.table(["first paid in", "customers"] + [f"+{k} mo" for k in range(1, COHORT_MONTHS + 1)],
                       list(cohort_rows.values()))
    calls = ch.table(["agent", "reason", "calls"], [[a, r, int(n)] for a, r, n in d["calls"]], numeric_from=2)
    co = d["call_outcomes"][0] if d["call_outcomes"] else (0, 0, 0, 0)
    messages = ch.table(["type", "status", "messages"], [[t, s, int(n)] for t, s, n in d["messages"]], numeric_from=2)
    supp = ch.hbar([(r, float(n)) for r, n in d["suppressions"]], color=ch.PALETTE[3])
    camp_rows = []
    for c in campaigns:
        if "error" in c:
            camp_rows.append([c["campaign"], "error", c["error"], "", "", ""])
            continue
        cr = c["conversion_rate"]
        lift = c["conversion_lift"]
        camp_rows.append([c["campaign"], f"{c['treatment']['customers']} / {c['holdout']['customers']}",
                          pct(cr["treatment"]), pct(cr["holdout"]),
                          f"{lift['estimate'] * 100:+.1f} pts", f"[{lift['ci95'][0] * 100:+.1f}, {lift['ci95'][1] * 100:+.1f}]"])
    camp = ch.table(["campaign", "treated / hold-out", "conversion treated", "conversion hold-out", "lift",
                     "95% CI"], camp_rows)
    q_rows = []
    for step, facts in d["quality"]:
        facts = facts if isinstance(facts, dict) else json.loads(facts)
        status = "<span class='ok'>pass</span>" if not facts.get("critical") else "<span class='bad'>FAIL</span>"
        q_rows.append(f"<tr><td>{escape(step)}</td><td>{status}</td><td class='num'>{facts.get('evaluated')}</td>"
                      f"<td class='num'>{len(facts.get('critical') or [])}</td>"
                      f"<td class='num'>{len(facts.get('warnings') or [])}</td></tr>")
    q_table = ("<table><thead><tr><th>checkpoint</th><th>result</th><th>checks</th><th>critical</th><th>warnings</th>"
               "</tr></thead><tbody>" + "".join(q_rows) + "</tbody></table>") if q_rows else "<p class='muted'>no checks recorded</p>"
    ex_rows = []
    for step, facts in d["extract"]:
        facts = facts if isinstance(facts, dict) else json.loads(facts)
        ex_rows.append([step.split(":", 1)[1], int(facts.get("received", 0)), int(facts.get("landed", 0)),
                        int(facts.get("quarantined", 0))])
    ex_table = ch.table(["shop", "received", "landed", "quarantined"], ex_rows)
    shops_table = ch.table(["shop", "platform", "read up to", f"covers {d['as_of']}"], d["shops"])
    quarantine = ch.table(["platform", "shop", "reason", "records", "open"],
                          [[p, s, k, int(n), int(o)] for p, s, k, n, o in d["quarantine"]], numeric_from=3)
    stale = ""
    if d["stale_shops"]:
        items = "".join(f"<li>{escape(f['describe'])}</li>" for f in d["stale_shops"])
        held = ", ".join(f"{escape(k)} {int(v)}" for k, v in d["held"].items()) or "none"
        stale = (f"<section class='wide'><h2 class='bad'>Partial night: shops not read up to the end of the day"
                 f"</h2><ul>{items}</ul><p>Their data is as of their last good run. Held for them (rule "
                 f"shop_data_stale): {held}. The run ended failed; once the cause is fixed, rerun the day: "
                 f"clear the failed extract tasks with their downstream in Airflow, or "
                 f"<code>crm run --date {escape(d['as_of'])}</code>.</p></section>")
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>CRM daily report {d['as_of']}</title>
<style>{ch.CSS}</style></head><body>
<header><h1>CRM 日报 · Daily report — {d['as_of']}</h1><p>Business day closed overnight; lists are for {escape(str(date.fromisoformat(d['as_of']) + timedelta(days=1)))}.</p></header>
<main>
{stale}<section class="wide"><h2>Headline</h2><div class="kpis">{kpi_html}</div></section>
<section><h2>Revenue by platform, weekly (¥, last 90 days)</h2>{platform_chart}{platform_table}</section>
<section><h2>New vs returning customers (weekly, last 90 days)</h2>{nvr}</section>
<section><h2>RFM segments</h2>{rfm}<h2>Segment movement today</h2>{moves}</section>
<section><h2>Lifecycle funnel (today)</h2>{funnel}{transitions}</section>
<section class="wide"><h2>Lifecycle stages over the last year (Mondays)</h2>{trend_chart}</section>
<section><h2>80/20: cumulative revenue share by customer share</h2>{pareto_chart}
<p>Top 20% of {payers} paying customers bring <b>{pct(top20)}</b> of revenue; 80% of revenue comes from
<b>{pct(share80)}</b> of customers.</p></section>
<section><h2>Membership tiers</h2>{tiers}<p>Tier changes today: {escape(tier_changes)}</p></section>
<section class="wide"><h2>Shop health by year (R19)</h2>{yearly}</section>
<section class="wide"><h2>Cohorts: share of each month's new customers buying again N months later</h2>{cohorts}
<p class="muted">The newest month's column is partial; all cohorts and platforms: marts.kpi_cohort_retention.</p></section>
<section><h2>Call list for {escape(str(date.fromisoformat(d['as_of']) + timedelta(days=1)))}</h2>{calls}
<p>Outcomes, last 30 days: {co[0]} recorded · {co[1]} reached · {co[2]} resolved · {co[3]} opted out</p></section>
<section><h2>Messages planned today</h2>{messages}<h2>Not sent, by rule</h2>{supp}</section>
<section class="wide"><h2>Campaigns vs hold-out (R22)</h2>{camp}</section>
<section><h2>Data quality</h2>{q_table}</section>
<section><h2>Landing</h2>{ex_table}<h2>Shops: how far each is read (D45)</h2>{shops_table}<h2>Quarantine (top reasons; open = no valid version landed since)</h2>{quarantine}</section>
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
    """dbt docs (a single static page) and the GX Data Docs site into <out>/docs/."""
    import shutil

    from crm_pipeline.transform.dbt import reuse_partial_parse, run_dbt

    settings = get_settings()
    docs = settings.out_dir / "docs"
    target = docs / "dbt"
    reuse_partial_parse(target)
    run_dbt(["docs", "generate", "--static", "--target-path", str(target)], as_of, url, capture=True)
    out = {"dbt": str(target / "static_index.html")}
    site = settings.expectations_dir / "gx" / "uncommitted" / "data_docs" / "local_site"
    if site.exists():
        shutil.copytree(site, docs / "gx", dirs_exist_ok=True)
        out["gx"] = str(docs / "gx" / "index.html")
    return out
