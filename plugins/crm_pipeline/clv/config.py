"""``config/clv.yml``: how customer lifetime value is fitted, scored, backtested and used.

Every key has a default here (a missing file means the defaults); an unknown key or
a value of the wrong kind is a configuration error naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from crm_pipeline.errors import UsageError


class ClvConfigError(UsageError, ValueError):
    """config/clv.yml is wrong: names the file and the key (exit code 2, D74)."""


@dataclass(frozen=True)
class ClvConfig:
    enabled: bool = True
    # population a model is fitted on: "shop" = the shop of each customer's first paid order
    # (a Tmall flagship and a WeChat group-buy differ), "seller" = every customer together
    fit_by: str = "shop"
    min_repeat_buyers: int = 100        # fewer in a population: "not_enough_data", no fit
    horizon_months: int = 12            # CLV horizon
    monthly_discount_rate: float = 0.01  # ~12.7% a year
    next_order_max_days: int = 365      # no expected next-order date beyond this
    backtest_holdout_days: int = 90     # fit up to as-of minus this, predict the rest
    backtest_min_customers: int = 200   # fewer calibration customers: no backtest verdict
    # uses (issue 33 item 5); off by default so the fixed rules stay until a shop opts in
    call_list_rank: str = "priority"    # "priority" (R7 order) | "expected_value" (CLV within a priority)
    lifecycle_trigger_basis: str = "fixed_gap"  # "fixed_gap" (R12/R17 days) | "p_alive"
    care_below_p_alive: float = 0.3     # care (R12) when P(alive) falls below this (repeat buyers)

    CHOICES = {"fit_by": ("shop", "seller"), "call_list_rank": ("priority", "expected_value"),
               "lifecycle_trigger_basis": ("fixed_gap", "p_alive")}


def load_clv_config(path: Path | None = None) -> ClvConfig:
    import yaml

    from crm_pipeline.settings import get_settings

    path = path or get_settings().config_dir / "clv.yml"
    if not path.exists():
        return ClvConfig()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ClvConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    known = {f.name: f for f in fields(ClvConfig)}
    values = {}
    for key, value in data.items():
        if key not in known:
            raise ClvConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        kind = type(getattr(ClvConfig, key))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ClvConfigError(f"{path}: {key} is {value!r}; expected a {kind.__name__}")
        if key in ClvConfig.CHOICES and value not in ClvConfig.CHOICES[key]:
            raise ClvConfigError(f"{path}: {key} is {value!r}; expected one of {', '.join(ClvConfig.CHOICES[key])}")
        values[key] = value
    config = ClvConfig(**values)
    for key in ("min_repeat_buyers", "horizon_months", "next_order_max_days", "backtest_holdout_days"):
        if getattr(config, key) < 1:
            raise ClvConfigError(f"{path}: {key} must be at least 1")
    if not 0 <= config.monthly_discount_rate < 1 or not 0 < config.care_below_p_alive < 1:
        raise ClvConfigError(f"{path}: monthly_discount_rate must be in [0, 1) and care_below_p_alive in (0, 1)")
    return config
