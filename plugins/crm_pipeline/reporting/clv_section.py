"""The daily report's customer-lifetime-value section (issue 33): the nightly backtest's
tracking chart and errors, and what the models say today.

Kept apart from report.py so the report only asks for the data and places the HTML.
"""

from __future__ import annotations

from datetime import date
from html import escape

from crm_pipeline.reporting import charts as ch


def gather_clv(conn, as_of: date) -> dict:
    """The backtest of the day, the day's fits, and the mart's totals (empty before the first fit)."""
    if not conn.execute("select to_regclass('clv.backtests') is not null").fetchone()[0]:
        return {}
    backtest = conn.execute(
        "select cutoff_date, status, detail, customers, actual_purchases, predicted_purchases, naive_purchases,"
        " rmse_model, rmse_naive, mae_model, mae_naive, tracking from clv.backtests where as_of_date = %s",
        (as_of,)).fetchone()
    fits = conn.execute(
        "select fit_group, status, detail, customers, repeat_buyers, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b,"
        " gg_p, gg_q, gg_gamma, gg_frequency_spend_correlation from clv.fits"
        " where as_of_date = %s and purpose = 'score' order by fit_group", (as_of,)).fetchall()
    totals = conn.execute(
        "select count(*) filter (where status = 'fitted'), count(*), coalesce(sum(clv_cny), 0),"
        " coalesce(sum(expected_purchases_90d), 0), count(*) filter (where p_alive < 0.5 and frequency > 0)"
        " from clv.customer_scores where as_of_date = %s", (as_of,)).fetchone()
    from crm_pipeline.clv.config import ClvConfig, ClvConfigError, load_clv_config

    try:
        config = load_clv_config()
    except ClvConfigError:  # the CLV step itself reports a broken file; the report keeps the defaults
        config = ClvConfig()
    return {"backtest": backtest, "fits": fits, "totals": totals, "config": config}


def _threshold(detail: str | None, pattern: str, default: int) -> int:
    """The threshold the run used, as its stored detail says (the config may have changed
    since, or the day be re-rendered); today's config where the detail does not say."""
    import re

    found = re.search(pattern, detail or "")
    return int(found.group(1)) if found else default


def _fit_reason(status: str, detail: str | None, repeat: int, q, p, gamma, config) -> str:
    """Why a population has no fit, or what to know about its fit, in Chinese (clv.fits
    keeps the English detail for the data team; the table shows it as the tooltip)."""
    if status == "not_enough_data":
        needs = _threshold(detail, r"at least (\d+)", config.min_repeat_buyers)
        return f"复购客户 {repeat} 位，模型至少需要 {needs} 位（config/clv.yml 的 min_repeat_buyers）"
    if status == "fit_failed":
        return "拟合失败（原因见提示）"
    if detail and q is not None and q > 1:  # Gamma-Gamma collapsed (models.GammaGamma.degenerate)
        return f"客户之间的客单价差别不大于偶然波动：每位客户的预计客单价都取总体平均 ¥{p * gamma / (q - 1):,.2f}"
    return ""


STATUS_ZH = {"fitted": "已拟合", "not_enough_data": "数据不足", "fit_failed": "拟合失败"}


def render_clv(d: dict) -> str:
    """In Chinese like the rest of the report (D78); the tables' keys in tooltips."""
    T = ch.Term
    if not d or (d.get("backtest") is None and not d.get("fits")):
        return ("<section class='wide'><h2>客户终身价值（BG/NBD、Gamma-Gamma）</h2>"
                "<p class='muted'>这一天没有客户价值计算记录（crm clv --date 日期）</p></section>")
    parts = ["<section class='wide'><h2>客户终身价值：回测（预测与实际的累计购买）</h2>"]
    b = d.get("backtest")
    if b is None:
        parts.append("<p class='muted'>这一天没有回测</p>")
    else:
        (cutoff, status, detail, customers, actual, predicted, naive, rmse_m, rmse_n, mae_m, mae_n, tracking) = b
        if status == "not_enough_data":
            needs = _threshold(detail, r"needs (\d+)", d["config"].backtest_min_customers if d.get("config") else 0)
            parts.append(f"<p class='muted' title='{escape(detail or '', quote=True)}'>数据不足，无法回测：截至"
                         f" {escape(str(cutoff))} 已拟合的客户 {customers} 位，回测至少需要 {needs} 位"
                         f"（config/clv.yml 的 backtest_min_customers）</p>")
        else:
            series = {T("实际", "actual"): [(t[0][5:], float(t[1])) for t in tracking],
                      T("模型预测", "predicted"): [(t[0][5:], float(t[2])) for t in tracking]}
            verdict = ("<span class='bad'>警告：模型不如简单预测（每位客户按过去的频率购买）</span>"
                       if status == "worse_than_naive" else "<span class='ok'>模型优于简单预测</span>")
            parts.append(
                f"<p>用截至 {escape(str(cutoff))} 的订单拟合模型，预测 {customers} 位客户此后到今天的购买天数，"
                f"再与实际比较（按周累计）。</p>"
                + ch.lines(series)
                + ch.table(["", T("购买天数", "purchase days"), T("每位客户的均方根误差", "rmse"),
                            T("每位客户的平均绝对误差", "mae")],
                           [[T("实际", "actual"), int(actual), "", ""],
                            [T("模型", "model"), round(float(predicted), 1), round(rmse_m, 3), round(mae_m, 3)],
                            [T("简单预测（过去的频率）", "naive"), round(float(naive), 1), round(rmse_n, 3),
                             round(mae_n, 3)]])
                + f"<p title='{escape(detail or '', quote=True)}'>{verdict}</p>")
    fits = d.get("fits") or []
    if fits:
        rows = []
        config = d.get("config")
        for g, status, detail, n, repeat, r, alpha, a, bb, p, q, gamma, corr in fits:
            reason = _fit_reason(status, detail, int(repeat), q, p, gamma, config) if config else (detail or "")
            params = (f"r={r:.3f} α={alpha:.2f} a={a:.3f} b={bb:.3f} · p={p:.2f} q={q:.2f} γ={gamma:.1f}"
                      + (f" — {reason}" if reason else "") if status == "fitted" else reason)
            params = T(params, detail) if detail else params
            rows.append([g, T(STATUS_ZH.get(status, status), status), int(n), int(repeat), params,
                         "" if corr is None else f"{corr:.2f}"])
        parts.append("<h2>今日拟合</h2>" + ch.table(
            [T("客户群（首单店铺）", "fit_group"), T("状态", "status"), T("客户", "customers"),
             T("复购客户", "repeat_buyers"), T("参数 / 未拟合原因", "parameters"),
             T("购买次数与客单价的相关系数", "gg_frequency_spend_correlation")], rows, numeric_from=2))
    totals = d.get("totals")
    if totals and totals[1]:
        fitted, scored, clv_total, next90, fading = totals
        parts.append(f"<p>{scored} 位购买过的客户中 {fitted} 位已评分；未来90天预计购买天数 <b>{float(next90):,.0f}</b>；"
                     f"全部客户未来12个月的预测价值 <b>¥{float(clv_total):,.0f}</b>；更可能已经流失（P(alive) &lt; 0.5）"
                     f"的复购客户 {fading} 位。每位客户的数据见 marts.customer_clv。</p>")
    parts.append("</section>")
    return "".join(parts)
