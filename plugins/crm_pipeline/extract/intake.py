"""Spreadsheet intake for social selling and offline stores (R1).

Reads .xlsx (every sheet whose first 10 rows hold an order header; other sheets
are named in a warning) or .csv (UTF-8 or GBK). Headers are recognized in English
or Chinese, below a title if need be; ``--map SOURCE=FIELD`` adds or overrides a
mapping. Dates in ISO, YYYYMMDD, YYYY/MM/DD, YY/MM/DD (year first, as written in
China; the century is the one that does not put the date in the future) or Excel
serial form. There is no calendar floor: a 1990s ledger imports (load/validate.py).

A file is checked before it is opened: an .xlsx is a zip archive whose members
declare their unpacked sizes, and one that would unpack to more than
``CRM_INTAKE_MAX_MB`` in all, or whose parts compress more than ``MAX_RATIO`` to 1
(a zip bomb; a sheet padded with millions of empty cells), is refused without
being unpacked. Rows are then streamed (openpyxl read-only, csv line by line):
memory stays bounded by a page of records, not by the file.

A row without an order id gets a stable one from its content and its position
among identical rows: importing the same file twice lands nothing new, and two
identical lines in one file stay two orders.

Each row becomes a record; a row that cannot be read keeps its raw cells and an
``__error__`` naming file and row, and ends in quarantine. A file that cannot be
read as a whole raises IntakeError (exit code 4: nothing of it lands).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from crm_pipeline.errors import BadInputFile, UsageError
from crm_pipeline.pii import get_logger

log = get_logger(__name__)

FIELDS = ("order_id", "buyer_id", "name", "phone", "email", "address", "province", "city", "amount", "paid_at",
          "quantity", "product", "status", "refund")

HEADER_ALIASES: dict[str, str] = {}
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "order_id": ("order_id", "order id", "order", "order no", "订单号", "订单编号", "单号", "订单ID", "订单编码",
                 "外部订单号", "原始单号"),
    "buyer_id": ("buyer_id", "buyer id", "customer_id", "买家id", "买家ID", "会员id", "会员ID", "会员编号", "客户ID",
                 "客户编号", "微信号", "微信", "买家会员名", "买家账号"),
    "name": ("name", "customer", "customer name", "nickname", "姓名", "昵称", "客户", "客户姓名", "客户名称", "顾客姓名",
             "收货人", "收货人姓名", "收件人", "收件人姓名", "买家昵称", "买家姓名", "会员名", "会员姓名", "联系人"),
    "phone": ("phone", "mobile", "tel", "telephone", "phone number", "手机", "手机号", "手机号码", "电话", "电话号码",
              "联系电话", "联系方式", "联系手机", "客户电话", "客户手机", "顾客电话", "收货人手机", "收货人电话",
              "收件人手机", "收件人电话", "买家手机"),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮箱", "邮件", "电子邮件"),
    "address": ("address", "地址", "收货地址", "详细地址", "收货人地址", "收件地址", "收件人地址"),
    "province": ("province", "state", "省", "省份", "所在省份"),
    "city": ("city", "市", "城市", "所在城市"),
    "amount": ("amount", "total", "price", "order total", "金额", "实付金额", "付款金额", "总价", "订单金额", "实收金额",
               "支付金额", "成交金额", "消费金额", "应付金额", "实付款", "金额(元)", "金额（元）", "买家实际支付金额",
               "实际支付金额"),
    "paid_at": ("paid_at", "date", "paid", "order_date", "order date", "付款时间", "日期", "下单时间", "成交时间",
                "付款日期", "支付时间", "订单日期", "下单日期", "购买日期", "成交日期", "创建时间", "订单付款时间",
                "订单创建时间"),
    "quantity": ("quantity", "qty", "数量", "件数", "购买数量", "商品数量", "宝贝总数量", "宝贝数量", "商品总数量"),
    "product": ("product", "item", "sku", "商品", "商品名称", "宝贝", "宝贝名称", "商品名", "产品", "产品名称", "品名",
                "宝贝标题", "商品标题"),
    "status": ("status", "状态", "订单状态", "交易状态"),
    # money given back (a Taobao export's 退款金额): part of a kept order, or all of a closed one
    "refund": ("refund", "refund amount", "refunded amount", "退款金额", "已退款金额", "退款金额(元)", "退款金额（元）"),
}
for field, aliases in FIELD_ALIASES.items():
    for alias in aliases:
        HEADER_ALIASES[alias.strip().lower()] = field
# where two columns name one field, which is read first (lower-cased headers, best group
# first): a receiver's or a person's name before an account's nickname (a Taobao export
# carries both 买家昵称 and 收货人姓名)
COLUMN_PREFERENCE: dict[str, tuple[tuple[str, ...], ...]] = {
    "name": (("收货人", "收货人姓名", "收件人", "收件人姓名"),
             ("姓名", "客户姓名", "顾客姓名", "买家姓名", "会员姓名", "联系人", "name", "customer name")),
    # when it was paid before when it was created (a Taobao export has both)
    "paid_at": (("paid_at", "paid", "付款时间", "付款日期", "支付时间", "订单付款时间"),),
    # a mobile before a landline (a Taobao export's 联系电话 comes first and is mostly empty)
    "phone": (("联系手机", "手机", "手机号", "手机号码", "收货人手机", "收件人手机", "客户手机", "买家手机", "mobile"),),
}
# what a header row must name: an amount, when, and someone to attach the order to
REQUIRED = (("amount",), ("paid_at",), ("phone", "name", "buyer_id"))

STATUS_ALIASES = {
    "paid": "paid", "已付款": "paid", "已支付": "paid", "付款": "paid",
    "shipped": "shipped", "已发货": "shipped", "发货": "shipped",
    "completed": "completed", "complete": "completed", "done": "completed", "已完成": "completed",
    "交易成功": "completed", "完成": "completed", "已收货": "completed",
    "refunded": "refunded", "已退款": "refunded", "退款": "refunded",
    "closed": "closed", "cancelled": "closed", "canceled": "closed", "已关闭": "closed", "已取消": "closed",
    "unpaid": "unpaid", "待付款": "unpaid", "未付款": "unpaid",
    # Taobao/Tmall order states as the seller's export writes them
    "等待买家付款": "unpaid", "买家已付款，等待卖家发货": "paid", "等待卖家发货": "paid",
    "卖家已发货，等待买家确认": "shipped", "等待买家确认收货": "shipped", "部分发货": "shipped",
    "交易关闭": "closed",
}
EXCEL_EPOCH = datetime(1899, 12, 30)
HEADER_SEARCH_ROWS = 10
MAX_RATIO = 100  # unpacked / packed, for parts over RATIO_FLOOR: real sheets compress 5-20 to 1
RATIO_FLOOR = 1 << 20
MAX_PARTS = 10_000


class IntakeError(BadInputFile, ValueError):
    """The file as a whole cannot be read (not a per-row problem)."""


class MappingError(UsageError, ValueError):
    """A --map option that names no field."""


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    """``["客户名称=name", ...]`` -> ``{"客户名称": "name"}``; rejects unknown target fields."""
    mapping: dict[str, str] = {}
    for item in items or []:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or target.strip() not in FIELDS:
            raise MappingError(f"--map {item!r}: expected SOURCE_COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}")
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
    match = re.fullmatch(r"(\d{4}|\d{2})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?",
                         normalized.strip())
    if match:
        y, m, d, hh, mm, ss = match.groups()
        year = int(y) if len(y) == 4 else _full_year(int(y), int(m), int(d), tz)
        return datetime(year, int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=tz)
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _full_year(yy: int, month: int, day: int, tz: ZoneInfo) -> int:
    """The century of a two-digit year: this one, unless that puts the date in the future.

    "97/3/5" is 1997 and "24/3/5" 2024; a date that lies ahead this century is the last
    one's (a sheet records orders that happened). Judged by the pipeline clock.
    """
    from crm_pipeline.clock import now

    today = now().astimezone(tz).date()
    year = today.year // 100 * 100 + yy
    try:
        return year if date(year, month, day) <= today else year - 100
    except ValueError:  # 29 February of a year that has none: the other century decides
        return year if year <= today.year else year - 100


def _excel_serial(serial: float, tz: ZoneInfo) -> datetime:
    # five digits, 1927..2173: a number of another size in a date column is not a date;
    # within it there is no floor (a future date is refused when the record is checked)
    if not 10000 <= serial < 100000:
        raise ValueError(f"Excel serial {serial:g} out of range")
    return (EXCEL_EPOCH + timedelta(days=serial)).replace(tzinfo=tz)


def max_bytes() -> int:
    from crm_pipeline.settings import get_settings

    return get_settings().intake_max_mb * 1024 * 1024


def check_archive(path: Path, limit: int | None = None) -> None:
    """Refuse an .xlsx before unpacking it: not a zip, too big unpacked, or bomb-like compression.

    The sizes checked are the ones the archive declares; Python's zipfile never unpacks
    a part past its declared size (a part that lies fails its CRC check instead)."""
    limit = max_bytes() if limit is None else limit
    try:
        with zipfile.ZipFile(path) as zf:
            parts = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(f"{path.name}: not an .xlsx workbook (not a zip archive: {exc}); an old .xls or a renamed "
                          "file? Save it as .xlsx or .csv and import again") from None
    if not any(p.filename == "xl/workbook.xml" for p in parts):
        raise IntakeError(f"{path.name}: a zip archive but not an Excel workbook (no xl/workbook.xml)")
    if len(parts) > MAX_PARTS:
        raise IntakeError(f"{path.name}: {len(parts)} parts in the archive (a workbook has a few dozen); refused")
    total = sum(p.file_size for p in parts)
    if total > limit:
        raise IntakeError(f"{path.name}: would unpack to {total / 2**20:,.0f} MB, over the {limit / 2**20:,.0f} MB "
                          "limit (CRM_INTAKE_MAX_MB); refused without unpacking. Split the file, or raise the limit "
                          "if it really is that big")
    for p in parts:
        ratio = p.file_size / max(p.compress_size, 1)
        if p.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise IntakeError(f"{path.name}: part {p.filename} unpacks {ratio:,.0f} times its packed size (over "
                              f"{MAX_RATIO}:1: a zip bomb, or a sheet padded with empty cells); refused without "
                              "unpacking. Copy the data into a new workbook and import that")


def _csv_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as such, else GBK (gb18030 decodes anything)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _nonempty(rows) -> Iterator[tuple[int, list[object]]]:
    """(row number as Excel/WPS shows it, cells) of rows with any value."""
    for n, row in enumerate(rows, start=1):
        if any(c not in (None, "") for c in row):
            yield n, list(row)


def _read_sheets(path: Path) -> Iterator[tuple[str | None, int, Iterator[tuple[int, list[object]]]]]:
    """(sheet name, number of sheets, its non-empty rows, streamed) for every sheet.

    A .csv is one unnamed sheet. Row numbers are the file's: an error names the row a
    person sees in Excel/WPS. Nothing is read before the file passed its size checks."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        check_archive(path)
        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise IntakeError(f"{path.name}: cannot open as .xlsx ({exc.__class__.__name__}: {exc})") from None
        try:
            sheets = wb.worksheets
            for ws in sheets:
                yield ws.title, len(sheets), _xlsx_rows(path, ws)
        finally:
            wb.close()
    elif suffix in (".csv", ".txt"):
        size = path.stat().st_size
        if size > max_bytes():
            raise IntakeError(f"{path.name}: {size / 2**20:,.0f} MB, over the {max_bytes() / 2**20:,.0f} MB limit "
                              "(CRM_INTAKE_MAX_MB); refused. Split the file, or raise the limit")
        encoding = _csv_encoding(path)
        with path.open(encoding=encoding, newline="") as fh:
            yield None, 1, _csv_rows(path, csv.reader(fh))
    else:
        raise IntakeError(f"{path.name}: unsupported file type {suffix!r} (use .xlsx or .csv)")


def _xlsx_rows(path: Path, ws) -> Iterator[tuple[int, list[object]]]:
    try:
        yield from _nonempty(ws.iter_rows(values_only=True))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:  # a part that lied about its size, bad XML
        raise IntakeError(f"{path.name} sheet {ws.title!r}: cannot be read ({exc.__class__.__name__}: {exc})") from None


def _csv_rows(path: Path, reader) -> Iterator[tuple[int, list[object]]]:
    try:
        yield from _nonempty(reader)
    except csv.Error as exc:  # a NUL byte, a field over the csv module's size limit
        raise IntakeError(f"{path.name} line {reader.line_num}: not a readable CSV line ({exc})") from None


def _find_header(rows: list[tuple[int, list[object]]], mapping: dict[str, str],
                 chosen_by_user: frozenset[str] = frozenset()) -> tuple[int, dict[int, str]] | None:
    """(position, columns) of the first of the first few rows that names the needed columns.

    Exports often open with a title or a date range above the header.
    """
    for at, (_, row) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns = _columns(row, mapping, chosen_by_user=chosen_by_user)
        if all(set(need) & set(columns.values()) for need in REQUIRED):
            return at, columns
    return None


def _missing(rows: list[tuple[int, list[object]]], mapping: dict[str, str]) -> tuple[list[str], int, list[str]]:
    """For the error: the needed fields the best candidate row lacks, its row number and its headers."""
    best, best_n, best_row = {}, rows[0][0] if rows else 1, rows[0][1] if rows else []
    for n, row in rows[:HEADER_SEARCH_ROWS]:
        columns = _columns(row, mapping)
        if len(columns) > len(best):
            best, best_n, best_row = columns, n, row
    found = set(best.values())
    missing = []
    for need in REQUIRED:
        if not set(need) & found:
            names = " or ".join(need)
            examples = ", ".join(a for f in need for a in FIELD_ALIASES[f] if not a.isascii())
            missing.append(f"{names} (e.g. {examples})")
    return missing, best_n, ["" if h is None else str(h).strip() for h in best_row]


def _rounded_by_excel(value: object) -> bool:
    """A number too long for Excel's 15 significant digits: a float cell or its 1.23E+17 text."""
    if isinstance(value, float):
        return abs(value) >= 1e15
    return isinstance(value, str) and re.fullmatch(r"\s*\d(\.\d+)?[eE]\+?\d+\s*", value) is not None


# ="1136056110429196499": how exports (千牛 among them) force Excel to keep a long number as text
_EXCEL_TEXT = re.compile(r'^=\s*"(.*)"$', re.S)


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    forced = _EXCEL_TEXT.match(text)
    return forced.group(1).strip() if forced else text


_MUNICIPALITIES = ("北京", "天津", "上海", "重庆")
_ADDRESS = re.compile(
    r"^\s*(?P<province>(?:北京|天津|上海|重庆)(?:市|(?=\s|[^\s路街道巷弄]{1,4}[区县]))|[^\s省市]{2,3}省|[^\s省市]{2,8}?自治区|香港特别行政区|澳门特别行政区)"
    r"\s*(?P<city>[^\s省市区县]{1,4}市|[^\s省市区县]{2,10}?自治州|[^\s省市区县]{2,6}?地区|[^\s省市区县]{2,6}?盟)?")


def split_address(address: str) -> tuple[str, str]:
    """Province and city from the front of a one-line mainland address, as shops write them
    ("浙江省 杭州市 西湖区 ...", "上海市浦东新区..."); empty where it does not start with one.
    A municipality is its own city."""
    match = _ADDRESS.match(address or "")
    if not match:
        return "", ""
    province = match.group("province")
    if province in _MUNICIPALITIES:  # 上海浦东新区: the municipality without 市
        province += "市"
    city = match.group("city") or (province if province[:2] in _MUNICIPALITIES else "")
    return province, city


def _rank(field: str, name: str, chosen_by_user: frozenset[str]) -> int:
    """Which of two columns naming one field is read: a --map header first, then by COLUMN_PREFERENCE."""
    if name in chosen_by_user:
        return -1
    for rank, names in enumerate(COLUMN_PREFERENCE.get(field, ())):
        if name in names:
            return rank
    return len(COLUMN_PREFERENCE.get(field, ()))


def _columns(header: list[object], mapping: dict[str, str], passed_over: list[tuple[str, str, str]] | None = None,
             chosen_by_user: frozenset[str] = frozenset(),
             fallbacks: dict[str, list[int]] | None = None) -> dict[int, str]:
    """Column index -> field for one candidate header row. Where two columns name one field,
    the better-ranked one is read (a receiver's name before a nickname, a mobile before a
    landline), else the first; `passed_over` collects (field, column read, column not read)
    for the warning, `fallbacks` the other columns' indexes, read where the chosen is empty."""
    candidates: dict[str, list[tuple[int, int, str]]] = {}  # field -> [(rank, index, header)]
    for i, cell in enumerate(header):
        name = "" if cell is None else str(cell).strip().lower()
        field = mapping.get(name)
        if field:
            candidates.setdefault(field, []).append((_rank(field, name, chosen_by_user), i, name))
    columns: dict[int, str] = {}
    for field, found in candidates.items():
        found.sort()
        columns[found[0][1]] = field
        for _, i, name in found[1:]:
            if passed_over is not None:
                passed_over.append((field, found[0][2], name))
            if fallbacks is not None and field != "name":  # a nickname is no stand-in for a name
                fallbacks.setdefault(field, []).append(i)
    return dict(sorted(columns.items()))


def read_intake(path: Path, shop_id: str, mapping: dict[str, str] | None = None,
                tz: ZoneInfo = ZoneInfo("Asia/Shanghai")) -> Iterator[dict]:
    """Yield one record per data row, streamed (see module doc)."""
    chosen_by_user = frozenset(mapping or ())
    mapping = {**HEADER_ALIASES, **(mapping or {})}
    seen: dict[str, int] = {}
    first: tuple[str | None, list] | None = None
    headers_found = 0
    for name, count, rows in _read_sheets(path):
        top: list[tuple[int, list[object]]] = []
        for item in rows:  # the first rows, where a header may be
            top.append(item)
            if len(top) >= HEADER_SEARCH_ROWS:
                break
        if not top:
            continue
        if first is None:
            first = (name, top)
        header = _find_header(top, mapping, chosen_by_user)
        if header is None:
            # a summary or notes sheet beside the order sheets: said, not read (a file with
            # no order sheet at all is refused below, with its headers)
            rest = sum(1 for _ in rows)
            if count > 1:
                log.warning("%s: sheet %r has no order header in its first %d rows (%d rows not read)",
                            path.name, name, HEADER_SEARCH_ROWS, len(top) + rest)
            continue
        headers_found += 1
        sheet = "" if name is None or count == 1 else f" sheet {name!r}"
        at, columns = header
        passed_over: list[tuple[str, str, str]] = []
        fallbacks: dict[str, list[int]] = {}
        _columns(top[at][1], mapping, passed_over, chosen_by_user, fallbacks)
        for field, read, skipped in passed_over:
            if field == "name":
                log.warning("%s%s: columns %r and %r both give name; %r is read (--map %s=buyer_id keeps the"
                            " other as the buyer's account, --map %s=name reads it as the name)",
                            path.name, sheet, read, skipped, read, skipped, skipped)
            else:
                log.warning("%s%s: columns %r and %r both give %s; %r is read, %r where it is empty"
                            " (--map %s=%s reads it first)", path.name, sheet, read, skipped, field, read, skipped,
                            skipped, field)
        yield from _records(path.name + sheet, _chain(top[at + 1:], rows), columns, shop_id, tz, seen, fallbacks)
    if first is None:
        raise IntakeError(f"{path.name}: the file is empty (no header row, no data)")
    if not headers_found:
        name, top = first
        missing, row_no, headers = _missing(top, mapping)
        raise IntakeError(
            f"{path.name}{'' if name is None else f' sheet {name!r}'}: no header row in its first "
            f"{HEADER_SEARCH_ROWS} rows names {' nor '.join(missing)}; the closest is row {row_no}: {headers}. "
            "Rename that column, or map it: --map SOURCE_COLUMN=FIELD"
        )


def _chain(head: list, rest: Iterator) -> Iterator:
    yield from head
    yield from rest


def _records(where_file: str, rows: Iterator[tuple[int, list[object]]], columns: dict[int, str], shop_id: str,
             tz: ZoneInfo, seen: dict[str, int], fallbacks: dict[str, list[int]] | None = None) -> Iterator[dict]:
    for rownum, row in rows:
        cells = {columns[i]: row[i] for i in columns if i < len(row)}
        for field, others in (fallbacks or {}).items():
            if not _clean(cells.get(field)):
                cells[field] = next((row[i] for i in others if i < len(row) and _clean(row[i])), cells.get(field))
        record: dict = {f: _clean(cells.get(f)) for f in FIELDS if f != "paid_at"}
        where = f"{where_file} row {rownum}"
        try:
            record["paid_at"] = parse_date(cells.get("paid_at"), tz).isoformat()
        except (ValueError, TypeError) as exc:
            record["paid_at"] = _clean(cells.get("paid_at"))
            record["__error__"] = f"{where}: impossible date {record['paid_at']!r} ({exc})"
        try:
            record["amount"] = str(_money(record["amount"]))
        except InvalidOperation:
            record.setdefault("__error__", f"{where}: unparseable amount {record['amount']!r}")
        refund = record.pop("refund")  # in the payload only where the sheet gives one
        try:
            if refund and _money(refund) < 0:
                record.setdefault("__error__", f"{where}: negative refund {refund!r}")
            elif refund and _money(refund) > 0:
                record["refund"] = str(_money(refund))
        except InvalidOperation:
            record.setdefault("__error__", f"{where}: unparseable refund {refund!r}")
        try:
            record["quantity"] = int(Decimal(record["quantity"] or "1"))
        except (InvalidOperation, ValueError):
            record.setdefault("__error__", f"{where}: unparseable quantity {record['quantity']!r}")
        if _rounded_by_excel(cells.get("order_id")):
            # Taobao/JD order numbers have 16-19 digits; Excel keeps 15, so two orders
            # would land under one id and one of them would be lost
            record.setdefault("__error__", f"{where}: order id {record['order_id']!r} was rounded by Excel (over 15 "
                                           "digits stored as a number); format the column as text and export again")
        status = record["status"].lower().replace(",", "，")  # exports write the comma either way
        record["status"] = STATUS_ALIASES.get(status, STATUS_ALIASES.get(record["status"], "paid" if not status else status))
        if record["status"] not in set(STATUS_ALIASES.values()):
            record.setdefault("__error__", f"{where}: unknown status {record['status']!r}")
        if not record["order_id"]:
            # not the refund: a refund recorded later must not make the order another one
            content = "|".join(str(record.get(f, "")) for f in FIELDS if f not in ("order_id", "refund"))
            digest = hashlib.sha1(f"{shop_id}|{content}".encode()).hexdigest()[:16]
            n = seen.get(digest, 0) + 1
            seen[digest] = n
            record["order_id"] = f"IN-{digest}-{n}"
            record["order_id_derived"] = True
        if record["address"] and not (record["province"] and record["city"]):
            # after the derived order id, whose content it must not change
            province, city = split_address(record["address"])
            record["province"] = record["province"] or province
            record["city"] = record["city"] or city
        if "__error__" in record:
            record["__row__"] = rownum
        yield record


def _money(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").strip())


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
