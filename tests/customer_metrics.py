"""Independent computations of RFM, lifecycle stages and yearly KPIs from plain order
lists (pandas and Python, never the dbt models), for the tests that check the marts
against them (issue 29: tests/integration/test_rfm_lifecycle_kpis.py, test_cdnow_conformance.py).

The rules are the documented ones (dbt_project/models/marts/_marts__docs.md, D105-D108),
written again here from their description with the project's default settings.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

# dbt_project.yml defaults
RECENCY_DAYS = (30, 90, 180, 365)
FREQUENCY_ORDERS = (2, 3, 4, 6)
AT_RISK_DAYS, CHURN_DAYS = 60, 100
AT_RISK_MULT, CHURN_MULT = 1.5, 2.0
MIN_INTERVALS, MIN_CYCLE_DAYS, CHURN_FLOOR_DAYS = 2, 14, 60
LOYAL_MIN_ORDERS = 4
BUYING = ("new", "returning", "loyal", "win_back", "at_risk")

# each segment in plain words, on raw figures (not scores): what its members must be
SEGMENT_DEFINITIONS = {
    "champions": lambda c, med: c.days <= 90 and c.orders >= 3 and c.spend >= med,
    "loyal": lambda c, med: c.orders >= 3 and c.days <= 180,
    "potential_loyalist": lambda c, med: c.orders == 2 and c.days <= 90,
    "new": lambda c, med: c.orders == 1 and c.days <= 30,
    "promising": lambda c, med: c.orders == 1 and 30 < c.days <= 90,
    "need_attention": lambda c, med: c.orders == 2 and 90 < c.days <= 180,
    "about_to_sleep": lambda c, med: c.orders == 1 and 90 < c.days <= 180,
    "cannot_lose": lambda c, med: c.orders >= 4 and c.spend >= med and c.days > 180,
    "at_risk": lambda c, med: c.orders >= 2 and c.days > 180,
    "hibernating": lambda c, med: c.orders == 1 and 180 < c.days <= 365,
    "lost": lambda c, med: c.orders == 1 and c.days > 365,
}


def segment_rules() -> list[dict]:
    with (ROOT / "dbt_project" / "seeds" / "rfm_segment_map.csv").open() as fh:
        rules = [{k: (v if k == "segment" else int(v)) for k, v in r.items()} for r in csv.DictReader(fh)]
    return sorted(rules, key=lambda r: r["priority"])


def expected_rfm(orders: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """RFM per customer from paid orders (columns customer, paid_date, amount) up to as_of."""
    paid = orders[orders.paid_date <= as_of]
    c = paid.groupby("customer").agg(last=("paid_date", "max"), orders=("amount", "size"), spend=("amount", "sum"))
    c["days"] = [(as_of - d).days for d in c["last"]]
    c["r"] = [1 + sum(d <= b for b in RECENCY_DAYS) for d in c.days]
    c["f"] = [1 + sum(n >= b for b in FREQUENCY_ORDERS) for n in c.orders]
    n = len(c)
    assert n >= 500, "the quintile method needs rfm_min_customers_for_quintiles buyers"
    pct = (c.spend.rank(method="min") - 1) / (n - 1)  # percent_rank
    c["m"] = [min(5, 1 + int(p * 5)) for p in pct]
    rules = segment_rules()

    def segment(row):
        for g in rules:
            if g["r_min"] <= row.r <= g["r_max"] and g["f_min"] <= row.f <= g["f_max"] and g["m_min"] <= row.m <= g["m_max"]:
                return g["segment"]
        raise AssertionError(f"no rule for {row.r}{row.f}{row.m}")

    c["segment"] = [segment(row) for row in c.itertuples()]
    return c


def segment_violations(c: pd.DataFrame) -> list:
    """Customers whose segment's plain-words definition does not hold for them."""
    med = c.spend.median()
    return [(i, r.segment, r.days, r.orders, r.spend) for i, r in c.iterrows()
            if not SEGMENT_DEFINITIONS[r.segment](r, med)]


@dataclass(frozen=True)
class Stage:
    stage: str
    valid_from: datetime


def expected_stages(paid_at: list[datetime], as_of_end: datetime) -> list[Stage]:
    """Lifecycle stages (R17, D107) of one customer from their paid order times."""
    events: list[tuple[datetime, int, int, str]] = []
    gaps: list[float] = []
    prev_churn = None
    for i, t in enumerate(paid_at, start=1):
        if i > 1:
            gap = (t - paid_at[i - 2]).total_seconds() / 86400
            gaps.append(gap)
            stage = ("win_back" if gap > prev_churn else "loyal" if i >= LOYAL_MIN_ORDERS else "returning")
        else:
            stage = "new"
        if i - 1 >= MIN_INTERVALS:
            median = statistics.median(gaps)
            churn = max(CHURN_FLOOR_DAYS, CHURN_MULT * median)
            at_risk = min(churn, max(MIN_CYCLE_DAYS, AT_RISK_MULT * median))
        else:
            at_risk, churn = AT_RISK_DAYS, CHURN_DAYS
        events.append((t, 1, i, stage))
        nxt = paid_at[i] if i < len(paid_at) else None
        for after, order, name in ((at_risk, 2, "at_risk"), (churn, 3, "churned")):
            when = t + timedelta(days=after)
            if nxt is None or when < nxt:
                events.append((when, order, i, name))
        prev_churn = churn
    events = sorted(e for e in events if e[0] < as_of_end)
    out: list[Stage] = []
    for k, (when, _, _, name) in enumerate(events):
        if k + 1 < len(events) and events[k + 1][0] <= when:
            continue  # an empty interval (the next stage starts at the same moment)
        out.append(Stage(name, when))
    return out


def expected_yearly(stages: dict[str, list[Stage]], as_of: date, local) -> pd.DataFrame:
    """Distinct customers per year: churn base, churned, win-back base, won back (D108).
    ``local`` turns a stage start into its local date."""
    rows = []
    for customer, seq in stages.items():
        for k, s in enumerate(seq):
            start = local(s.valid_from)
            end = local(seq[k + 1].valid_from) if k + 1 < len(seq) else as_of
            for year in range(start.year, end.year + 1):
                rows.append((year, customer, s.stage, start.year == year))
    d = pd.DataFrame(rows, columns=["year", "customer", "stage", "entered"])
    out = pd.DataFrame({
        "churn_base_customers": d[d.stage.isin(BUYING)].groupby("year").customer.nunique(),
        "churned_customers": d[(d.stage == "churned") & d.entered].groupby("year").customer.nunique(),
        "win_back_base_customers": d[d.stage == "churned"].groupby("year").customer.nunique(),
        "won_back_customers": d[(d.stage == "win_back") & d.entered].groupby("year").customer.nunique(),
    }).fillna(0).astype(int)
    return out
