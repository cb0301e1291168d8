"""Lists for ops besides the call list: the day-100 "about to lose" list (R10).

Each is an .xlsx for people (Chinese headers, phones as text, real dates and amounts,
autofilter; never replaced once written: a list whose content changed on a rerun is
written as a new version beside it) and a CSV for tools (E.164 phones, English keys,
formula-like text escaped; replaced atomically).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

ALERT_COLUMNS = [("customer_id", "客户ID", 16), ("name", "姓名", 10), ("phone", "手机", 14),
                 ("days", "未购买天数", 10), ("paid_date", "最后付款日期", 13), ("net_revenue_cny", "累计消费", 12),
                 ("last_order", "最后订单", 34), ("reason", "提醒原因", 26)]
CSV_FIELDS = ["customer_id", "name", "phone", "last_order", "paid_date", "net_revenue_cny", "reason"]


def write_about_to_lose(folder: Path, alerts: list[dict], list_date: date) -> Path:
    """about_to_lose.xlsx (people) and about_to_lose.csv (tools); returns the .xlsx written or kept."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from crm_pipeline.sheets import (
        DATE_FORMAT,
        MONEY_FORMAT,
        add_meta_sheet,
        display_phone,
        fingerprint,
        put,
        put_text,
        save_workbook_once,
        versioned,
        write_csv_replace,
        write_list_once,
    )

    folder.mkdir(parents=True, exist_ok=True)
    write_csv_replace(folder / "about_to_lose.csv", CSV_FIELDS, ([a.get(k) for k in CSV_FIELDS] for a in alerts))
    content = fingerprint(alerts)

    def write(version: int) -> Path:
        wb = Workbook()
        ws = wb.active
        ws.title = "即将流失"
        put(ws, 1, 1, f"即将流失客户 {list_date.isoformat()}：距上次购买已满提醒天数，请安排关怀回访（不要发促销）· 共 {len(alerts)} 位")
        ws["A1"].font = Font(bold=True, size=12)
        for j, (_, label, width) in enumerate(ALERT_COLUMNS, start=1):
            cell = put(ws, 2, j, label)
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
            ws.column_dimensions[get_column_letter(j)].width = width
        for i, a in enumerate(alerts, start=3):
            paid = date.fromisoformat(a["paid_date"]) if a.get("paid_date") else None
            values = {**a, "days": (list_date - paid).days if paid else None, "paid_date": paid,
                      "reason": f"已 {(list_date - paid).days} 天未购买" if paid else ""}
            for j, (key, _, _) in enumerate(ALERT_COLUMNS, start=1):
                value = values.get(key)
                if key == "phone":
                    put_text(ws, i, j, display_phone(value))
                elif key in ("customer_id", "last_order"):
                    put_text(ws, i, j, value)
                elif key == "paid_date":
                    put(ws, i, j, value, DATE_FORMAT)
                elif key == "net_revenue_cny":
                    put(ws, i, j, float(value or 0), MONEY_FORMAT)
                else:
                    put(ws, i, j, value if isinstance(value, int) else ("" if value is None else str(value)))
        ws.freeze_panes = "C3"
        ws.auto_filter.ref = f"A2:{get_column_letter(len(ALERT_COLUMNS))}{max(3, len(alerts) + 2)}"
        add_meta_sheet(wb, {"kind": "about_to_lose", "list_date": list_date.isoformat(), "version": version,
                            "content": content})
        return save_workbook_once(wb, versioned(folder / "about_to_lose.xlsx", version))

    path, _ = write_list_once(folder, "about_to_lose", content, write)
    return path
