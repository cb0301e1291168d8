"""bench/clv: the nightly CLV step at 200k and 2M customers, the whole path.

A database holds a ``marts.fct_orders`` with its documented columns only, filled with
orders drawn from the BG/NBD + Gamma-Gamma story (parameters near the CDNOW paper's,
two years of history, two shops); then the step the DAG runs (crm_pipeline.clv.run.run:
summary SQL, fits per shop, scoring of every customer, COPY into clv.customer_scores,
and the backtest with its own fit) is timed, phase by phase.

Env: BENCH_CLV_SIZES (default "200000,2000000"). Prints each size's phases, whether
the fit recovered the simulated parameters, then `clv_fit_seconds_2000000=N` last (the
fits alone at the largest size; the line before it gives the whole step).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import fresh_database, peak_rss_mb  # noqa: E402

AS_OF = date(2026, 11, 20)
DAYS = 730
TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5, "p": 6.0, "q": 4.0, "gamma": 100.0}  # gamma: CNY-sized


def simulate(n: int, seed: int = 1):
    """Orders (customer, shop, day offset, value) from the models' own story, vectorized by round."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n) / 7.0  # per day
    drop = rng.beta(TRUE["a"], TRUE["b"], n)
    scale = rng.gamma(TRUE["q"], 1 / TRUE["gamma"], n)
    first = rng.integers(0, DAYS, n)
    shop = np.where(rng.random(n) < 0.7, "tmall", "jd")
    customers, days = [np.arange(n)], [first]
    t = first.astype(float)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1 / lam[idx])
        inside = t[idx] < DAYS
        idx_in = idx[inside]
        customers.append(idx_in)
        days.append(t[idx_in].astype(int))
        active[idx[~inside]] = False
        active[idx_in[rng.random(len(idx_in)) < drop[idx_in]]] = False
    c = np.concatenate(customers)
    d = np.concatenate(days)
    value = rng.gamma(TRUE["p"], 1 / scale[c])
    return c, shop[c], d, value


def load(url: str, n: int) -> int:
    import psycopg

    c, shop, d, value = simulate(n)
    start = AS_OF - timedelta(days=DAYS - 1)
    with psycopg.connect(url) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute("create table marts.fct_orders (order_key text, customer_id text, shop_id text,"
                     " platform text, is_paid boolean, paid_at timestamptz, paid_date date,"
                     " amount_cny numeric(14, 2), refund_cny numeric(14, 2))")
        with conn.cursor() as cur, cur.copy("copy marts.fct_orders from stdin") as copy:
            for i in range(len(c)):
                day = start + timedelta(days=int(d[i]))
                copy.write_row((f"o{i}", f"c{c[i]}", shop[i], "taobao", True, f"{day}T12:00:00+08:00", day,
                                round(float(value[i]), 2), 0))
        conn.execute("analyze marts.fct_orders")
    return len(c)


def main() -> int:
    import psycopg
    from crm_pipeline.clv.config import ClvConfig
    from crm_pipeline.clv.run import run

    sizes = [int(s) for s in os.environ.get("BENCH_CLV_SIZES", "200000,2000000").split(",")]
    config = ClvConfig()
    last_fit = None
    for n in sizes:
        url = fresh_database(f"crm_bench_clv_{n}")
        t0 = time.perf_counter()
        orders = load(url, n)
        print(f"{n:,} customers, {orders:,} orders generated and loaded in {time.perf_counter() - t0:.0f}s",
              flush=True)
        with psycopg.connect(url) as conn:
            t1 = time.perf_counter()
            facts = run(conn, AS_OF, config)
            conn.commit()
            total = time.perf_counter() - t1
            fit_seconds = sum(r[0] for r in conn.execute("select fit_seconds from clv.fits where purpose = 'score'"))
            backtest_fit = sum(r[0] for r in conn.execute(
                "select fit_seconds from clv.fits where purpose = 'backtest'"))
        s = facts["seconds"]
        tmall = facts["groups"]["tmall"]
        recovered = ", ".join(f"{k}={tmall[k]:.3f} ({TRUE[k]})" for k in TRUE)
        print(f"  score: summary {s['summarize']}s, fits {fit_seconds:.2f}s (both shops), scoring {s['score']}s, "
              f"write {s['write']}s; backtest (its own summary and fits {backtest_fit:.2f}s) "
              f"{total - sum(s.values()):.1f}s; whole step {total:.1f}s; peak RSS {peak_rss_mb():.0f} MB")
        print(f"  fitted (simulated): {recovered}")
        print(f"  backtest: {facts['backtest']['status']}, RMSE {facts['backtest'].get('rmse_model')} vs naive "
              f"{facts['backtest'].get('rmse_naive')}")
        print(f"clv_step_seconds_{n}={total:.1f}", flush=True)
        last_fit = (n, fit_seconds)
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'drop database if exists "crm_bench_clv_{n}" with (force)')
    print(f"clv_fit_seconds_{last_fit[0]}={last_fit[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
