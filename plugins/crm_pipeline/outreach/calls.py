"""Callback lists (R7) and their outcomes (R8).

* first callback ``first_callback_days`` after purchase; a second one
  ``second_callback_days`` after a first call that left an issue unresolved;
* everyone when the day's volume fits the agents' capacity, otherwise:
  unresolved follow-ups, then the highest order values (``high_value_share``
  of the remaining slots), then buyers who rated well but wrote a lukewarm
  review, then a reproducible random sample;
* one .xlsx per agent (frozen header, widths, the 11:00-16:00 call window,
  outcome columns to fill in) plus a combined workbook and a CSV;
* ``import_outcomes`` reads a filled sheet back: all rows valid or nothing is
  applied, with row numbers for every problem.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from crm_pipeline.pii import get_logger

log = get_logger(__name__)

OUTCOME_COLUMNS = [
    ("reached", "是否接通 reached", 10),
    ("resolved", "问题已解决 resolved", 12),
    ("birthday", "生日 birthday", 12),
    ("gender", "性别 gender", 8),
    ("preferences", "偏好 preferences", 22),
    ("tags", "标签 tags", 16),
    ("opt_out", "拒绝联系 opt_out", 10),
    ("notes", "备注 notes", 30),
]
INFO_COLUMNS = [
    ("rank", "序号 #", 6),
    ("customer_id", "客户ID customer_id", 16),
    ("call_round", "轮次 call_round", 10),
    ("name", "姓名 name", 10),
    ("phone", "手机 phone", 15),
    ("order_key", "订单 order", 34),
    ("paid_date", "付款日期 paid", 12),
    ("order_value", "金额 value (CNY)", 12),
    ("products", "商品 products", 28),
    ("priority_reason", "原因 reason", 22),
    ("context", "备注/上次问题 context", 26),
]
YES = {"是", "y", "yes", "1", "true", "接通", "已解决", "√", "✓"}
NO = {"否", "n", "no", "0", "false", "未接通", "未解决", "×", "x"}


@dataclass(frozen=True)
class CallConfig:
    call_window: tuple[str, str] = ("11:00", "16:00")
    first_callback_days: int = 15
    second_callback_days: int = 30
    high_value_share: float = 0.5
    lukewarm_phrases: tuple[str, ...] = ("还行", "一般")
    agents: tuple[tuple[str, str, int], ...] = (("agent", "Agent", 20),)

    @property
    def capacity(self) -> int:
        return sum(a[2] for a in self.agents)


def load_call_config(path: Path) -> CallConfig:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    window = data.get("call_window") or {}
    agents = tuple((str(a["id"]), str(a.get("name", a["id"])), int(a["capacity"])) for a in data.get("agents") or [])
    if not agents:
        raise ValueError(f"{path}: at least one agent with a capacity is needed")
    return CallConfig(
        call_window=(str(window.get("start", "11:00")), str(window.get("end", "16:00"))),
        first_callback_days=int(data.get("first_callback_days", 15)),
        second_callback_days=int(data.get("second_callback_days", 30)),
        high_value_share=float(data.get("high_value_share", 0.5)),
        lukewarm_phrases=tuple(data.get("lukewarm_phrases") or ()),
        agents=agents,
    )


@dataclass(frozen=True)
class CallCandidate:
    customer_id: str
    call_round: int
    order_key: str
    order_value: float
    rating: str | None = None
    review: str | None = None
    name: str | None = None
    phone: str | None = None
    paid_date: date | None = None
    products: str = ""
    context: str = ""


@dataclass(frozen=True)
class CallEntry:
    candidate: CallCandidate
    agent: str
    priority_reason: str
    rank: int


def is_lukewarm(c: CallCandidate, phrases: tuple[str, ...]) -> bool:
    return c.rating == "good" and bool(c.review) and any(p in c.review for p in phrases)


def _sample_key(list_date: date, customer_id: str) -> str:
    return hashlib.sha1(f"{list_date.isoformat()}|{customer_id}".encode()).hexdigest()


def select_calls(candidates: list[CallCandidate], config: CallConfig, list_date: date) -> list[CallEntry]:
    """Choose and assign the day's calls (R7). Pure and deterministic."""
    # one entry per customer and round: the most valuable order
    best: dict[tuple, CallCandidate] = {}
    for c in candidates:
        k = (c.customer_id, c.call_round)
        if k not in best or (c.order_value, c.order_key) > (best[k].order_value, best[k].order_key):
            best[k] = c
    pool = sorted(best.values(), key=lambda c: (c.call_round, c.customer_id))
    # a customer gets one call a day: a follow-up beats a first call
    seen: set[str] = set()
    unique = []
    for c in sorted(pool, key=lambda c: (-c.call_round, c.customer_id)):
        if c.customer_id not in seen:
            seen.add(c.customer_id)
            unique.append(c)
    capacity = config.capacity
    chosen: list[tuple[CallCandidate, str]] = []
    if len(unique) <= capacity:
        chosen = [(c, "unresolved_followup" if c.call_round == 2 else "all_fit")
                  for c in sorted(unique, key=lambda c: (-c.call_round, -c.order_value, c.customer_id))]
    else:
        followups = sorted([c for c in unique if c.call_round == 2], key=lambda c: (-c.order_value, c.customer_id))
        rest = [c for c in unique if c.call_round != 2]
        chosen = [(c, "unresolved_followup") for c in followups[:capacity]]
        left = capacity - len(chosen)
        by_value = sorted(rest, key=lambda c: (-c.order_value, c.customer_id))
        n_value = min(left, int(round(left * config.high_value_share)))
        chosen += [(c, "order_value") for c in by_value[:n_value]]
        taken = {c.customer_id for c, _ in chosen}
        left = capacity - len(chosen)
        lukewarm = [c for c in by_value if c.customer_id not in taken and is_lukewarm(c, config.lukewarm_phrases)]
        chosen += [(c, "good_rating_lukewarm_review") for c in lukewarm[:left]]
        taken = {c.customer_id for c, _ in chosen}
        left = capacity - len(chosen)
        others = sorted((c for c in rest if c.customer_id not in taken),
                        key=lambda c: _sample_key(list_date, c.customer_id))
        chosen += [(c, "random_sample") for c in others[:left]]
    # round-robin over agents with capacity left, in priority order
    remaining = {a[0]: a[2] for a in config.agents}
    order = [a[0] for a in config.agents]
    entries = []
    i = 0
    for rank, (c, reason) in enumerate(chosen, start=1):
        for _ in range(len(order)):
            agent = order[i % len(order)]
            i += 1
            if remaining[agent] > 0:
                remaining[agent] -= 1
                entries.append(CallEntry(c, agent, reason, rank))
                break
    return entries


# -- warehouse I/O -----------------------------------------------------------------------
def load_candidates(conn, list_date: date, config: CallConfig) -> list[CallCandidate]:
    first_day = list_date - timedelta(days=config.first_callback_days)
    rows = conn.execute(
        """
        with phone_optouts as (
            select customer_id, contact from outreach.optouts where channel in ('phone', 'all')
        )
        select o.customer_id, 1, o.order_key, o.amount_cny, r.rating, r.review, c.name, c.phone_e164, o.paid_date,
               coalesce((select string_agg(distinct i.title, '、') from marts.fct_order_items i
                         where i.order_key = o.order_key), ''), ''
        from marts.fct_orders o
        join marts.dim_customers c on c.customer_id = o.customer_id
        left join lateral (select null::text as rating, null::text as review) r on true
        where o.paid_date = %(first_day)s and o.status in ('paid', 'shipped', 'completed')
          and c.phone_e164 is not null
          and not exists (select 1 from phone_optouts p where p.customer_id = o.customer_id or p.contact = c.phone_e164)
        """,
        {"first_day": first_day},
    ).fetchall()
    followups = conn.execute(
        """
        select e.customer_id, 2, e.order_key, coalesce(o.amount_cny, 0), null, null, c.name, c.phone_e164,
               o.paid_date, '', coalesce(co.notes, '上次回访问题未解决')
        from outreach.call_outcomes co
        join outreach.call_list_entries e
          on e.list_date = co.list_date and e.customer_id = co.customer_id and e.call_round = co.call_round
        join marts.dim_customers c on c.customer_id = co.customer_id
        left join marts.fct_orders o on o.order_key = e.order_key
        where co.call_round = 1 and co.resolved = false
          and co.list_date = %(day)s
          and c.phone_e164 is not null
          and not exists (select 1 from outreach.optouts p where p.channel in ('phone', 'all')
                          and (p.customer_id = co.customer_id or p.contact = c.phone_e164))
        """,
        {"day": list_date - timedelta(days=config.second_callback_days)},
    ).fetchall()
    return [CallCandidate(r[0], r[1], r[2], float(r[3] or 0), r[4], r[5], r[6], r[7], r[8], r[9], r[10])
            for r in list(rows) + list(followups)]


def save_entries(conn, list_date: date, entries: list[CallEntry]) -> None:
    conn.execute("delete from outreach.call_list_entries where list_date = %s", (list_date,))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into outreach.call_list_entries (list_date, customer_id, call_round, order_key, agent,"
            " priority_reason, priority_rank) values (%s, %s, %s, %s, %s, %s, %s)",
            [(list_date, e.candidate.customer_id, e.candidate.call_round, e.candidate.order_key, e.agent,
              e.priority_reason, e.rank) for e in entries],
        )


def _row(e: CallEntry) -> dict:
    c = e.candidate
    return {"rank": e.rank, "customer_id": c.customer_id, "call_round": c.call_round, "name": c.name or "",
            "phone": c.phone or "", "order_key": c.order_key, "paid_date": c.paid_date.isoformat() if c.paid_date else "",
            "order_value": round(c.order_value, 2), "products": c.products, "priority_reason": e.priority_reason,
            "context": c.context, "agent": e.agent}


def write_sheets(entries: list[CallEntry], config: CallConfig, list_date: date, out_dir: Path) -> dict[str, Path]:
    """Per-agent workbooks, a combined workbook (a sheet per agent) and a CSV."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    out_dir.mkdir(parents=True, exist_ok=True)
    names = {a[0]: a[1] for a in config.agents}
    paths: dict[str, Path] = {}
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    fill_in = PatternFill("solid", fgColor="FFF2CC")

    def fill_sheet(ws, agent: str, rows: list[dict]) -> None:
        ws.title = agent[:31]
        window = f"{config.call_window[0]}-{config.call_window[1]}"
        ws["A1"] = f"回访清单 call list {list_date.isoformat()} · 坐席 agent: {names.get(agent, agent)} · " \
                   f"拨打时段 call window {window} (客户本地时间 local time)"
        ws["A1"].font = Font(bold=True, size=12)
        columns = INFO_COLUMNS + OUTCOME_COLUMNS
        for j, (_, label, width) in enumerate(columns, start=1):
            cell = ws.cell(row=2, column=j, value=label)
            cell.font = Font(bold=True)
            cell.fill = fill_in if j > len(INFO_COLUMNS) else header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
            ws.column_dimensions[cell.column_letter].width = width
        for i, r in enumerate(rows, start=3):
            for j, (key, _, _) in enumerate(INFO_COLUMNS, start=1):
                ws.cell(row=i, column=j, value=r[key])
        ws.freeze_panes = "C3"
        last = max(3, len(rows) + 2)
        yes_no = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
        gender = DataValidation(type="list", formula1='"男,女"', allow_blank=True)
        ws.add_data_validation(yes_no)
        ws.add_data_validation(gender)
        base = len(INFO_COLUMNS)
        for k, (key, _, _) in enumerate(OUTCOME_COLUMNS, start=1):
            letter = ws.cell(row=2, column=base + k).column_letter
            if key in ("reached", "resolved", "opt_out"):
                yes_no.add(f"{letter}3:{letter}{last}")
            elif key == "gender":
                gender.add(f"{letter}3:{letter}{last}")

    by_agent: dict[str, list[dict]] = {a[0]: [] for a in config.agents}
    for e in entries:
        by_agent.setdefault(e.agent, []).append(_row(e))
    combined = Workbook()
    combined.remove(combined.active)
    for agent, rows in by_agent.items():
        wb = Workbook()
        fill_sheet(wb.active, agent, rows)
        path = out_dir / f"call_list_{agent}.xlsx"
        wb.save(path)
        paths[agent] = path
        fill_sheet(combined.create_sheet(), agent, rows)
    combined_path = out_dir / "call_list.xlsx"
    combined.save(combined_path)
    paths["combined"] = combined_path
    csv_path = out_dir / "call_list.csv"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel/WPS open it as UTF-8
        writer = csv.writer(fh)
        writer.writerow(["list_date", "agent"] + [k for k, _, _ in INFO_COLUMNS] + [k for k, _, _ in OUTCOME_COLUMNS])
        for e in entries:
            r = _row(e)
            writer.writerow([list_date.isoformat(), e.agent] + [r[k] for k, _, _ in INFO_COLUMNS]
                            + [""] * len(OUTCOME_COLUMNS))
    paths["csv"] = csv_path
    return paths


def build_call_list(conn, list_date: date, config: CallConfig, out_dir: Path) -> tuple[list[CallEntry], dict]:
    entries = select_calls(load_candidates(conn, list_date, config), config, list_date)
    save_entries(conn, list_date, entries)
    paths = write_sheets(entries, config, list_date, out_dir)
    return entries, paths


# -- reading outcomes back (R8) ------------------------------------------------------------
class OutcomeSheetError(ValueError):
    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path.name}: {len(problems)} invalid row(s); nothing was applied. "
                         f"Fix these and import again:\n  {shown}{more}")


@dataclass
class Outcome:
    list_date: date
    customer_id: str
    call_round: int
    agent: str
    reached: bool | None
    resolved: bool | None
    birthday: date | None
    gender: str | None
    preferences: str | None
    tags: str | None
    opt_out: bool
    notes: str | None


def _yes_no(value, column: str, problems: list[str], where: str) -> bool | None:
    text = "" if value is None else str(value).strip().lower()
    if text == "":
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    problems.append(f"{where}: {column} must be 是/否 (yes/no), got {value!r}")
    return None


def parse_outcome_sheets(path: Path, list_date: date | None = None) -> list[Outcome]:
    """Read every sheet of a filled workbook (or the CSV); raise OutcomeSheetError if any row is invalid."""
    import re

    from crm_pipeline.extract.intake import parse_date

    rows: list[tuple[str, int, dict]] = []
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for n, rec in enumerate(csv.DictReader(fh), start=2):
                rows.append((path.name, n, rec))
    else:
        from openpyxl import load_workbook

        wb = load_workbook(path, data_only=True)
        for ws in wb.worksheets:
            title = str(ws["A1"].value or "")
            match = re.search(r"(\d{4}-\d{2}-\d{2})", title)
            sheet_date = match.group(1) if match else (list_date.isoformat() if list_date else "")
            labels = {label: key for key, label, _ in INFO_COLUMNS + OUTCOME_COLUMNS}
            headers = [labels.get(str(c.value or ""), str(c.value or "").split(" ")[-1]) for c in ws[2]]
            for n, values in enumerate(ws.iter_rows(min_row=3, values_only=True), start=3):
                rec = {h: v for h, v in zip(headers, values, strict=False) if h}
                rec["agent"] = ws.title
                rec["list_date"] = sheet_date
                if any(v not in (None, "") for v in rec.values()):
                    rows.append((ws.title, n, rec))
    problems: list[str] = []
    outcomes: list[Outcome] = []
    from zoneinfo import ZoneInfo

    for sheet, n, rec in rows:
        where = f"sheet {sheet} row {n}"
        if not any(str(rec.get(k) or "").strip() for k, _, _ in OUTCOME_COLUMNS):
            continue  # not called yet: nothing to import
        customer = str(rec.get("customer_id") or "").strip()
        if not customer:
            problems.append(f"{where}: customer_id is empty")
            continue
        try:
            day = date.fromisoformat(str(rec.get("list_date") or "")[:10])
        except ValueError:
            problems.append(f"{where}: cannot tell the list date")
            continue
        try:
            round_no = int(float(rec.get("call_round") or 0))
            if round_no not in (1, 2):
                raise ValueError
        except ValueError:
            problems.append(f"{where}: call_round must be 1 or 2, got {rec.get('call_round')!r}")
            continue
        reached = _yes_no(rec.get("reached"), "reached", problems, where)
        resolved = _yes_no(rec.get("resolved"), "resolved", problems, where)
        opt_out = _yes_no(rec.get("opt_out"), "opt_out", problems, where) or False
        birthday = None
        if rec.get("birthday") not in (None, ""):
            try:
                value = rec["birthday"]
                birthday = (value.date() if isinstance(value, datetime) else
                            parse_date(value, ZoneInfo("Asia/Shanghai")).date())
                if not date(1900, 1, 1) <= birthday <= day:
                    raise ValueError("out of range")
            except (ValueError, TypeError):
                problems.append(f"{where}: birthday {rec.get('birthday')!r} is not a date")
        gender_raw = str(rec.get("gender") or "").strip().lower()
        gender = {"男": "M", "m": "M", "male": "M", "女": "F", "f": "F", "female": "F", "": None}.get(gender_raw, "?")
        if gender == "?":
            problems.append(f"{where}: gender must be 男/女 (M/F), got {rec.get('gender')!r}")
            gender = None
        if reached is False and resolved is True:
            problems.append(f"{where}: resolved is 是 but the call was not reached")
        outcomes.append(Outcome(day, customer, round_no, str(rec.get("agent") or ""), reached, resolved, birthday,
                                gender, str(rec.get("preferences") or "").strip() or None,
                                str(rec.get("tags") or "").strip() or None, bool(opt_out),
                                str(rec.get("notes") or "").strip() or None))
    if problems:
        raise OutcomeSheetError(path, problems)
    return outcomes


def import_outcomes(conn, path: Path) -> dict:
    """Apply a filled sheet in one transaction (caller commits)."""
    outcomes = parse_outcome_sheets(path)
    problems = []
    for o in outcomes:
        hit = conn.execute(
            "select 1 from outreach.call_list_entries where list_date = %s and customer_id = %s and call_round = %s",
            (o.list_date, o.customer_id, o.call_round)).fetchone()
        if not hit:
            problems.append(f"customer {o.customer_id} round {o.call_round} is not on the {o.list_date} call list")
    if problems:
        raise OutcomeSheetError(path, problems)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into outreach.call_outcomes (list_date, customer_id, call_round, agent, reached, resolved, birthday,"
            " gender, preferences, tags, opt_out, notes, source_file) values"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (list_date, customer_id, call_round) do update set agent = excluded.agent,"
            " reached = excluded.reached, resolved = excluded.resolved, birthday = excluded.birthday,"
            " gender = excluded.gender, preferences = excluded.preferences, tags = excluded.tags,"
            " opt_out = excluded.opt_out, notes = excluded.notes, source_file = excluded.source_file,"
            " imported_at = now()",
            [(o.list_date, o.customer_id, o.call_round, o.agent, o.reached, o.resolved, o.birthday, o.gender,
              o.preferences, o.tags, o.opt_out, o.notes, path.name) for o in outcomes],
        )
        cur.executemany(
            "insert into outreach.optouts (channel, customer_id, source, reason) values ('all', %s, 'call_outcome', %s)"
            " on conflict do nothing",
            [(o.customer_id, f"told agent on {o.list_date}") for o in outcomes if o.opt_out],
        )
    return {"outcomes": len(outcomes), "opt_outs": sum(o.opt_out for o in outcomes),
            "unresolved": sum(1 for o in outcomes if o.resolved is False)}
