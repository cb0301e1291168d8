"""BG/NBD and Gamma-Gamma math (crm_pipeline/clv/models.py), checked against the models'
own generative story: customers simulated from known parameters, then fitted and forecast.

The paper's figures are checked on the paper's data in tests/integration/test_clv.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from crm_pipeline.clv import models as m

TRUE = m.BGNBD(r=0.5, alpha=6.0, a=0.8, b=3.0, log_likelihood=0.0, customers=0)


def simulate(n: int, calibration: float, holdout: float, seed: int, params: m.BGNBD = TRUE):
    """BG/NBD's story: Poisson purchases at a gamma-distributed rate; after each repeat purchase
    the customer drops out with a beta-distributed probability (never right after the first:
    the likelihood of x = 0 is exp(-lambda T)). Returns (x, t_x, T, holdout count)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    first = rng.uniform(0, calibration * 0.6, n)  # first purchases spread over the first 60%
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    T = calibration - first
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t <= T[i]:
                x[i] += 1
                t_x[i] = t
            elif t <= T[i] + holdout:
                future[i] += 1
            else:
                break
            if rng.random() < p[i]:  # dropped out after this purchase
                break
    return x, t_x, T, future


@pytest.fixture(scope="module")
def world():
    return simulate(20_000, 52.0, 26.0, seed=11)


def test_the_fit_recovers_the_parameters_it_was_simulated_from(world):
    x, t_x, T, _ = world
    fit = m.fit_bgnbd(x, t_x, T)
    for name, true in zip(("r", "alpha", "a", "b"), TRUE.params(), strict=True):
        assert abs(getattr(fit, name) - true) / true < 0.15, (name, getattr(fit, name), true)
    # the maximum: the true parameters are no more likely than the fitted ones
    assert fit.log_likelihood >= float(np.sum(m.bgnbd_log_likelihood(TRUE.params(), x, t_x, T)))


def test_the_conditional_forecast_matches_what_the_simulated_customers_did(world):
    """E[purchases in the holdout | history] (eq. 10) against the holdout the simulation drew,
    in total and by frequency: the model's forecast is its own story's average."""
    x, t_x, T, future = world
    expected = m.expected_purchases(TRUE, 26.0, x, t_x, T)
    assert abs(expected.sum() - future.sum()) / future.sum() < 0.05
    for lo, hi in ((0, 0), (1, 2), (3, 6), (7, 1000)):
        sel = (x >= lo) & (x <= hi)
        assert abs(expected[sel].sum() - future[sel].sum()) / max(future[sel].sum(), 1) < 0.12, (lo, hi)


def test_p_alive_is_a_probability_that_falls_with_silence(world):
    x, t_x, T, future = world
    alive = m.p_alive(TRUE, x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1)) and np.all(alive[x == 0] == 1)  # no repeat: no dropout seen
    # the same history, longer silence: less likely alive
    assert m.p_alive(TRUE, 5, 10, 20)[()] > m.p_alive(TRUE, 5, 10, 40)[()] > m.p_alive(TRUE, 5, 10, 80)[()]
    # customers the model thinks gone buy less in the holdout than those it thinks alive
    repeat = x > 0
    assert future[repeat & (alive < 0.3)].mean() < future[repeat & (alive > 0.9)].mean() / 3


def test_expectations_grow_with_the_horizon_and_stay_finite_for_heavy_buyers():
    x = np.array([0, 1, 5, 50, 400, 2000], dtype=float)
    t_x = np.array([0, 10, 30, 50, 52, 52], dtype=float)
    T = np.full(6, 52.0)
    fit = m.BGNBD(0.243, 4.414, 0.793, 2.426, 0.0, 0)
    e = np.array([m.expected_purchases(fit, w, x, t_x, T) for w in (4, 13, 52, 104)])
    assert np.all(np.isfinite(e)) and np.all(e >= 0) and np.all(np.diff(e, axis=0) >= -1e-9)
    # a buyer of 2000 purchases in a year is expected to keep about that pace
    assert 0.8 * 2000 / 52 * 13 < e[1, -1] <= 2001 / 52 * 13 * 1.05


def test_the_next_purchase_date_is_where_the_expectation_reaches_one():
    fit = m.BGNBD(0.243, 4.414, 0.793, 2.426, 0.0, 0)
    x, t_x, T = np.array([10.0, 1.0]), np.array([38.0, 2.0]), np.array([39.0, 39.0])
    weeks = m.weeks_until_expected_purchase(fit, x, t_x, T, max_weeks=52)
    assert np.isfinite(weeks[0]) and np.isnan(weeks[1])  # the frequent buyer soon; the lapsed one not within a year
    assert abs(m.expected_purchases(fit, weeks[0], x[:1], t_x[:1], T[:1])[0] - 1) < 0.02


def test_gamma_gamma_recovers_its_parameters_and_shrinks_toward_the_mean():
    rng = np.random.default_rng(5)
    p, q, gamma = 6.0, 4.0, 15.0
    n = 5000
    nu = rng.gamma(q, 1 / gamma, n)  # each customer's scale
    x = rng.integers(1, 12, n).astype(float)
    m_x = np.array([rng.gamma(p, 1 / nu[i], int(x[i])).mean() for i in range(n)])
    fit = m.fit_gamma_gamma(x, m_x)
    assert abs(fit.p - p) / p < 0.1 and abs(fit.q - q) / q < 0.15 and abs(fit.gamma - gamma) / gamma < 0.15
    mean = fit.mean_spend()
    spend = m.expected_spend(fit, np.array([0.0, 1.0, 50.0]), np.array([np.nan, 300.0, 300.0]))
    assert abs(spend[0] - mean) < 1e-9  # one-time buyers: the population mean
    assert mean < spend[1] < spend[2] < 300  # pulled toward the mean, less so with more purchases
    assert abs(m.gamma_gamma_independence(x, m_x)) < 0.05


def test_clv_is_discounted_expected_purchases_times_spend():
    fit = m.BGNBD(0.243, 4.414, 0.793, 2.426, 0.0, 0)
    x, t_x, T = np.array([3.0]), np.array([30.0]), np.array([39.0])
    undiscounted = m.clv(fit, np.array([20.0]), x, t_x, T, months=12, monthly_discount=0.0)
    assert abs(undiscounted[0] - 20 * m.expected_purchases(fit, 360 / 7, x, t_x, T)[0]) < 1e-9
    assert m.clv(fit, np.array([20.0]), x, t_x, T, months=12, monthly_discount=0.01)[0] < undiscounted[0]


def test_a_fit_on_nothing_is_an_error_not_a_number():
    with pytest.raises(m.FitError):
        m.fit_bgnbd([], [], [])
    with pytest.raises(m.FitError):
        m.fit_gamma_gamma([0, 0], [np.nan, np.nan])


def test_config_errors_name_the_file_and_the_key(tmp_path):
    from crm_pipeline.clv.config import ClvConfig, ClvConfigError, load_clv_config

    assert load_clv_config(tmp_path / "missing.yml") == ClvConfig()
    path = tmp_path / "clv.yml"
    for text, key in (("fit_by: everyone\n", "fit_by"), ("min_repeat_buyers: many\n", "min_repeat_buyers"),
                      ("horizon_month: 12\n", "horizon_month"), ("monthly_discount_rate: 1.5\n", "monthly_discount"),
                      ("call_list_rank: clv\n", "call_list_rank")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ClvConfigError, match=key) as err:
            load_clv_config(path)
        assert str(path) in str(err.value)
    path.write_text("monthly_discount_rate: 0\nfit_by: seller\n", encoding="utf-8")
    assert load_clv_config(path) == ClvConfig(monthly_discount_rate=0.0, fit_by="seller")


def test_spend_without_differences_between_customers_is_a_degenerate_gamma_gamma():
    """Every customer with one spend scale (the sandbox world): the gamma mixing degenerates,
    q and gamma run off together, and the expected order value is the population mean."""
    rng = np.random.default_rng(8)
    x = rng.integers(1, 10, 3000).astype(float)
    m_x = np.array([rng.gamma(2.0, 150.0, int(k)).mean() for k in x])
    fit = m.fit_gamma_gamma(x, m_x)
    assert fit.degenerate() and abs(fit.mean_spend() - 300) < 15
    spend = m.expected_spend(fit, np.array([1.0, 9.0]), np.array([50.0, 900.0]))
    # own averages barely count: each expected value moves under a tenth of the way from the
    # population mean towards the customer's own average
    own = np.array([50.0, 900.0])
    assert np.all(np.abs(spend - fit.mean_spend()) < 0.1 * np.abs(own - fit.mean_spend()))
    assert not m.fit_gamma_gamma(*_heterogeneous()).degenerate()


def _heterogeneous():
    rng = np.random.default_rng(9)
    nu = rng.gamma(4.0, 1 / 15.0, 3000)
    x = rng.integers(1, 10, 3000).astype(float)
    return x, np.array([rng.gamma(6.0, 1 / nu[i], int(x[i])).mean() for i in range(3000)])


def test_a_wrong_clv_config_exits_with_the_usage_code(tmp_path, monkeypatch):
    from crm_pipeline.cli import EXIT_USAGE, main
    from crm_pipeline.settings import reload_settings

    config = tmp_path / "config"
    config.mkdir()
    (config / "clv.yml").write_text("fit_by: everyone\n", encoding="utf-8")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(config))
    monkeypatch.setenv("CRM_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")  # never reached
    reload_settings()
    monkeypatch.setattr("crm_pipeline.cli.ensure_environment", lambda *a, **k: None)
    try:
        assert main(["clv", "--date", "2026-11-20"]) == EXIT_USAGE
    finally:
        monkeypatch.undo()
        reload_settings()
