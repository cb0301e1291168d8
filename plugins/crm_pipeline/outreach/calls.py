"""Callback lists (R7) and their outcomes (R8): the agents' files.

* first callback ``first_callback_days`` after purchase; a second one
  ``second_callback_days`` after a first call that left an issue unresolved;
* everyone when the day's volume fits the agents' capacity, otherwise:
  unresolved follow-ups, then the highest order values (``high_value_share``
  of the remaining slots), then buyers who rated well but wrote a lukewarm
  review, then a reproducible random sample;
* the list of a day is *issued* once (``outreach.call_lists``): a rerun of the
  day keeps it and its files, and writes back only a file that is missing. The
  sheets are the agents' files from then on; ``--reissue`` writes a new version
  beside them (``call_list_<agent>.v2.xlsx``), never over them;
* one .xlsx per agent plus a combined workbook (a sheet per agent, an
  instructions sheet), and a CSV for tools. In Chinese, with the shop, the
  order number as the platform shows it, segment and tier, a script hint per
  reason, dropdowns that refuse other values, real dates and amounts;
* every row carries a hidden key (list date, version, agent, customer, round):
  the import reads who, which list and which agent from it, not from the title,
  the tab's name or the row's position, so renaming a tab, deleting the title
  row or sorting cannot change what is recorded;
* ``import_outcomes`` applies a filled workbook in one transaction: every row
  valid or nothing, with the sheet and row of every problem.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from crm_pipeline import labels
from crm_pipeline.errors import BadInputFile
from crm_pipeline.pii import get_logger

log = get_logger(__name__)

# (key, header shown, width). Keys are what the CSV and the database call them.
INFO_COLUMNS = [
    ("agent_rank", "序号", 6),
    ("name", "姓名", 10),
    ("phone", "手机", 14),
    ("reason", "回访原因", 20),
    ("script", "话术提示", 36),
    ("shop_name", "店铺", 14),
    ("platform", "平台", 10),
    ("order_number", "订单号（平台后台可搜）", 22),
    ("paid_date", "付款日期", 11),
    ("order_value", "订单金额", 11),
    ("products", "商品", 26),
    ("segment", "客户分群", 12),
    ("tier", "会员等级", 9),
    ("round", "回访轮次", 9),
    ("context", "上次问题", 22),
    ("customer_id", "客户ID", 16),
]
OUTCOME_COLUMNS = [
    ("reached", "接通情况", 10),
    ("resolved", "问题是否解决", 12),
    ("birthday", "生日", 11),
    ("gender", "性别", 6),
    ("preferences", "偏好", 18),
    ("tags", "标签", 14),
    ("opt_out", "拒绝再联系", 10),
    ("notes", "备注", 28),
]
OUTCOME_LABELS = {key: label for key, label, _ in OUTCOME_COLUMNS}
KEY_HEADER = "行标识(系统用,勿改)"
KEY_PREFIX = "CRM"
KEY_RE = re.compile(r"^CRM\|(\d{4}-\d{2}-\d{2})\|v(\d+)\|([^|]+)\|(.+)\|([12])$")
# dropdown words -> value; the first word of each is what the dropdown offers
CHOICES = {
    "reached": {"已接通": True, "未接通": False},
    "resolved": {"已解决": True, "未解决": False},
    "gender": {"男": "M", "女": "F"},
    "opt_out": {"是": True, "否": False},
}
# what else people type, accepted on import
SYNONYMS = {
    "reached": {"接通": True, "是": True, "yes": True, "y": True, "1": True, "true": True, "√": True, "✓": True,
                "没接": False, "未接": False, "否": False, "no": False, "n": False, "0": False, "false": False,
                "×": False, "x": False},
    "resolved": {"解决": True, "是": True, "yes": True, "y": True, "1": True, "true": True, "√": True, "✓": True,
                 "没解决": False, "否": False, "no": False, "n": False, "0": False, "false": False, "×": False,
                 "x": False},
    "gender": {"m": "M", "male": "M", "f": "F", "female": "F"},
    "opt_out": {"yes": True, "y": True, "1": True, "true": True, "√": True, "✓": True, "拒绝": True,
                "no": False, "n": False, "0": False, "false": False, "×": False, "x": False},
}
ROUND_WORDS = {1: "首次回访", 2: "二次回访"}
INSTRUCTIONS_SHEET = "填写说明"


@dataclass(frozen=True)
class CallConfig:
    call_window: tuple[str, str] = ("11:00", "16:00")
    first_callback_days: int = 15
    second_callback_days: int = 30
    high_value_share: float = 0.5
    lukewarm_phrases: tuple[str, ...] = ("还行", "一般")
    agents: tuple[tuple[str, str, int], ...] = (("agent", "Agent", 20),)
    scripts: dict[str, str] = field(default_factory=dict)  # reason -> script hint (话术); {店铺} {坐席} filled in
    shop_names: dict[str, str] = field(default_factory=dict)  # shop_id -> name the agent says

    @property
    def capacity(self) -> int:
        return sum(a[2] for a in self.agents)


def load_call_config(path: Path, shop_names: dict[str, str] | None = None) -> CallConfig:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    window = data.get("call_window") or {}
    agents = tuple((str(a["id"]), str(a.get("name", a["id"])), int(a["capacity"])) for a in data.get("agents") or [])
    if not agents:
        raise ValueError(f"{path}: at least one agent with a capacity is needed")
    bad = [a[0] for a in agents if not re.fullmatch(r"[A-Za-z0-9_.-]+", a[0])]
    if bad:
        raise ValueError(f"{path}: agent ids name files; use letters, digits, _ . - only: {bad}")
    scripts = {str(k): str(v).strip() for k, v in (data.get("scripts") or {}).items()}
    unknown = sorted(set(scripts) - set(labels.CALL_REASONS))
    if unknown:
        raise ValueError(f"{path}: scripts for unknown reasons {unknown}; reasons are {sorted(labels.CALL_REASONS)}")
    return CallConfig(
        call_window=(str(window.get("start", "11:00")), str(window.get("end", "16:00"))),
        first_callback_days=int(data.get("first_callback_days", 15)),
        second_callback_days=int(data.get("second_callback_days", 30)),
        high_value_share=float(data.get("high_value_share", 0.5)),
        lukewarm_phrases=tuple(data.get("lukewarm_phrases") or ()),
        agents=agents,
        scripts=scripts,
        shop_names=dict(shop_names or {}),
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
    shop_id: str = ""
    platform: str = ""
    segment: str | None = None
    tier: str | None = None


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


def select_calls(candidates: list[CallCandidate], config: CallConfig, list_date: date,
                 expected_value: dict[str, float] | None = None) -> list[CallEntry]:
    """Choose and assign the day's calls (R7). Pure and deterministic.

    ``expected_value`` (customer -> CLV, config/clv.yml ``call_list_rank: expected_value``):
    the value-ranked share goes by CLV, then order value, instead of order value alone."""
    def worth(c: CallCandidate) -> tuple[float, ...]:  # sort key part: most valuable first
        if expected_value is None:
            return (-c.order_value,)
        # issue 33: customers the model did not score come after those it did
        return (-expected_value.get(c.customer_id, -1.0), -c.order_value)
    value_reason = "order_value" if expected_value is None else "expected_value"
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
                  for c in sorted(unique, key=lambda c: (-c.call_round, *worth(c), c.customer_id))]
    else:
        followups = sorted([c for c in unique if c.call_round == 2], key=lambda c: (*worth(c), c.customer_id))
        rest = [c for c in unique if c.call_round != 2]
        chosen = [(c, "unresolved_followup") for c in followups[:capacity]]
        left = capacity - len(chosen)
        by_value = sorted(rest, key=lambda c: (*worth(c), c.customer_id))
        n_value = min(left, int(round(left * config.high_value_share)))
        chosen += [(c, value_reason) for c in by_value[:n_value]]
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
        with phone_optouts as (  -- opt-outs resolved to whoever they are about now (migration 008)
            select customer_id, contact from outreach.optout_blocks() where channel in ('phone', 'all')
        )
        select o.customer_id, 1, o.order_key, o.amount_cny, r.rating, r.review, c.name, c.phone_e164, o.paid_date,
               coalesce((select string_agg(distinct i.title, '、') from marts.fct_order_items i
                         where i.order_key = o.order_key), ''), '',
               o.shop_id, o.platform, s.segment, t.tier
        from marts.fct_orders o
        join marts.dim_customers c on c.customer_id = o.customer_id
        left join marts.customer_rfm s on s.customer_id = o.customer_id
        left join marts.customer_tiers t on t.customer_id = o.customer_id
        left join lateral (select null::text as rating, null::text as review) r on true
        where o.paid_date = %(first_day)s and o.status in ('paid', 'shipped', 'completed')
          and c.phone_e164 is not null
          and not exists (select 1 from phone_optouts p where p.customer_id = o.customer_id or p.contact = c.phone_e164)
        """,
        {"first_day": first_day},
    ).fetchall()
    followups = conn.execute(
        """
        -- the customer called then, as they are now (a merge or split since keeps the follow-up)
        select c.customer_id, 2, e.order_key, coalesce(o.amount_cny, 0), null, null, c.name, c.phone_e164,
               o.paid_date, '', coalesce(co.notes, '上次回访问题未解决'),
               o.shop_id, o.platform, s.segment, t.tier
        from outreach.call_outcomes co
        join outreach.call_list_entries e
          on e.list_date = co.list_date and e.customer_id = co.customer_id and e.call_round = co.call_round
        join outreach.customer_aliases() a on a.alias_id = co.customer_id
        join marts.dim_customers c on c.customer_id = a.customer_id
        left join marts.fct_orders o on o.order_key = e.order_key
        left join marts.customer_rfm s on s.customer_id = c.customer_id
        left join marts.customer_tiers t on t.customer_id = c.customer_id
        where co.call_round = 1 and co.resolved = false
          and co.list_date = %(day)s
          and c.phone_e164 is not null
          and not exists (select 1 from outreach.optout_blocks() p where p.channel in ('phone', 'all')
                          and (p.customer_id = c.customer_id or p.contact = c.phone_e164))
        """,
        {"day": list_date - timedelta(days=config.second_callback_days)},
    ).fetchall()
    return [CallCandidate(r[0], r[1], r[2], float(r[3] or 0), r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                          r[11] or "", r[12] or "", r[13], r[14])
            for r in list(rows) + list(followups)]


# The order number a seller types into the platform's back office (千牛, 京麦, Shopify admin, ...),
# read from the order as the platform sent it; the others show their order id as it is.
ORDER_NUMBER_SQL = {
    "shopify": "coalesce(payload->>'name', order_id)",                    # "#1001", not the numeric id
    "woocommerce": "coalesce(payload->>'number', order_id)",
    "intake": "case when payload->>'order_id_derived' = 'true' then null else order_id end",  # sheets without one
}


def order_numbers(conn, order_keys: list[str]) -> dict[str, str | None]:
    """order_key -> the order number as the platform shows it (None: the sheet had no number)."""
    from crm_pipeline.platforms import PLATFORMS

    by_platform: dict[str, list[tuple[str, str]]] = {}
    for key in order_keys:
        platform, shop_id, order_id = key.split(":", 2)
        by_platform.setdefault(platform, []).append((shop_id, order_id))
    out: dict[str, str | None] = {}
    for platform, pairs in by_platform.items():
        spec = PLATFORMS.get(platform)
        if spec is None:
            continue
        expr = ORDER_NUMBER_SQL.get(platform, "order_id")
        # the order by names the table's columns: PostgreSQL names a CASE after its last branch,
        # and `order_id` would be ambiguous for the intake expression
        found = conn.execute(
            f"select distinct on (r.shop_id, r.order_id) r.shop_id, r.order_id, ({expr}) as order_number"
            f" from raw.{spec.raw_table} as r"
            " where (r.shop_id, r.order_id) in (select * from unnest(%s::text[], %s::text[]))"
            " order by r.shop_id, r.order_id, r.loaded_at desc",
            ([s for s, _ in pairs], [o for _, o in pairs])).fetchall()
        for shop_id, order_id, number in found:
            out[f"{platform}:{shop_id}:{order_id}"] = number
    return out


def sheet_rows(entries: list[CallEntry], config: CallConfig, numbers: dict[str, str | None]) -> list[dict]:
    """What each sheet row says, in the words an agent reads (kept in outreach.call_lists as issued)."""
    per_agent: dict[str, int] = {}
    agent_names = {a[0]: a[1] for a in config.agents}
    rows = []
    for e in sorted(entries, key=lambda e: e.rank):
        c = e.candidate
        per_agent[e.agent] = per_agent.get(e.agent, 0) + 1
        shop_name = config.shop_names.get(c.shop_id, c.shop_id)
        script = (config.scripts.get(e.priority_reason, "").replace("{店铺}", shop_name)
                  .replace("{坐席}", agent_names.get(e.agent, e.agent)))
        rows.append({
            "agent": e.agent, "agent_rank": per_agent[e.agent], "rank": e.rank,
            "customer_id": c.customer_id, "call_round": c.call_round, "round": ROUND_WORDS.get(c.call_round, ""),
            "name": c.name or "", "phone": c.phone or "",
            "reason_key": e.priority_reason, "reason": labels.CALL_REASONS.get(e.priority_reason, e.priority_reason),
            "script": script, "shop_id": c.shop_id, "shop_name": shop_name,
            "platform": labels.PLATFORMS.get(c.platform, c.platform),
            "order_key": c.order_key, "order_number": numbers.get(c.order_key) or "",
            "paid_date": c.paid_date.isoformat() if c.paid_date else None,
            "order_value": round(c.order_value, 2), "products": c.products,
            "segment": labels.zh(labels.RFM_SEGMENTS, c.segment), "tier": labels.zh(labels.TIERS, c.tier, "—"),
            "segment_key": c.segment, "tier_key": c.tier,
            "context": c.context,
        })
    return rows


def row_key(list_date: date, version: int, row: dict) -> str:
    return f"{KEY_PREFIX}|{list_date.isoformat()}|v{version}|{row['agent']}|{row['customer_id']}|{row['call_round']}"


@dataclass
class IssuedList:
    list_date: date
    version: int
    rows: list[dict]
    issued_at: datetime | None = None
    new: bool = False  # issued by this call (False: kept from an earlier run)


def issued_list(conn, list_date: date) -> IssuedList | None:
    row = conn.execute("select version, rows, issued_at from outreach.call_lists where list_date = %s"
                       " order by version desc limit 1", (list_date,)).fetchone()
    return IssuedList(list_date, row[0], row[1], row[2]) if row else None


def issue(conn, list_date: date, entries: list[CallEntry], rows: list[dict], version: int) -> IssuedList:
    """Record the day's list (entries and rows as the sheets show them) and commit, durably."""
    from crm_pipeline.sheets import fingerprint

    conn.execute("delete from outreach.call_list_entries where list_date = %s", (list_date,))
    with conn.cursor() as cur:
        cur.executemany(
            "insert into outreach.call_list_entries (list_date, customer_id, call_round, order_key, agent,"
            " priority_reason, priority_rank) values (%s, %s, %s, %s, %s, %s, %s)",
            [(list_date, e.candidate.customer_id, e.candidate.call_round, e.candidate.order_key, e.agent,
              e.priority_reason, e.rank) for e in entries],
        )
    from psycopg.types.json import Jsonb

    issued_at = conn.execute(
        "insert into outreach.call_lists (list_date, version, entries, fingerprint, rows) values (%s, %s, %s, %s, %s)"
        " returning issued_at", (list_date, version, len(rows), fingerprint(rows), Jsonb(rows))).fetchone()[0]
    conn.execute("set local synchronous_commit = on")  # the files written next rely on this record (D31)
    conn.commit()
    return IssuedList(list_date, version, rows, issued_at, new=True)


def build_call_list(conn, list_date: date, config: CallConfig, out_dir: Path,
                    reissue: bool = False) -> tuple[IssuedList, dict]:
    """The list for ``list_date``: issued once, then kept (see module doc). Returns it and its files."""
    current = issued_list(conn, list_date)
    if current is None or reissue:
        from crm_pipeline.clv.uses import call_list_values  # issue 33: config/clv.yml call_list_rank

        entries = select_calls(load_candidates(conn, list_date, config), config, list_date,
                               call_list_values(conn, list_date))
        rows = sheet_rows(entries, config, order_numbers(conn, [e.candidate.order_key for e in entries]))
        current = issue(conn, list_date, entries, rows, (current.version + 1) if current else 1)
    else:
        log.info("call list for %s already issued (version %d, %s): kept as it is, with its files",
                 list_date, current.version, current.issued_at)
    paths = write_sheets(current, config, out_dir)
    return current, paths


# -- the sheets ------------------------------------------------------------------------------
def file_names(agents: list[str], version: int) -> dict[str, str]:
    from crm_pipeline.sheets import versioned

    names = {a: versioned(Path(f"call_list_{a}.xlsx"), version).name for a in agents}
    names["combined"] = versioned(Path("call_list.xlsx"), version).name
    names["csv"] = versioned(Path("call_list.csv"), version).name
    return names


def write_sheets(issued: IssuedList, config: CallConfig, out_dir: Path) -> dict[str, Path]:
    """Per-agent workbooks, a combined workbook (a sheet per agent) and a CSV, each written only if
    it does not exist yet: a file there may hold an agent's work. Returns every file of the list."""
    from openpyxl import Workbook

    from crm_pipeline.sheets import add_meta_sheet, save_workbook_once

    if issued.rows is None:  # issued before its rows were kept: its files are what there is
        log.warning("call list %s was issued before this version kept its rows; its files are not rewritten",
                    issued.list_date)
        return {}
    agents = [a[0] for a in config.agents]
    agents += sorted({r["agent"] for r in issued.rows} - set(agents))  # an agent since removed from agents.yml
    by_agent: dict[str, list[dict]] = {a: [] for a in agents}
    for r in issued.rows:
        by_agent[r["agent"]].append(r)
    names = file_names(agents, issued.version)
    paths = {k: out_dir / v for k, v in names.items()}
    meta = {"kind": "call_list", "list_date": issued.list_date.isoformat(), "version": issued.version,
            "issued_at": issued.issued_at}
    written, kept = [], []
    for key, path in paths.items():
        if path.exists():
            kept.append(path.name)
            continue
        try:
            if key == "csv":
                _write_csv(issued, path)
            else:
                wb = Workbook()
                wb.remove(wb.active)
                for agent in ([key] if key != "combined" else agents):
                    _fill_sheet(wb.create_sheet(), issued, agent, by_agent[agent], config)
                _instructions(wb.create_sheet(INSTRUCTIONS_SHEET), issued, config)
                add_meta_sheet(wb, {**meta, "agents": [key] if key != "combined" else agents})
                wb.active = 0
                save_workbook_once(wb, path)
            written.append(path.name)
        except FileExistsError:  # appeared meanwhile (another run): theirs is kept
            kept.append(path.name)
    if kept and not issued.new:
        log.info("call list files kept as they are (they may hold agents' work): %s", ", ".join(sorted(kept)))
    elif kept:
        log.warning("files of the new call list were already there and were not replaced: %s", ", ".join(kept))
    if written:
        log.info("call list %s v%d: wrote %s", issued.list_date, issued.version, ", ".join(written))
    return paths


def _sheet_title(name: str, taken: set[str]) -> str:
    title = re.sub(r"[\[\]:*?/\\]", "_", name)[:28] or "sheet"
    base, n = title, 2
    while title in taken:
        title, n = f"{base}_{n}", n + 1
    taken.add(title)
    return title


def _fill_sheet(ws, issued: IssuedList, agent: str, rows: list[dict], config: CallConfig) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from crm_pipeline.sheets import DATE_FORMAT, MONEY_FORMAT, display_phone, put, put_text

    names = {a[0]: a[1] for a in config.agents}
    ws.title = _sheet_title(names.get(agent, agent), set(ws.parent.sheetnames) - {ws.title})
    window = f"{config.call_window[0]}-{config.call_window[1]}"
    version = f"（第{issued.version}版）" if issued.version > 1 else ""
    put(ws, 1, 1, f"回访清单 {issued.list_date.isoformat()}{version} · 坐席：{names.get(agent, agent)} · "
                  f"拨打时段 {window}（客户当地时间）· 共 {len(rows)} 通 · 填写方法见「{INSTRUCTIONS_SHEET}」")
    ws["A1"].font = Font(bold=True, size=12)
    columns = INFO_COLUMNS + OUTCOME_COLUMNS + [("key", KEY_HEADER, 10)]
    header_fill, fill_in = PatternFill("solid", fgColor="DDEBF7"), PatternFill("solid", fgColor="FFF2CC")
    col = {key: j for j, (key, _, _) in enumerate(columns, start=1)}
    for j, (key, label, width) in enumerate(columns, start=1):
        cell = put(ws, 2, j, label)
        cell.font = Font(bold=True)
        cell.fill = fill_in if key in OUTCOME_LABELS else header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(j)].width = width
    for i, r in enumerate(rows, start=3):
        for key, _, _ in INFO_COLUMNS:
            value = r.get(key)
            if key == "phone":
                put_text(ws, i, col[key], display_phone(value))
            elif key in ("order_number", "customer_id"):
                put_text(ws, i, col[key], value)
            elif key == "paid_date":
                put(ws, i, col[key], date.fromisoformat(value) if value else None, DATE_FORMAT)
            elif key == "order_value":
                put(ws, i, col[key], float(value or 0), MONEY_FORMAT)
            elif key == "agent_rank":
                put(ws, i, col[key], int(value))
            else:
                put(ws, i, col[key], "" if value is None else str(value))
        for key, _, _ in OUTCOME_COLUMNS:  # typed cells an agent fills
            ws.cell(row=i, column=col[key]).number_format = DATE_FORMAT if key == "birthday" else "@"
        put_text(ws, i, col["key"], row_key(issued.list_date, issued.version, r))
        ws.cell(row=i, column=col["script"]).alignment = Alignment(wrap_text=True, vertical="top")
    last_row = max(3, len(rows) + 2)
    last_col = get_column_letter(len(columns))
    ws.column_dimensions[get_column_letter(col["key"])].hidden = True
    ws.freeze_panes = "D3"  # title and header rows, 序号/姓名/手机 stay in view
    ws.auto_filter.ref = f"A2:{last_col}{last_row}"
    for key, words in CHOICES.items():
        offered = ",".join(words)
        dv = DataValidation(type="list", formula1=f'"{offered}"', allow_blank=True, showErrorMessage=True,
                            errorStyle="stop", errorTitle="请从下拉列表选择",
                            error=f"只能填：{offered.replace(',', ' / ')}（或留空）",
                            showInputMessage=True, promptTitle=OUTCOME_LABELS[key],
                            prompt=f"下拉选择：{offered.replace(',', ' / ')}")
        letter = get_column_letter(col[key])
        dv.add(f"{letter}3:{letter}{last_row + 200}")
        ws.add_data_validation(dv)
    birthday = DataValidation(type="date", operator="between", formula1="1", formula2=str(_excel_serial(issued.list_date)),
                              allow_blank=True, showErrorMessage=True, errorStyle="stop", errorTitle="生日",
                              error="请填日期，例如 1990-05-01", showInputMessage=True, promptTitle="生日",
                              prompt="日期，例如 1990-05-01")
    letter = get_column_letter(col["birthday"])
    birthday.add(f"{letter}3:{letter}{last_row + 200}")
    ws.add_data_validation(birthday)


def _excel_serial(day: date) -> int:
    return (day - date(1899, 12, 30)).days


def _instructions(ws, issued: IssuedList, config: CallConfig) -> None:
    from openpyxl.styles import Alignment, Font

    from crm_pipeline.sheets import put

    window = f"{config.call_window[0]}-{config.call_window[1]}"
    lines = [
        (f"回访清单 {issued.list_date.isoformat()} 填写说明", True),
        (f"1. 在 {window}（客户当地时间）之间拨打；每行一位客户，按「序号」顺序拨打。", False),
        ("2. 只填黄色的列：接通情况、问题是否解决、生日、性别、偏好、标签、拒绝再联系、备注。", False),
        ("   接通情况：已接通 / 未接通；问题是否解决：已解决 / 未解决（客户没有问题就留空）；", False),
        ("   拒绝再联系：客户说不要再联系时选「是」，以后任何渠道都不会再联系他；", False),
        ("   生日填日期（例如 1990-05-01）；性别：男 / 女。没打的行整行留空。", False),
        ("3. 可以排序、筛选、改列宽、删掉标题行；不要删除表头行，不要改客户ID，不要复制到新文件里填。", False),
        ("4. 填完把文件交给数据组导入（crm calls import 文件名）。整个文件有一处错就整份不导入，", False),
        ("   错误信息会写明哪个工作表第几行；改正后再交一次即可，重复导入不会重复记录。", False),
        ("5. 这个文件生成后系统不会再覆盖它；如果重新生成，会另存为新版本（文件名带 .v2）。", False),
        ("", False),
        ("回访原因 / 话术提示", True),
    ]
    for key, word in labels.CALL_REASONS.items():
        hint = config.scripts.get(key, "")
        lines.append((f"· {word}（{key}）" + (f"：{hint}" if hint else ""), False))
    for i, (text, bold) in enumerate(lines, start=1):
        cell = put(ws, i, 1, text)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if bold:
            cell.font = Font(bold=True, size=12 if i == 1 else 11)
    ws.column_dimensions["A"].width = 110


CSV_COLUMNS = ["list_date", "version", "agent", "agent_rank", "rank", "customer_id", "call_round", "name", "phone",
               "shop_id", "shop_name", "order_key", "order_number", "paid_date", "order_value", "products",
               "segment", "tier", "priority_reason", "context"] + [k for k, _, _ in OUTCOME_COLUMNS]


def _write_csv(issued: IssuedList, path: Path) -> None:
    """For tools (dialers, BI): English keys, E.164 phones; people get the .xlsx."""
    from crm_pipeline.sheets import write_csv_once

    def line(r: dict) -> list:
        values = {**r, "list_date": issued.list_date.isoformat(), "version": issued.version,
                  "priority_reason": r["reason_key"], "segment": r.get("segment_key"), "tier": r.get("tier_key")}
        return ["" if k in OUTCOME_LABELS or values.get(k) is None else values[k] for k in CSV_COLUMNS]

    write_csv_once(path, CSV_COLUMNS, (line(r) for r in issued.rows))


# -- reading outcomes back (R8) ------------------------------------------------------------
class OutcomeSheetError(BadInputFile, ValueError):
    """A filled sheet that cannot be applied; nothing of it was."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path.name}: {len(problems)} problem(s); nothing was applied. "
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
    version: int = 1
    where: str = ""


HEADER_SEARCH_ROWS = 10
_LABELS = {label: key for key, label, _ in INFO_COLUMNS + OUTCOME_COLUMNS} | {KEY_HEADER: "key"}
_LABELS |= {key: key for key, _, _ in INFO_COLUMNS + OUTCOME_COLUMNS}  # the CSV's English keys


def _header_key(value) -> str | None:
    text = str(value or "").strip()
    if text in _LABELS:
        return _LABELS[text]
    last = text.split(" ")[-1]  # sheets of the earlier "中文 english" headers
    return last if last in _LABELS and last == _LABELS[last] else None


def _choice(value, key: str, problems: list[str], where: str):
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip()
    if text == "":
        return None
    words = CHOICES[key]
    found = words.get(text, SYNONYMS[key].get(text.lower()))
    if found is None:
        problems.append(f"{where}: {OUTCOME_LABELS[key]} must be {' / '.join(words)} (or empty), got {value!r}")
    return found


def _workbook_rows(path: Path, problems: list[str]) -> list[tuple[str, int, dict]]:
    """(where, row number, {column key: value}) of every non-empty row under a header, in every sheet."""
    from openpyxl import load_workbook

    from crm_pipeline.sheets import META_SHEET

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise OutcomeSheetError(path, [f"cannot open as .xlsx ({exc.__class__.__name__}: {exc})"]) from None
    rows: list[tuple[str, int, dict]] = []
    headers_seen = 0
    try:
        for ws in wb.worksheets:
            if ws.title in (META_SHEET, INSTRUCTIONS_SHEET):
                continue  # a sheet someone hid is still read: its rows may hold outcomes
            header: dict[int, str] | None = None
            header_row = 0
            keyed_rows = 0
            for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
                if header is None:
                    if any(isinstance(v, str) and KEY_RE.match(v.strip()) for v in values):
                        keyed_rows += 1  # list rows above any header: the header row was deleted
                    if n <= HEADER_SEARCH_ROWS:
                        found = {i: k for i, v in enumerate(values) if (k := _header_key(v))}
                        if "key" in found.values() and {k for k, _, _ in OUTCOME_COLUMNS} & set(found.values()):
                            header, header_row = found, n
                            headers_seen += 1
                    continue
                rec = {header[i]: v for i, v in enumerate(values) if i in header}
                if any(v not in (None, "") for v in rec.values()):
                    rows.append((f"sheet {ws.title!r} row {n}", n, rec))
            if header is None and keyed_rows:
                problems.append(f"sheet {ws.title!r}: holds {keyed_rows} call-list row(s) but no header row in its "
                                f"first {HEADER_SEARCH_ROWS} rows (was it deleted?); restore the header "
                                f"({', '.join(label for _, label, _ in OUTCOME_COLUMNS[:3])}, ...) and import again")
            elif header is not None and header_row > 2:
                log.info("%s sheet %r: header found on row %d", path.name, ws.title, header_row)
    finally:
        wb.close()
    if not headers_seen and not problems:
        problems.append(f"no call-list header (接通情况, 问题是否解决, ... and the hidden column {KEY_HEADER}) in "
                        f"the first {HEADER_SEARCH_ROWS} rows of any sheet: this is not a call sheet written by "
                        "crm, or its header row was deleted")
    return rows


def _csv_rows(path: Path, problems: list[str]) -> list[tuple[str, int, dict]]:
    from crm_pipeline.sheets import csv_unescape

    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        head = next(reader, None) or []
        header = {i: k for i, v in enumerate(head) if (k := v.strip() if v.strip() in CSV_COLUMNS else _header_key(v))}
        needed = {"list_date", "customer_id", "call_round"}
        if not needed <= set(header.values()):
            problems.append(f"row 1 is not the call-list CSV header (needs {', '.join(sorted(needed))}); "
                            f"found {head[:12]}")
            return []
        out = []
        for n, values in enumerate(reader, start=2):
            rec = {header[i]: csv_unescape(v) for i, v in enumerate(values) if i in header}
            if any(v not in (None, "") for v in rec.values()):
                out.append((f"row {n}", n, rec))
        return out


def parse_outcome_sheets(path: Path) -> list[Outcome]:
    """Every filled row of a workbook (every sheet) or of the CSV; OutcomeSheetError if any is invalid.

    Rows with no outcome filled in were not called yet and are skipped."""
    from zoneinfo import ZoneInfo

    from crm_pipeline.extract.intake import parse_date

    problems: list[str] = []
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    is_csv = path.suffix.lower() == ".csv"
    rows = _csv_rows(path, problems) if is_csv else _workbook_rows(path, problems)
    outcomes: list[Outcome] = []
    for where, _n, rec in rows:
        if not any(str(rec.get(k) or "").strip() for k, _, _ in OUTCOME_COLUMNS):
            continue  # not called yet: nothing to import
        if is_csv:
            try:
                list_day = date.fromisoformat(str(rec.get("list_date") or "")[:10])
                round_no = int(float(rec.get("call_round") or 0))
                version = int(float(rec.get("version") or 1))
                if round_no not in (1, 2):
                    raise ValueError
            except ValueError:
                problems.append(f"{where}: list_date, call_round (1 or 2) or version unreadable")
                continue
            customer, agent = str(rec.get("customer_id") or "").strip(), str(rec.get("agent") or "").strip()
            if not customer:
                problems.append(f"{where}: customer_id is empty")
                continue
        else:
            match = KEY_RE.match(str(rec.get("key") or "").strip())
            if not match:
                problems.append(f"{where}: outcomes on a row that is not from the list (no {KEY_HEADER}; added by "
                                "hand?); put them on the customer's own row")
                continue
            list_day, version, agent, customer, round_no = (date.fromisoformat(match[1]), int(match[2]), match[3],
                                                            match[4], int(match[5]))
            shown = str(rec.get("customer_id") or "").strip()
            if shown and shown != customer:
                problems.append(f"{where}: 客户ID shows {shown} but the row belongs to {customer} (were some "
                                "columns sorted on their own?); undo the sort and import again")
                continue
        reached = _choice(rec.get("reached"), "reached", problems, where)
        resolved = _choice(rec.get("resolved"), "resolved", problems, where)
        opt_out = _choice(rec.get("opt_out"), "opt_out", problems, where) or False
        gender = _choice(rec.get("gender"), "gender", problems, where)
        birthday = None
        if rec.get("birthday") not in (None, ""):
            try:
                value = rec["birthday"]
                birthday = (value.date() if isinstance(value, datetime) else value if isinstance(value, date) else
                            parse_date(value, ZoneInfo("Asia/Shanghai")).date())
                if not date(1900, 1, 1) <= birthday <= list_day:
                    raise ValueError("out of range")
            except (ValueError, TypeError):
                problems.append(f"{where}: 生日 {rec.get('birthday')!r} is not a date (e.g. 1990-05-01)")
        if reached is False and resolved is True:
            problems.append(f"{where}: 问题是否解决 is 已解决 but the call was 未接通")
        outcomes.append(Outcome(list_day, customer, round_no, agent, reached, resolved, birthday, gender,
                                str(rec.get("preferences") or "").strip() or None,
                                str(rec.get("tags") or "").strip() or None, bool(opt_out),
                                str(rec.get("notes") or "").strip() or None, version, where))
    seen: dict[tuple, str] = {}
    for o in outcomes:
        k = (o.list_date, o.customer_id, o.call_round)
        if k in seen:
            problems.append(f"{o.where}: the same customer and round as {seen[k]}")
        seen[k] = o.where
    if problems:
        raise OutcomeSheetError(path, problems)
    return outcomes


def import_outcomes(conn, path: Path) -> dict:
    """Apply a filled sheet in one transaction (the caller commits): all rows or none."""
    outcomes = parse_outcome_sheets(path)
    problems = []
    latest: dict[date, int | None] = {}
    for o in outcomes:
        if o.list_date not in latest:
            row = conn.execute("select max(version) from outreach.call_lists where list_date = %s",
                               (o.list_date,)).fetchone()
            latest[o.list_date] = row[0] if row else None
        newest = latest[o.list_date]
        if newest is not None and o.version < newest:
            problems.append(f"{o.where}: this is version {o.version} of the {o.list_date} list; version {newest} "
                            f"replaced it: fill in the .v{newest} file")
            continue
        hit = conn.execute(
            "select agent from outreach.call_list_entries where list_date = %s and customer_id = %s and call_round = %s",
            (o.list_date, o.customer_id, o.call_round)).fetchone()
        if not hit:
            problems.append(f"{o.where}: customer {o.customer_id} round {o.call_round} is not on the "
                            f"{o.list_date} call list")
        elif not o.agent:
            o.agent = hit[0]
    if problems:
        raise OutcomeSheetError(path, problems)
    record_outcomes(conn, outcomes, path.name)
    return {"outcomes": len(outcomes), "opt_outs": sum(o.opt_out for o in outcomes),
            "unresolved": sum(1 for o in outcomes if o.resolved is False),
            "lists": sorted({o.list_date.isoformat() for o in outcomes})}


def called_nodes(conn, customer_ids: set[str]) -> dict[str, str]:
    """customer id -> the identity node (platform account) that stands for the person called:
    the account that holds the phone on the call list when one does, else the earliest. What
    the call taught us follows that node through later merges and splits (dim_customers)."""
    if not customer_ids or conn.execute("select to_regclass('marts.customer_identities')").fetchone()[0] is None:
        return {}
    rows = conn.execute(
        "select distinct on (a.customer_id) a.customer_id, a.node_key"
        " from marts.customer_identities a"
        " left join marts.dim_customers d on d.customer_id = a.customer_id"
        " left join marts.customer_identities p on p.node_key = a.node_key and p.identifier_type = 'phone'"
        "  and p.identifier_value = d.phone_e164"
        " where a.customer_id = any(%s) and a.identifier_type = 'platform_account'"
        " order by a.customer_id, (p.node_key is null), a.node_key",
        (sorted(customer_ids),)).fetchall()
    return dict(rows)


def record_outcomes(conn, outcomes: list[Outcome], source_file: str) -> None:
    """Write validated outcomes (R8) and the opt-outs they carry (R13). Upserts: importing the
    same sheet again, or a corrected one, records each call once."""
    nodes = called_nodes(conn, {o.customer_id for o in outcomes})
    with conn.cursor() as cur:
        cur.executemany(
            "insert into outreach.call_outcomes (list_date, customer_id, call_round, agent, reached, resolved, birthday,"
            " gender, preferences, tags, opt_out, notes, source_file, node_key) values"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (list_date, customer_id, call_round) do update set agent = excluded.agent,"
            " reached = excluded.reached, resolved = excluded.resolved, birthday = excluded.birthday,"
            " gender = excluded.gender, preferences = excluded.preferences, tags = excluded.tags,"
            " opt_out = excluded.opt_out, notes = excluded.notes, source_file = excluded.source_file,"
            " node_key = coalesce(excluded.node_key, outreach.call_outcomes.node_key), imported_at = now()",
            [(o.list_date, o.customer_id, o.call_round, o.agent, o.reached, o.resolved, o.birthday, o.gender,
              o.preferences, o.tags, o.opt_out, o.notes, source_file, nodes.get(o.customer_id))
             for o in outcomes],
        )
        # told to an agent: the person (their customer id, which follows them across merges and
        # splits, D59) and the phone the agent called (whoever holds it from now on)
        cur.executemany(
            "insert into outreach.optouts (channel, customer_id, contact, source, reason)"
            " select 'all', %s, (select phone_e164 from marts.dim_customers where customer_id = %s),"
            " 'call_outcome', %s on conflict do nothing",
            [(o.customer_id, o.customer_id, f"told agent on {o.list_date}") for o in outcomes if o.opt_out],
        )
