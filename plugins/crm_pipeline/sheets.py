"""Spreadsheets and CSVs that people open: safe cells, text phones, files never clobbered.

Names, products, notes and order numbers come from platforms and intake files,
that is from outside. A cell whose text starts with ``= + - @`` (or a tab or
carriage return) is a formula to Excel and WPS: ``=HYPERLINK(...)`` or
``=cmd|' /C calc'!A0`` would run on an agent's machine. So:

* in .xlsx such text is written as a string cell (never openpyxl's formula
  type) with Excel's quote prefix, so editing the cell keeps it text;
* in .csv it gets a leading apostrophe (the OWASP advice), which Excel shows as
  text and which :func:`csv_unescape` takes off again;
* characters XML cannot hold (control characters in a pasted name) are dropped
  instead of failing the whole list.

Files are written to a temporary name and linked into place only if the target
does not exist: a file someone may have edited is never replaced, and nothing is
ever half-written.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses in cell text
DATE_FORMAT = "yyyy-mm-dd"
MONEY_FORMAT = '"¥"#,##0.00'
TEXT_FORMAT = "@"
META_SHEET = "_crm"  # very hidden: what the file is, for the pipeline, not for people


def formula_like(value: object) -> bool:
    return isinstance(value, str) and value[:1] in FORMULA_START


def clean_text(value: object) -> str:
    return _ILLEGAL.sub("", "" if value is None else str(value))


_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_escape(value: object) -> object:
    """A CSV field a spreadsheet will not evaluate (non-text values unchanged).

    A plain signed number (an E.164 phone, a refund of -5) is data, not a formula,
    and stays as it is so that tools read it; anything else starting with a formula
    character gets the apostrophe."""
    if isinstance(value, str):
        value = clean_text(value)
        return "'" + value if formula_like(value) and not _PLAIN_NUMBER.fullmatch(value) else value
    return value


def csv_unescape(value: str) -> str:
    return value[1:] if value[:1] == "'" and formula_like(value[1:]) else value


def put(ws, row: int, column: int, value: object, number_format: str | None = None):
    """Write one cell: text stays text (a leading '=' is not a formula), dates and numbers keep their type."""
    cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        text = clean_text(value)
        cell.value = text
        cell.data_type = "s"  # openpyxl would store "=..." as a formula
        if formula_like(text):
            cell.quotePrefix = True
        if number_format is None:
            number_format = TEXT_FORMAT
    elif isinstance(value, datetime | date):
        cell.value = value
        number_format = number_format or DATE_FORMAT
    else:
        cell.value = value
    if number_format:
        cell.number_format = number_format
    return cell


def put_text(ws, row: int, column: int, value: object):
    """A cell that must stay text whatever it looks like (phones, long order numbers)."""
    return put(ws, row, column, "" if value is None else str(value), TEXT_FORMAT)


def display_phone(e164: str | None) -> str:
    """How an agent dials it: a mainland mobile without +86, anything else in E.164."""
    if not e164:
        return ""
    return e164[3:] if e164.startswith("+861") and len(e164) == 14 else e164


def fingerprint(rows: Iterable) -> str:
    return hashlib.sha256(json.dumps(list(rows), sort_keys=True, ensure_ascii=False, default=str)
                          .encode("utf-8")).hexdigest()[:16]


# -- files that are never replaced ----------------------------------------------------------
def publish(tmp: Path, target: Path) -> None:
    """Move a finished temporary file to ``target``; FileExistsError if target exists."""
    try:
        os.link(tmp, target)  # atomic, and fails if the target exists
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError:  # a filesystem without hard links
        if target.exists():
            tmp.unlink(missing_ok=True)
            raise FileExistsError(target) from None
        os.replace(tmp, target)
        return
    tmp.unlink(missing_ok=True)


def temp_path(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def versioned(path: Path, version: int) -> Path:
    """call_list.xlsx, call_list.v2.xlsx, ..."""
    return path if version <= 1 else path.with_name(f"{path.stem}.v{version}{path.suffix}")


def save_workbook_once(wb, target: Path) -> Path:
    tmp = temp_path(target)
    wb.save(tmp)
    publish(tmp, target)
    return target


def write_csv_once(target: Path, header: list[str], rows: Iterable[list]) -> Path:
    """A UTF-8 CSV with BOM (Excel and WPS then read it as UTF-8), every text field escaped."""
    tmp = temp_path(target)
    with tmp.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_escape(v) for v in row])
    publish(tmp, target)
    return target


def write_csv_replace(target: Path, header: list[str], rows: Iterable[list]) -> Path:
    """Like write_csv_once, for a file tools read and nobody edits: replaced atomically."""
    tmp = temp_path(target)
    with tmp.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_escape(v) for v in row])
    os.replace(tmp, target)
    return target


def add_meta_sheet(wb, facts: dict) -> None:
    """A very hidden, protected sheet saying what the file is (list, version, fingerprint)."""
    ws = wb.create_sheet(META_SHEET)
    for i, (key, value) in enumerate(facts.items(), start=1):
        put(ws, i, 1, str(key))
        put(ws, i, 2, json.dumps(value, ensure_ascii=False, default=str))
    ws.sheet_state = "veryHidden"
    ws.protection.sheet = True


def read_meta(path: Path) -> dict:
    """The meta sheet of a workbook this package wrote ({} if there is none or it cannot be read)."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:
        return {}
    try:
        if META_SHEET not in wb.sheetnames:
            return {}
        out = {}
        for key, value, *_ in wb[META_SHEET].iter_rows(values_only=True):
            if key:
                try:
                    out[str(key)] = json.loads(value) if isinstance(value, str) else value
                except ValueError:
                    out[str(key)] = value
        return out
    finally:
        wb.close()


def write_list_once(folder: Path, stem: str, content: str, write) -> tuple[Path, bool]:
    """A list for people that a rerun must not replace once written.

    ``write(version) -> Path`` writes ``<stem>.xlsx`` (or ``<stem>.vN.xlsx``) with
    ``content`` (a fingerprint) in its meta sheet. When the newest existing version
    already holds this content nothing is written; when it holds other content the
    next version is written beside it. Returns (path, written).
    """
    version, newest = 1, None
    while versioned(folder / f"{stem}.xlsx", version).exists():
        newest = versioned(folder / f"{stem}.xlsx", version)
        version += 1
    if newest is not None and read_meta(newest).get("content") == content:
        return newest, False
    return write(version), True
