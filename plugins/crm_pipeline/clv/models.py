"""BG/NBD and Gamma-Gamma: the published likelihoods, fitted by maximum likelihood.

Pure functions over numpy arrays (no I/O), in the papers' own notation:

* x   -- repeat purchases in the calibration period (purchases after the first),
* t_x -- time of the last purchase, from the first (recency),
* T   -- time from the first purchase to the end of the calibration period,
* m_x -- average value of the x repeat purchases (Gamma-Gamma).

Time is in weeks, as in the papers. Sources:

* Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2): the BG/NBD
  likelihood (eq. 6), P(alive) (eq. 11) and the conditional expectation (eq. 10).
* Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value": the
  likelihood of the average repeat spend m_x given x, and the conditional mean
  E[M | p, q, gamma, m_x, x] (eq. 5 of the note).

The fits minimize the negative log-likelihood over log-parameters (so every
parameter stays positive) with L-BFGS-B. Customers with identical summaries
are fitted once with a weight: the likelihood is a sum over customers, so
this is exact, and a shop's summaries repeat a lot (most buy once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

MODEL_VERSION = "bgnbd-gg-mle-1"


LOG_BOUND = 12.0  # each parameter in [e^-12, e^12]: wider than any real shop's optimum
DEGENERATE_Q = 102.0  # Gamma-Gamma q above this: customers' spend scales vary by under 10% (CV)


class FitError(RuntimeError):
    """The optimizer did not converge to a usable optimum."""


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def params(self) -> tuple[float, float, float, float]:
        return self.r, self.alpha, self.a, self.b


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int

    def degenerate(self) -> bool:
        """Spend does not vary between customers beyond chance: the gamma mixing has
        collapsed (q and gamma run off together towards the optimizer's bound, where the
        likelihood is flat, so where exactly the optimizer stops is noise). The customers'
        spend scales then have a coefficient of variation 1/sqrt(q-2) under 10% (q > 102),
        and the conditional mean is the population mean p*gamma/(q-1) whatever a customer's
        own average."""
        return self.q > DEGENERATE_Q or max(np.log(self.q), np.log(self.gamma)) > LOG_BOUND - 0.1

    def mean_spend(self) -> float:
        """The population mean of a customer's average spend, E[zeta] = p*gamma/(q-1) (q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("nan")


def _compress(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the given columns and how often each occurs."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


def bgnbd_log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood under BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    # the second term exists only for repeat buyers (delta_{x>0}); b + x - 1 > 0 there
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.where(x > 0, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
                      -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _minimize(negll, start: np.ndarray, what: str) -> np.ndarray:
    result = optimize.minimize(negll, start, method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start))
    if not result.success and "ABNORMAL" not in str(result.message):
        raise FitError(f"{what}: the optimizer did not converge ({result.message})")
    if not np.isfinite(result.fun):
        raise FitError(f"{what}: the likelihood is not finite at the optimum")
    return np.exp(result.x)


def fit_bgnbd(x, t_x, T) -> BGNBD:
    """Maximum-likelihood BG/NBD parameters for the given customers (weeks)."""
    (ux, utx, uT), weight = _compress(x, t_x, T)
    if weight.sum() == 0:
        raise FitError("BG/NBD: no customers")

    def negll(logp):
        return -float(np.sum(weight * bgnbd_log_likelihood(np.exp(logp), ux, utx, uT)))

    # start where a typical shop's optimum lies: r and a below 1, alpha a few weeks (scale of T)
    start = np.log([0.5, max(float(np.mean(T)), 1.0) / 4, 0.8, 2.5])
    r, alpha, a, b = _minimize(negll, start, "BG/NBD")
    return BGNBD(float(r), float(alpha), float(a), float(b), -negll(np.log([r, alpha, a, b])), int(weight.sum()))


def p_alive(model: BGNBD, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T) (eq. 11); 1 for customers without a repeat purchase."""
    r, alpha, a, b = model.params()
    x = np.asarray(x, dtype=float)
    ratio = np.exp((r + x) * (np.log(alpha + np.asarray(T, dtype=float)) - np.log(alpha + np.asarray(t_x, dtype=float))))
    with np.errstate(over="ignore", invalid="ignore"):
        odds = np.where(x > 0, a / np.where(x > 0, b + x - 1, 1.0) * ratio, 0.0)
    return 1.0 / (1.0 + odds)


def expected_purchases(model: BGNBD, t, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (eq. 10), t in weeks (scalar or per customer)."""
    r, alpha, a, b = model.params()
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    t = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
    z = t / (alpha + T + t)
    with np.errstate(over="ignore", invalid="ignore"):  # handled below
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        bracket = 1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp
        value = head * bracket * p_alive(model, x, t_x, T)
    # the Gauss series can fail for very frequent buyers (large r + x, z near 1); then the
    # upper bound the model allows, the posterior purchase rate times t, stands in
    fallback = (r + x) / (alpha + T) * t * p_alive(model, x, t_x, T)
    ok = np.isfinite(value) & (value >= 0)
    return np.where(ok, np.minimum(value, np.where(ok, fallback, np.inf)), fallback)


def gamma_gamma_log_likelihood(params, x, m_x) -> np.ndarray:
    """Each repeat buyer's log-likelihood of their average spend m_x given x (Fader & Hardie 2013)."""
    p, q, gamma = params
    x = np.asarray(x, dtype=float)
    m_x = np.asarray(m_x, dtype=float)
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(gamma)
            + (px - 1) * np.log(m_x) + px * np.log(x) - (px + q) * np.log(gamma + m_x * x))


def fit_gamma_gamma(x, m_x) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters over repeat buyers (x > 0, m_x > 0)."""
    x = np.asarray(x, dtype=float)
    m_x = np.asarray(m_x, dtype=float)
    keep = (x > 0) & (m_x > 0)
    (ux, um), weight = _compress(x[keep], m_x[keep])
    if weight.sum() == 0:
        raise FitError("Gamma-Gamma: no repeat buyers with a positive spend")

    def negll(logp):
        return -float(np.sum(weight * gamma_gamma_log_likelihood(np.exp(logp), ux, um)))

    start = np.log([1.0, 1.0, max(float(np.mean(m_x[keep])), 1.0)])
    p, q, gamma = _minimize(negll, start, "Gamma-Gamma")
    return GammaGamma(float(p), float(q), float(gamma), -negll(np.log([p, q, gamma])), int(weight.sum()))


def expected_spend(model: GammaGamma, x, m_x) -> np.ndarray:
    """E[average order value | x, m_x] (the note's eq. 5); the population mean where x = 0."""
    x = np.asarray(x, dtype=float)
    m_x = np.nan_to_num(np.asarray(m_x, dtype=float))
    p, q, gamma = model.p, model.q, model.gamma
    return (gamma + m_x * x) * p / (p * x + q - 1)


def clv(bgnbd: BGNBD, spend: np.ndarray, x, t_x, T, months: int, monthly_discount: float,
        days_per_month: float = 30.0) -> np.ndarray:
    """Discounted expected value of the next ``months`` months: the expected purchases of
    each month (from BG/NBD), times the expected order value, discounted monthly.

    CLV = sum_{i=1..months} (E[X(i)] - E[X(i-1)]) * spend / (1 + d)^i, with E[X(i)] the
    expected purchases in the first i months (the discrete form lifetimes and
    pymc-marketing use).
    """
    x = np.asarray(x, dtype=float)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for i in range(1, months + 1):
        cumulative = expected_purchases(bgnbd, i * days_per_month / 7.0, x, t_x, T)
        total += (cumulative - previous) * spend / (1 + monthly_discount) ** i
        previous = cumulative
    return total


def weeks_until_expected_purchase(bgnbd: BGNBD, x, t_x, T, max_weeks: float, target: float = 1.0,
                                  steps: int = 12) -> np.ndarray:
    """The time (weeks from T) by which the expected purchases reach ``target``, by bisection;
    NaN where they do not within ``max_weeks`` (the model expects the customer is gone or slow)."""
    x = np.asarray(x, dtype=float)
    lo = np.zeros_like(x)
    hi = np.full_like(x, float(max_weeks))
    reachable = expected_purchases(bgnbd, hi, x, t_x, T) >= target
    for _ in range(steps):
        mid = (lo + hi) / 2
        above = expected_purchases(bgnbd, mid, x, t_x, T) >= target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(reachable, hi, np.nan)


def gamma_gamma_independence(x, m_x) -> float:
    """Pearson correlation of frequency and average spend over repeat buyers: the
    Gamma-Gamma model assumes the two are independent (the note reports 0.11 on CDNOW)."""
    x = np.asarray(x, dtype=float)
    m_x = np.asarray(m_x, dtype=float)
    keep = (x > 0) & (m_x > 0)
    if keep.sum() < 3 or np.std(x[keep]) == 0 or np.std(m_x[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(x[keep], m_x[keep])[0, 1])
