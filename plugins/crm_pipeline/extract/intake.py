"""Spreadsheet intake for social selling and offline stores (R1).

Reads .xlsx (every sheet whose first 10 rows hold an order header; other sheets
are named in a warning) or .csv (UTF-8 or GBK). Headers are recognized in English
or Chinese, below a title if need be; ``--map SOURCE=FIELD`` adds or overrides a
mapping. Dates in ISO, YYYYMMDD, YYYY/MM/DD or Excel serial form.

A row without an order id gets a stable one from its content and its position
among identical rows: importing the same file twice lands nothing new, and two
identical lines in one file stay two orders.

Each row becomes a record; a row that cannot be read keeps its raw cells and an
``__error__`` naming file and row, and ends in quarantine.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.pii import get_logger

log = get_logger(__name__)

FIELDS = ("order_id", "buyer_id", "name", "phone", "email", "address", "province", "city", "amount", "paid_at",
          "quantity", "product", "status")

HEADER_ALIASES: dict[str, str] = {}
for field, aliases in {
    "order_id": ("order_id", "order id", "order", "订单号", "订单编号", "单号"),
    "buyer_id": ("buyer_id", "buyer id", "customer_id", "买家id", "买家ID", "会员id", "微信号"),
    "name": ("name", "customer", "nickname", "姓名", "昵称", "客户", "收货人", "买家昵称"),
    "phone": ("phone", "mobile", "tel", "手机", "手机号", "电话", "联系电话", "联系方式"),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮箱"),
    "address": ("address", "地址", "收货地址", "详细地址"),
    "province": ("province", "state", "省", "省份"),
    "city": ("city", "市", "城市"),
    "amount": ("amount", "total", "price", "金额", "实付金额", "付款金额", "总价"),
    "paid_at": ("paid_at", "date", "paid", "order_date", "付款时间", "日期", "下单时间", "成交时间"),
    "quantity": ("quantity", "qty", "数量", "件数"),
    "product": ("product", "item", "sku", "商品", "商品名称", "宝贝"),
    "status": ("status", "状态", "订单状态"),
}.items():
    for alias in aliases:
        HEADER_ALIASES[alias.strip().lower()] = field

STATUS_ALIASES = {
    "paid": "paid", "已付款": "paid", "已支付": "paid", "付款": "paid",
    "shipped": "shipped", "已发货": "shipped", "发货": "shipped",
    "completed": "completed", "complete": "completed", "done": "completed", "已完成": "completed",
    "交易成功": "completed", "完成": "completed", "已收货": "completed",
    "refunded": "refunded", "已退款": "refunded", "退款": "refunded",
    "closed": "closed", "cancelled": "closed", "canceled": "closed", "已关闭": "closed", "已取消": "closed",
    "unpaid": "unpaid", "待付款": "unpaid", "未付款": "unpaid",
}
EXCEL_EPOCH = datetime(1899, 12, 30)
HEADER_SEARCH_ROWS = 10


class IntakeError(ValueError):
    """The file as a whole cannot be read (not a per-row problem)."""


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """``["客户名称=name", ...]`` -> ``{"客户名称": "name"}``; rejects unknown target fields."""
    mapping: dict[str, str] = {}
    for item in items or []:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or target.strip() not in FIELDS:
            raise IntakeError(f"--map {item!r}: expected SOURCE_COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}")
        mapping[source.strip().lower()] = target.strip()
    return mapping


def parse_date(value: object, tz: ZoneInfo) -> datetime:
    """ISO, YYYYMMDD, YYYY/MM/DD (with optional time) or an Excel serial number."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tz)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _excel_serial(float(value), tz)
    text = str(value or "").strip()
    if not text:
        raise ValueError("empty date")
    if re.fullmatch(r"\d{5}(\.\d+)?", text):
        return _excel_serial(float(text), tz)
    if re.fullmatch(r"\d{8}", text):
        return datetime.strptime(text, "%Y%m%d").replace(tzinfo=tz)
    normalized = text.replace("/", "-").replace(".", "-").replace("年", "-").replace("月", "-").replace("日", "")
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", normalized.strip())
    if match:
        y, m, d, hh, mm, ss = match.groups()
        return datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz)
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _excel_serial(serial: float, tz: ZoneInfo) -> datetime:
    if not 20000 <= serial <= 80000:  # 1954..2119: anything else is not a plausible order date
        raise ValueError(f"Excel serial {serial:g} out of range")
    return (EXCEL_EPOCH + timedelta(days=serial)).replace(tzinfo=tz)


def _read_sheets(path: Path) -> list[tuple[str | None, list[tuple[int, list[object]]]]]:
    """(sheet name, its non-empty rows with their row numbers) for every sheet that has any.

    A .csv is one unnamed sheet. Row numbers are the file's: an error names the row a
    person sees in Excel/WPS.
    """
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise IntakeError(f"{path.name}: cannot open as .xlsx ({exc.__class__.__name__}: {exc})") from None
        sheets = [(ws.title, [list(r) for r in ws.iter_rows(values_only=True)]) for ws in wb.worksheets]
        wb.close()
    elif suffix in (".csv", ".txt"):
        raw = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes any byte string
            raise IntakeError(f"{path.name}: neither UTF-8 nor GBK")
        sheets = [(None, [list(r) for r in csv.reader(io.StringIO(text))])]
    else:
        raise IntakeError(f"{path.name}: unsupported file type {suffix!r} (use .xlsx or .csv)")
    numbered = [(name, [(n, r) for n, r in enumerate(rows, start=1) if any(c not in (None, "") for c in r)])
                for name, rows in sheets]
    numbered = [(name, rows) for name, rows in numbered if rows]
    if not numbered:
        raise IntakeError(f"{path.name}: the file has no header row")
    return numbered


def _find_header(rows: list[tuple[int, list[object]]], mapping: dict[str, str]) -> tuple[int, dict[int, str]] | None:
    """(position, columns) of the first of the first few rows that names the needed columns.

    Exports often open with a title or a date range above the header.
    """
    for at, (_, row) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = _columns(row, mapping)
        if "amount" in columns.values() and {"phone", "name", "buyer_id"} & set(columns.values()):
            return at, columns
    return None


def _rounded_by_excel(value: object) -> bool:
    """A number too long for Excel's 15 significant digits: a float cell or its 1.23E+17 text."""
    if isinstance(value, float):
        return abs(value) >= 1e15
    return isinstance(value, str) and re.fullmatch(r"\s*\d(\.\d+)?[eE]\+?\d+\s*", value) is not None


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _columns(header: list[object], mapping: dict[str, str]) -> dict[int, str]:
    """Column index -> field for one candidate header row (the first column naming a field wins)."""
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        field = mapping.get("" if name is None else str(name).strip().lower())
        if field and field not in columns.values():
            columns[i] = field
    return columns


def read_intake(path: Path, shop_id: str, mapping: dict[str, str] | None = None,
                tz: ZoneInfo = ZoneInfo("Asia/Shanghai")) -> Iterator[dict]:
    """Yield one record per data row (see module doc)."""
    sheets = _read_sheets(path)
    mapping = {**HEADER_ALIASES, **(mapping or {})}
    found = [(name, rows, _find_header(rows, mapping)) for name, rows in sheets]
    if not any(header for _, _, header in found):
        name, rows = sheets[0]
        headers = ["" if h is None else str(h).strip() for h in rows[0][1]]
        raise IntakeError(
            f"{path.name}{'' if name is None else f' sheet {name!r}'}: cannot find the columns it needs (amount and "
            f"one of phone/name/buyer_id) in its first {HEADER_SEARCH_ROWS} rows; headers are {headers}; "
            "use --map SOURCE_COLUMN=FIELD"
        )
    seen: dict[str, int] = {}
    for name, rows, header in found:
        if header is None:
            # a summary or notes sheet beside the order sheets: said, not read
            log.warning("%s: sheet %r has no order header in its first %d rows (%d rows not read)",
                        path.name, name, HEADER_SEARCH_ROWS, len(rows))
            continue
        sheet = "" if name is None or len(sheets) == 1 else f" sheet {name!r}"
        yield from _records(path.name + sheet, rows[header[0] + 1:], header[1], shop_id, tz, seen)


def _records(where_file: str, rows: list[tuple[int, list[object]]], columns: dict[int, str], shop_id: str,
             tz: ZoneInfo, seen: dict[str, int]) -> Iterator[dict]:
    for rownum, row in rows:
        cells = {columns[i]: row[i] for i in columns if i < len(row)}
        record: dict = {f: _clean(cells.get(f)) for f in FIELDS if f != "paid_at"}
        where = f"{where_file} row {rownum}"
        try:
            record["paid_at"] = parse_date(cells.get("paid_at"), tz).isoformat()
        except (ValueError, TypeError) as exc:
            record["paid_at"] = _clean(cells.get("paid_at"))
            record["__error__"] = f"{where}: impossible date {record['paid_at']!r} ({exc})"
        try:
            record["amount"] = str(Decimal(record["amount"].replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip()))
        except InvalidOperation:
            record.setdefault("__error__", f"{where}: unparseable amount {record['amount']!r}")
        try:
            record["quantity"] = int(Decimal(record["quantity"] or "1"))
        except (InvalidOperation, ValueError):
            record.setdefault("__error__", f"{where}: unparseable quantity {record['quantity']!r}")
        if _rounded_by_excel(cells.get("order_id")):
            # Taobao/JD order numbers have 16-19 digits; Excel keeps 15, so two orders
            # would land under one id and one of them would be lost
            record.setdefault("__error__", f"{where}: order id {record['order_id']!r} was rounded by Excel (over 15 "
                                           "digits stored as a number); format the column as text and export again")
        status = record["status"].lower()
        record["status"] = STATUS_ALIASES.get(status, STATUS_ALIASES.get(record["status"], "paid" if not status else status))
        if record["status"] not in set(STATUS_ALIASES.values()):
            record.setdefault("__error__", f"{where}: unknown status {record['status']!r}")
        if not record["order_id"]:
            content = "|".join(str(record.get(f, "")) for f in FIELDS if f != "order_id")
            digest = hashlib.sha1(f"{shop_id}|{content}".encode()).hexdigest()[:16]
            n = seen.get(digest, 0) + 1
            seen[digest] = n
            record["order_id"] = f"IN-{digest}-{n}"
            record["order_id_derived"] = True
        if "__error__" in record:
            record["__row__"] = rownum
        yield record


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
