"""Where the CLV scores change what the pipeline does (issue 33 item 5), each behind a
switch in config/clv.yml whose default keeps the fixed rules:

* ``call_list_rank: expected_value`` -- the call list's value-ranked share (R7) is chosen
  by CLV instead of the order's value (``call_list_values``);
* ``lifecycle_trigger_basis: p_alive`` -- the care message (R12) goes to a repeat buyer
  when P(alive) falls below ``care_below_p_alive``, instead of on entering ``at_risk``
  after a fixed gap (``care_by_p_alive``);
* campaign audiences take ``min_clv_cny`` / ``max_clv_cny`` (outreach/campaigns.py).

Every use reads the night's scores only: when they are not the business day's (the
CLV step failed or is disabled), the fixed rule applies and a warning says so.
"""

from __future__ import annotations

from datetime import date, timedelta

from crm_pipeline.clv.config import load_clv_config
from crm_pipeline.pii import get_logger

log = get_logger(__name__)

CARE_WINDOW_DAYS = 7  # a crossing this recent still gets its message (a refit can move it a little)


def _scores_current(conn, as_of: date | None) -> bool:
    row = conn.execute("select max(as_of_date) from clv.customer_scores").fetchone()
    current = row[0] is not None and (as_of is None or row[0] == as_of)
    if not current:
        log.warning("CLV scores are not the business day's (%s, latest %s): the fixed rule applies", as_of, row[0])
    return current


def call_list_values(conn, list_date: date) -> dict[str, float] | None:
    """customer_id -> CLV for ranking the call list, or None to rank by order value (default)."""
    if load_clv_config().call_list_rank != "expected_value" or not _scores_current(conn, list_date - timedelta(days=1)):
        return None
    return {c: float(v) for c, v in conn.execute(
        "select customer_id, clv_cny from clv.customer_scores where status = 'fitted' and clv_cny is not null")}


def _care_schedule(conn, as_of: date, threshold: float) -> dict[str, date | None]:
    """Fitted repeat buyers -> the day their P(alive) fell (or falls) below ``threshold`` given
    their history, from eq. 11 solved for T; None when the model puts them below it already
    at their last purchase (P(alive) then says nothing about their silence)."""
    import numpy as np

    rows = conn.execute(
        "select s.customer_id, s.first_purchase_date, s.frequency, s.recency_weeks, f.bgnbd_r, f.bgnbd_alpha,"
        " f.bgnbd_a, f.bgnbd_b from clv.customer_scores s"
        " join clv.fits f on f.as_of_date = s.as_of_date and f.purpose = 'score' and f.fit_group = s.fit_group"
        " where s.status = 'fitted' and s.frequency > 0 and s.as_of_date = %s", (as_of,)).fetchall()
    if not rows:
        return {}
    x = np.array([r[2] for r in rows], dtype=float)
    t_x = np.array([r[3] for r in rows], dtype=float)
    r, alpha, a, b = (np.array([row[i] for row in rows], dtype=float) for i in (4, 5, 6, 7))
    # P(alive) = 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) < threshold
    k = (1 / threshold - 1) * (b + x - 1) / a
    with np.errstate(divide="ignore", invalid="ignore"):
        t_star = (alpha + t_x) * np.power(k, 1 / (r + x)) - alpha
    out: dict[str, date | None] = {}
    for i, row in enumerate(rows):
        out[row[0]] = (row[1] + timedelta(days=int(np.ceil(t_star[i] * 7)))) if k[i] > 1 else None
    return out


def care_by_p_alive(conn, days_to_send: list[date], proposals: list, send_hour: int) -> list:
    """The care trigger's proposals with ``lifecycle_trigger_basis: p_alive``: repeat buyers the
    model scored get their care message on the day their P(alive) falls below the threshold
    (as the fixed rule sends on the day a customer turns at risk; a crossing up to
    CARE_WINDOW_DAYS before the first send day still counts, a refit can move it a little),
    once per silence: the key names their last purchase day. Everyone else (one-time buyers,
    populations without a fit) keeps the fixed gap. Unchanged when the switch is off."""
    config = load_clv_config()
    if not days_to_send:
        return proposals
    as_of = max(days_to_send) - timedelta(days=1)  # the business day the plan closes
    if config.lifecycle_trigger_basis != "p_alive" or not _scores_current(conn, as_of):
        return proposals
    from crm_pipeline.outreach.triggers import CUSTOMER_ZONE, _at, _sms
    from crm_pipeline.settings import get_settings

    schedule = _care_schedule(conn, as_of, config.care_below_p_alive)
    by_model = {c for c, day in schedule.items() if day is not None}
    kept = [p for p in proposals if p.candidate.customer_id not in by_model]
    first, last = min(days_to_send), max(days_to_send)
    due = {c: max(day, first) for c, day in schedule.items()
           if day is not None and first - timedelta(days=CARE_WINDOW_DAYS) <= day <= last}
    rows = conn.execute(
        f"select c.customer_id, c.name, c.phone_e164, s.last_purchase_date,"
        f" {CUSTOMER_ZONE.format(customer='c.customer_id')} from marts.dim_customers c"
        " join clv.customer_scores s on s.customer_id = c.customer_id where c.customer_id = any(%s)"
        " order by c.customer_id", (sorted(due),)).fetchall()
    default = get_settings().timezone
    return kept + [_sms(f"care:{c}:p_alive:{silent_since.isoformat()}:sms", "care", c, phone,
                        _at(due[c], send_hour, tz or default), "care", {"name": name or "亲"}, tz=tz or default)
                   for c, name, phone, silent_since, tz in rows]
