"""What is in ``raw.quarantine``, and which of it is still open.

A quarantined record is *resolved* once a valid version of the same order
(same platform, shop and order id) lands in a later batch: the platform or the
sheet sent it again, fixed, or a backfill re-read it. Everything else is *open*:
the order's latest state is not in the warehouse. A record with no order id
(an unparseable page or row) stays open: only a person can say what it was.

Reasons carry the offending value (``unparseable amount in total: '13912345678元'``),
so they are grouped by their *kind* (the value cut off) and redacted before
anything is printed or put in a report. Exports keep the full reason and the
payload as received: they are for the data team fixing the source, like the
raw layer itself.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from crm_pipeline.pii import redact
from crm_pipeline.platforms import PLATFORMS

_WHERE = re.compile(r"^.+? row \d+: ")  # intake's "<file>[ <sheet>] row N: " prefix
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def reason_kind(reason: str) -> str:
    """The reason without the offending value: what to group and show.

    >>> reason_kind("o.xlsx row 3: unparseable amount '13912345678元x'")
    'unparseable amount'
    >>> reason_kind("impossible date in created: '2026-02-30 10:00:00'")
    'impossible date in created'
    """
    text = _QUOTED.sub("…", _WHERE.sub("", reason or "", count=1))
    text = text.split(":", 1)[0].split(" (", 1)[0].replace(" …", "").replace("…", "").strip()
    return redact(text) or "unknown"


def _rows_sql(platform: str, table: str, with_payload: bool) -> str:
    # the first later batch that landed a valid version of this order, if any
    return (
        "select q.quarantine_id, q.platform, q.shop_id, q.batch_id, q.record_ref, q.reason,"
        f" q.quarantined_at, {'q.payload' if with_payload else 'null'} as payload,"
        f" (select v.batch_id from raw.{table}_versions v"
        "   where v.shop_id = q.shop_id and v.order_id = q.record_ref"
        "     and v.batch_id <> q.batch_id and v.loaded_at > q.quarantined_at"
        "   order by v.loaded_at limit 1) as resolved_by"
        f" from raw.quarantine q where q.platform = '{platform}'"
        "  and (%(shop)s::text is null or q.shop_id = %(shop)s)"
        "  and (%(since)s::date is null or q.quarantined_at >= %(since)s::date)"
    )


def _select(conn, shop: str | None, since: date | None, with_payload: bool = False):
    sql = " union all ".join(_rows_sql(name, spec.raw_table, with_payload) for name, spec in PLATFORMS.items())
    # a server-side cursor: an export streams however many records there are
    cur = conn.cursor(name="quarantine_rows")
    cur.execute(f"select * from ({sql}) r order by quarantined_at, quarantine_id", {"shop": shop, "since": since})
    return cur


@dataclass
class Group:
    platform: str
    shop_id: str
    kind: str
    records: int = 0
    open: int = 0
    first: datetime | None = None
    last: datetime | None = None


def summarize(conn, shop: str | None = None, since: date | None = None) -> list[Group]:
    """Quarantine by platform, shop and kind of reason; most open first."""
    groups: dict[tuple[str, str, str], Group] = {}
    with _select(conn, shop, since) as cur:
        for _qid, platform, shop_id, _batch, _ref, reason, at, _payload, resolved_by in cur:
            key = (platform, shop_id, reason_kind(reason))
            g = groups.setdefault(key, Group(*key))
            g.records += 1
            g.open += resolved_by is None
            g.first = at if g.first is None else min(g.first, at)
            g.last = at if g.last is None else max(g.last, at)
    return sorted(groups.values(), key=lambda g: (-g.open, -g.records, g.platform, g.shop_id, g.kind))


EXPORT_COLUMNS = ["quarantine_id", "platform", "shop_id", "batch_id", "record_ref", "kind", "reason",
                  "quarantined_at", "status", "resolved_by_batch", "payload"]


def export(conn, path: Path, shop: str | None = None, since: date | None = None, open_only: bool = False) -> int:
    """Write quarantined records (full reason and payload) to a CSV Excel/WPS opens; returns rows written.

    Written to a temporary file first: a failed export leaves no half-written sheet.
    """
    from crm_pipeline.sheets import csv_escape

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    written = 0
    try:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh, _select(conn, shop, since, True) as cur:
            out = csv.writer(fh)
            out.writerow(EXPORT_COLUMNS)
            for qid, platform, shop_id, batch, ref, reason, at, payload, resolved_by in cur:
                if open_only and resolved_by is not None:
                    continue
                # as received from outside: a field starting with = + - @ must not become a formula (sheets.py)
                out.writerow([csv_escape(v) for v in (
                    qid, platform, shop_id, batch, ref or "", reason_kind(reason), reason, at.isoformat(),
                    "open" if resolved_by is None else "resolved", resolved_by or "", payload)])
                written += 1
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return written
