"""The nightly CLV step: summarize the unified orders, fit, score, backtest, write.

Reads ``marts.fct_orders`` through its documented columns only (customer_id,
shop_id, is_paid, paid_at, paid_date, amount_cny, refund_cny, order_key) and writes
``clv.customer_scores``, ``clv.fits`` and ``clv.backtests`` (migration 020), which dbt
shows as source ``clv`` and the view ``marts.customer_clv``.

Data preparation follows the papers' (DECISIONLOG D81): a *purchase* is a day on
which the customer paid for at least one order (several orders that day count once,
their values summed, net of refunds); time is in weeks; frequency x counts the
purchase days after the first; the calibration period ends with the cut-off day.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from crm_pipeline.clv import models as m
from crm_pipeline.clv.config import ClvConfig
from crm_pipeline.pii import get_logger

log = get_logger(__name__)

ALL = "all"  # the fit group when fit_by is "seller"

SUMMARY_SQL = """
with days as (
    select customer_id, paid_date, sum(amount_cny - coalesce(refund_cny, 0)) as value
    from marts.fct_orders
    where is_paid and paid_date <= %(cutoff)s and customer_id is not null
    group by customer_id, paid_date
),
numbered as (
    select customer_id, paid_date, value,
           row_number() over (partition by customer_id order by paid_date) as n
    from days
),
per_customer as (
    select customer_id,
           min(paid_date) as first_date,
           max(paid_date) as last_date,
           count(*) - 1 as x,
           sum(value) filter (where n > 1) as repeat_value
    from numbered
    group by customer_id
),
first_shop as (
    select distinct on (customer_id) customer_id, shop_id
    from marts.fct_orders
    where is_paid and paid_date <= %(cutoff)s and customer_id is not null
    order by customer_id, paid_at, order_key
)
select c.customer_id, f.shop_id, c.first_date, c.last_date, c.x, c.repeat_value
from per_customer c
join first_shop f using (customer_id)
order by c.customer_id
"""

HOLDOUT_SQL = """
select distinct customer_id, paid_date
from marts.fct_orders
where is_paid and paid_date > %(cutoff)s and paid_date <= %(end)s and customer_id is not null
"""


@dataclass
class Summary:
    """Per customer, at a cut-off day, in the models' own terms (arrays aligned by row)."""

    cutoff: date
    customer_id: np.ndarray
    group: np.ndarray
    first_date: np.ndarray  # datetime64[D]
    last_date: np.ndarray
    x: np.ndarray
    t_x: np.ndarray  # weeks
    T: np.ndarray  # weeks
    m_x: np.ndarray  # mean repeat purchase value (NaN without repeat purchases)

    def __len__(self) -> int:
        return len(self.customer_id)


@dataclass
class GroupFit:
    group: str
    status: str  # fitted | not_enough_data | fit_failed
    customers: int
    repeat_buyers: int
    detail: str | None = None
    bgnbd: m.BGNBD | None = None
    gg: m.GammaGamma | None = None
    correlation: float | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def summarize(conn, cutoff: date, config: ClvConfig) -> Summary:
    """The per-customer summary of paid purchase days up to ``cutoff`` (inclusive)."""
    rows = conn.execute(SUMMARY_SQL, {"cutoff": cutoff}).fetchall()
    n = len(rows)
    customer_id = np.array([r[0] for r in rows], dtype=object)
    group = np.array([r[1] if config.fit_by == "shop" else ALL for r in rows], dtype=object)
    first = np.array([r[2] for r in rows], dtype="datetime64[D]") if n else np.array([], dtype="datetime64[D]")
    last = np.array([r[3] for r in rows], dtype="datetime64[D]") if n else np.array([], dtype="datetime64[D]")
    x = np.array([r[4] for r in rows], dtype=float)
    repeat_value = np.array([float(r[5]) if r[5] is not None else np.nan for r in rows], dtype=float)
    end = np.datetime64(cutoff, "D")
    with np.errstate(invalid="ignore", divide="ignore"):
        m_x = np.where(x > 0, repeat_value / np.where(x > 0, x, 1), np.nan)
    return Summary(cutoff, customer_id, group, first, last, x,
                   (last - first).astype(float) / 7.0, (end - first).astype(float) / 7.0, m_x)


def fit_groups(summary: Summary, config: ClvConfig) -> dict[str, GroupFit]:
    """One BG/NBD + Gamma-Gamma fit per population with enough repeat buyers."""
    fits: dict[str, GroupFit] = {}
    for group in sorted(set(summary.group.tolist())):
        mask = summary.group == group
        x, t_x, T, m_x = summary.x[mask], summary.t_x[mask], summary.T[mask], summary.m_x[mask]
        repeat = int(np.sum(x > 0))
        fit = GroupFit(group, "fitted", int(mask.sum()), repeat)
        if repeat < config.min_repeat_buyers:
            fit.status = "not_enough_data"
            fit.detail = (f"{repeat} repeat buyer(s) among {fit.customers} customers; the models need at least "
                          f"{config.min_repeat_buyers} (min_repeat_buyers in config/clv.yml)")
            fits[group] = fit
            continue
        t0 = time.perf_counter()
        try:
            fit.bgnbd = m.fit_bgnbd(x, t_x, T)
            spend_ok = np.nan_to_num(m_x) > 0
            fit.gg = m.fit_gamma_gamma(x[spend_ok], m_x[spend_ok])
            if fit.gg.q <= 1:
                raise m.FitError(f"Gamma-Gamma: q = {fit.gg.q:.3f} <= 1, the mean order value is unbounded")
            fit.correlation = m.gamma_gamma_independence(x, m_x)
            if fit.gg.degenerate():
                fit.detail = ("Gamma-Gamma q and gamma ran off together: spend does not vary between "
                              "customers beyond chance, so every expected order value is the population mean "
                              f"{fit.gg.mean_spend():.2f}")
        except m.FitError as exc:
            fit.status, fit.detail = "fit_failed", str(exc)
            log.warning("CLV fit for %s failed: %s", group, exc)
        fit.seconds = time.perf_counter() - t0
        fits[group] = fit
    return fits


def _unique_rows(x, t_x, T):
    stacked = np.column_stack([x, t_x, T])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], unique[:, 2], inverse.reshape(-1)


def score(summary: Summary, fits: dict[str, GroupFit], config: ClvConfig) -> dict[str, np.ndarray]:
    """Model outputs per customer (NaN where the customer's population has no fit).

    Each population's distinct (x, t_x, T) are scored once: most customers share theirs.
    """
    n = len(summary)
    out = {k: np.full(n, np.nan) for k in ("p_alive", "e30", "e90", "e365", "spend", "clv", "next_weeks")}
    for group, fit in fits.items():
        if fit.status != "fitted":
            continue
        idx = np.flatnonzero(summary.group == group)
        ux, utx, uT, inv = _unique_rows(summary.x[idx], summary.t_x[idx], summary.T[idx])
        bg = fit.bgnbd
        alive = m.p_alive(bg, ux, utx, uT)
        e30, e90, e365 = (m.expected_purchases(bg, days / 7.0, ux, utx, uT) for days in (30, 90, 365))
        # discounted expected purchases over the horizon; times the spend below gives CLV
        discounted = m.clv(bg, np.ones_like(ux), ux, utx, uT, config.horizon_months, config.monthly_discount_rate)
        nxt = m.weeks_until_expected_purchase(bg, ux, utx, uT, config.next_order_max_days / 7.0)
        spend = m.expected_spend(fit.gg, summary.x[idx], summary.m_x[idx])
        out["p_alive"][idx] = alive[inv]
        out["e30"][idx], out["e90"][idx], out["e365"][idx] = e30[inv], e90[inv], e365[inv]
        out["spend"][idx] = spend
        out["clv"][idx] = discounted[inv] * spend
        out["next_weeks"][idx] = nxt[inv]
    return out


def _copy_scores(conn, summary: Summary, fits: dict[str, GroupFit], scores: dict[str, np.ndarray],
                 as_of: date) -> int:
    """COPY the scores in CSV built by pandas (a row-by-row write took a third of the step)."""
    import io

    import pandas as pd

    status = {g: f.status for g, f in fits.items()}
    weeks = scores["next_weeks"]
    days = np.where(np.isfinite(weeks), np.maximum(1, np.ceil(np.nan_to_num(weeks) * 7)), np.nan)
    next_date = np.datetime64(as_of, "D") + np.where(np.isfinite(days), days, 0).astype("timedelta64[D]")
    frame = pd.DataFrame({
        "customer_id": summary.customer_id, "fit_group": summary.group,
        "status": [status[g] for g in summary.group],
        "first_purchase_date": summary.first_date, "last_purchase_date": summary.last_date,
        "frequency": summary.x.astype(np.int64), "recency_weeks": summary.t_x.round(4), "t_weeks": summary.T.round(4),
        "avg_repeat_value_cny": summary.m_x.round(2), "p_alive": scores["p_alive"],
        "expected_purchases_30d": scores["e30"], "expected_purchases_90d": scores["e90"],
        "expected_purchases_365d": scores["e365"], "expected_order_value_cny": scores["spend"].round(2),
        "clv_cny": scores["clv"].round(2),
        "expected_next_order_date": pd.Series(next_date).where(np.isfinite(days)),
        "as_of_date": as_of, "model_version": m.MODEL_VERSION,
    })
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False, na_rep="", float_format="%.10g", date_format="%Y-%m-%d")
    with conn.cursor() as cur, cur.copy(
            f"copy clv.customer_scores ({', '.join(frame.columns)}) from stdin with (format csv)") as copy:
        copy.write(buffer.getvalue())
    return len(frame)


def _write_fits(conn, as_of: date, purpose: str, cutoff: date, fits: dict[str, GroupFit]) -> None:
    conn.execute("delete from clv.fits where as_of_date = %s and purpose = %s", (as_of, purpose))
    for f in fits.values():
        bg, gg = f.bgnbd, f.gg
        conn.execute(
            "insert into clv.fits (as_of_date, purpose, fit_group, status, detail, cutoff_date, customers,"
            " repeat_buyers, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, bgnbd_log_likelihood, gg_p, gg_q, gg_gamma,"
            " gg_log_likelihood, gg_frequency_spend_correlation, fit_seconds, model_version)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (as_of, purpose, f.group, f.status, f.detail, cutoff, f.customers, f.repeat_buyers,
             *(bg.params() if bg else (None,) * 4), bg.log_likelihood if bg else None,
             *((gg.p, gg.q, gg.gamma, gg.log_likelihood) if gg else (None,) * 4),
             f.correlation if f.correlation is None or np.isfinite(f.correlation) else None,
             round(f.seconds, 4), m.MODEL_VERSION))


def fit_and_score(conn, as_of: date, config: ClvConfig) -> dict:
    """Fit every population on the orders up to ``as_of`` and replace the scores (D82)."""
    t0 = time.perf_counter()
    summary = summarize(conn, as_of, config)
    t1 = time.perf_counter()
    fits = fit_groups(summary, config)
    t2 = time.perf_counter()
    scores = score(summary, fits, config)
    t3 = time.perf_counter()
    _write_fits(conn, as_of, "score", as_of, fits)
    newest = conn.execute("select max(as_of_date) from clv.customer_scores").fetchone()[0]
    replaced = newest is None or newest <= as_of
    if replaced:
        conn.execute("truncate clv.customer_scores")
        _copy_scores(conn, summary, fits, scores, as_of)
    t4 = time.perf_counter()
    return {
        "customers": len(summary),
        "groups": {g: {"status": f.status, "customers": f.customers, "repeat_buyers": f.repeat_buyers,
                       **({"detail": f.detail} if f.detail else {}),
                       **({"r": f.bgnbd.r, "alpha": f.bgnbd.alpha, "a": f.bgnbd.a, "b": f.bgnbd.b,
                           "p": f.gg.p, "q": f.gg.q, "gamma": f.gg.gamma} if f.status == "fitted" else {})}
                   for g, f in fits.items()},
        "scores_written": replaced,
        **({} if replaced else {"scores_kept": f"clv.customer_scores holds a later day ({newest}); left as is"}),
        "seconds": {"summarize": round(t1 - t0, 3), "fit": round(t2 - t1, 3), "score": round(t3 - t2, 3),
                    "write": round(t4 - t3, 3)},
    }


def backtest(conn, as_of: date, config: ClvConfig) -> dict:
    """Fit up to as-of minus the holdout, predict the holdout, compare with what happened.

    Purchases (purchase days) of the calibration customers in the holdout: the model's
    conditional expectation against a naive forecast in which each customer goes on at
    their past rate (x / T per week). Per customer: RMSE and MAE; in aggregate: the
    weekly cumulative tracking series (the paper's Figure 4, holdout part).
    """
    cutoff = as_of - timedelta(days=config.backtest_holdout_days)
    summary = summarize(conn, cutoff, config)
    fits = fit_groups(summary, config)
    _write_fits(conn, as_of, "backtest", cutoff, fits)
    fitted = np.isin(summary.group, [g for g, f in fits.items() if f.status == "fitted"])
    base = {"as_of_date": as_of, "cutoff_date": cutoff, "customers": int(fitted.sum())}
    if fitted.sum() < config.backtest_min_customers:
        detail = (f"{int(fitted.sum())} customers in fitted populations before {cutoff.isoformat()}; a backtest "
                  f"needs {config.backtest_min_customers} (backtest_min_customers in config/clv.yml)")
        return {**base, "status": "not_enough_data", "detail": detail, "tracking": []}

    position = {c: i for i, c in enumerate(summary.customer_id)}
    holdout = conn.execute(HOLDOUT_SQL, {"cutoff": cutoff, "end": as_of}).fetchall()
    actual = np.zeros(len(summary))
    day_of = []  # days after the cut-off of each holdout purchase of a fitted calibration customer
    for customer, day in holdout:
        i = position.get(customer)
        if i is not None and fitted[i]:
            actual[i] += 1
            day_of.append((day - cutoff).days)
    day_of = np.array(day_of, dtype=int)
    horizon = config.backtest_holdout_days
    ends = list(range(7, horizon, 7)) + [horizon]
    predicted = np.zeros(len(summary))
    cumulative = np.zeros(len(ends))
    for group, fit in fits.items():
        if fit.status != "fitted":
            continue
        idx = np.flatnonzero(summary.group == group)
        ux, utx, uT, inv = _unique_rows(summary.x[idx], summary.t_x[idx], summary.T[idx])
        counts = np.bincount(inv, minlength=len(ux))
        for k, end in enumerate(ends):
            e = m.expected_purchases(fit.bgnbd, end / 7.0, ux, utx, uT)
            cumulative[k] += float(np.sum(e * counts))
            if end == horizon:
                predicted[idx] = e[inv]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(summary.T > 0, summary.x / np.where(summary.T > 0, summary.T, 1), 0.0)
    naive = rate * horizon / 7.0
    sel = fitted
    err_model, err_naive = predicted[sel] - actual[sel], naive[sel] - actual[sel]
    rmse_model, rmse_naive = float(np.sqrt(np.mean(err_model ** 2))), float(np.sqrt(np.mean(err_naive ** 2)))
    tracking = [[(cutoff + timedelta(days=end)).isoformat(), int(np.sum(day_of <= end)), round(cumulative[k], 2)]
                for k, end in enumerate(ends)]
    worse = rmse_model > rmse_naive
    return {
        **base,
        "status": "worse_than_naive" if worse else "ok",
        "detail": (f"per-customer RMSE {rmse_model:.3f} against {rmse_naive:.3f} for the naive forecast (each "
                   f"customer at their past rate)" + ("; the model is worse" if worse else "")),
        "actual_purchases": int(actual[sel].sum()),
        "predicted_purchases": round(float(predicted[sel].sum()), 2),
        "naive_purchases": round(float(naive[sel].sum()), 2),
        "rmse_model": round(rmse_model, 4), "rmse_naive": round(rmse_naive, 4),
        "mae_model": round(float(np.mean(np.abs(err_model))), 4),
        "mae_naive": round(float(np.mean(np.abs(err_naive))), 4),
        "tracking": tracking,
    }


def write_backtest(conn, result: dict) -> None:
    import json

    cols = ("as_of_date", "cutoff_date", "status", "detail", "customers", "actual_purchases", "predicted_purchases",
            "naive_purchases", "rmse_model", "rmse_naive", "mae_model", "mae_naive")
    values = [result.get(c) for c in cols] + [json.dumps(result.get("tracking") or []), m.MODEL_VERSION]
    conn.execute(
        f"insert into clv.backtests ({', '.join(cols)}, tracking, model_version)"
        f" values ({', '.join(['%s'] * (len(cols) + 2))})"
        " on conflict (as_of_date) do update set " + ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
        + ", tracking = excluded.tracking, model_version = excluded.model_version, computed_at = now()",
        values)


def quality_facts(result: dict) -> dict:
    """The backtest as a data-quality check (ops.run_log step ``quality:clv_backtest``):
    a model worse than the naive forecast is a warning, shown in the daily report."""
    warnings = []
    if result["status"] == "worse_than_naive":
        warnings.append({"suite": "clv_backtest", "expectation": "clv_beats_naive_forecast", "severity": "warning",
                         "description": f"CLV backtest {result['cutoff_date']}..{result['as_of_date']}: "
                                        f"{result['detail']}",
                         "unexpected_count": result.get("rmse_model")})
    return {"checkpoint": "clv_backtest", "success": not warnings,
            "evaluated": 0 if result["status"] == "not_enough_data" else 1, "critical": [], "warnings": warnings}


def run(conn, as_of: date, config: ClvConfig) -> dict:
    """Score for ``as_of`` and backtest; one transaction (the caller commits)."""
    facts = fit_and_score(conn, as_of, config)
    result = backtest(conn, as_of, config)
    write_backtest(conn, result)
    facts["backtest"] = {k: v for k, v in result.items() if k != "tracking"}
    return facts
