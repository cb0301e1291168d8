"""Spreadsheet intake (R1): headers in English or Chinese, date shapes, stable ids, encodings."""

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.extract.intake import IntakeError, parse_date, parse_mapping, read_intake

TZ = ZoneInfo("Asia/Shanghai")


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_dates_in_every_documented_shape():
    expected = datetime(2026, 11, 20, tzinfo=TZ)
    for value in ("2026-11-20", "20261120", "2026/11/20", 46346, "46346", "2026年11月20日"):
        assert parse_date(value, TZ).date() == expected.date(), value
    assert parse_date("2026-11-20 14:05", TZ).hour == 14
    for bad in ("2026-02-30", "", "12", 5):
        with pytest.raises(ValueError):
            parse_date(bad, TZ)


def test_chinese_headers_gbk_csv_and_stable_ids(tmp_path):
    rows = [["姓名", "手机", "实付金额", "付款时间", "商品", "状态"],
            ["张三", "13812345678", "￥99.00", "2026/11/01", "面膜", "已付款"],
            ["张三", "13812345678", "￥99.00", "2026/11/01", "面膜", "已付款"],
            ["李四", "13912345678", "120", "20261102", "洁面乳", "交易成功"]]
    path = write_csv(tmp_path / "orders.csv", rows, encoding="gbk")
    records = list(read_intake(path, "wechat"))
    assert [r["name"] for r in records] == ["张三", "张三", "李四"]
    assert records[0]["amount"] == "99.00" and records[2]["status"] == "completed"
    # two identical lines stay two orders; reading again gives the same ids
    ids = [r["order_id"] for r in records]
    assert len(set(ids)) == 3
    assert ids == [r["order_id"] for r in read_intake(path, "wechat")]
    assert ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]


def test_english_headers_and_explicit_mapping(tmp_path):
    rows = [["Order", "Customer Name", "Mobile", "Total", "Date", "Wx"],
            ["A-1", "Ann", "+86 138 1234 5678", "10.5", "2026-11-01", "wx_ann"]]
    path = write_csv(tmp_path / "o.csv", rows)
    record = next(read_intake(path, "s", parse_mapping(["customer name=name", "wx=buyer_id"])))
    assert record["order_id"] == "A-1" and record["name"] == "Ann" and record["buyer_id"] == "wx_ann"
    with pytest.raises(IntakeError):
        parse_mapping(["x=not_a_field"])


def test_a_row_typed_wrong_is_kept_with_its_row_number(tmp_path):
    rows = [["手机", "金额", "日期"], ["13812345678", "10", "2026-02-30"], ["13812345678", "abc", "2026-02-01"]]
    records = list(read_intake(write_csv(tmp_path / "o.csv", rows), "s"))
    assert "row 2" in records[0]["__error__"] and "impossible date" in records[0]["__error__"]
    assert "row 3" in records[1]["__error__"] and "amount" in records[1]["__error__"]


def test_a_file_without_the_needed_columns_is_rejected_with_its_headers(tmp_path):
    path = write_csv(tmp_path / "o.csv", [["foo", "bar"], ["1", "2"]])
    with pytest.raises(IntakeError, match="foo"):
        list(read_intake(path, "s"))


def test_xlsx_with_excel_dates(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["订单号", "昵称", "手机", "金额", "付款时间"])
    wb.active.append(["X1", "小米", "13812345678", 88, datetime(2026, 11, 3, 9, 30)])
    wb.active.append(["X2", "小米", "13812345678", 12.5, 46330])
    wb.save(tmp_path / "o.xlsx")
    records = list(read_intake(tmp_path / "o.xlsx", "s"))
    assert records[0]["paid_at"].startswith("2026-11-03T09:30")
    assert records[1]["paid_at"].startswith("2026-11-04")


def test_a_title_above_the_header_and_blank_lines_keep_the_rows_people_see(tmp_path):
    # WPS/Excel exports: a title and a date range above the header, blank lines between
    # blocks, a totals row at the bottom. Errors name the row number shown in the sheet.
    rows = [["微信小店订单导出"], ["2026-11-01 至 2026-11-30"], [],
            ["姓名", "手机", "实付金额", "付款时间"],          # row 4
            ["张三", "13812345678", "99", "2026/11/01"],      # row 5
            [],
            ["李四", "13912345678", "abc", "2026/11/02"],     # row 7
            ["合计", "", "99", ""]]                            # row 8
    records = list(read_intake(write_csv(tmp_path / "o.csv", rows), "s"))
    assert [r["name"] for r in records] == ["张三", "李四", "合计"]
    assert "__error__" not in records[0] and records[0]["amount"] == "99"
    assert records[1]["__error__"].startswith("o.csv row 7: unparseable amount")
    assert records[2]["__error__"].startswith("o.csv row 8: impossible date")  # quarantined, not an order


def test_the_header_is_looked_for_only_near_the_top(tmp_path):
    rows = [[f"note {i}"] for i in range(10)] + [["姓名", "金额"], ["张三", "1"]]
    with pytest.raises(IntakeError, match="first 10 rows"):
        list(read_intake(write_csv(tmp_path / "o.csv", rows), "s"))


def test_an_order_id_rounded_by_excel_is_quarantined_not_merged(tmp_path):
    # two 18-digit Taobao order numbers that Excel stored as numbers collapse to one value;
    # landing them under one id would lose an order
    rows = [["订单号", "手机", "金额", "日期"],
            ["2.02611E+17", "13812345678", "10", "2026-11-01"],
            ["2.02611E+17", "13912345678", "20", "2026-11-02"],
            ["202611011234567891", "13912345678", "30", "2026-11-03"]]
    records = list(read_intake(write_csv(tmp_path / "o.csv", rows), "s"))
    assert all("rounded by Excel" in r["__error__"] for r in records[:2])
    assert "__error__" not in records[2]

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["订单号", "手机", "金额", "日期"])
    wb.active.append([202611011234567891.0, "13812345678", 10, "2026-11-01"])
    wb.active.append([1234567, "13812345678", 10, "2026-11-01"])
    wb.save(tmp_path / "o.xlsx")
    first, second = read_intake(tmp_path / "o.xlsx", "s")
    assert "row 2" in first["__error__"] and "rounded by Excel" in first["__error__"]
    assert "__error__" not in second and second["order_id"] == "1234567"


def test_every_order_sheet_of_a_workbook_is_read_and_a_summary_sheet_is_named(tmp_path, caplog):
    from openpyxl import Workbook

    wb = Workbook()
    nov = wb.active
    nov.title = "11月"
    nov.append(["姓名", "手机", "金额", "日期"])
    nov.append(["张三", "13812345678", 10, "2026-11-01"])
    summary = wb.create_sheet("汇总")
    summary.append(["月份", "合计"])
    summary.append(["11月", 10])
    dec = wb.create_sheet("12月")
    dec.append(["12月订单"])
    dec.append(["姓名", "手机", "金额", "日期"])
    dec.append(["李四", "13912345678", "x", "2026-12-01"])
    wb.save(tmp_path / "o.xlsx")
    with caplog.at_level("WARNING"):
        records = list(read_intake(tmp_path / "o.xlsx", "s"))
    assert [r["name"] for r in records] == ["张三", "李四"]
    assert records[1]["__error__"].startswith("o.xlsx sheet '12月' row 3: unparseable amount")
    assert "汇总" in caplog.text and "2 rows not read" in caplog.text


def test_quarantine_reasons_group_by_kind_without_the_typed_values(tmp_path):
    """`crm quarantine list` and the daily report show reasons by kind: a phone typed into
    the amount column must not reach the terminal or the report."""
    from crm_pipeline.load.quarantine import reason_kind

    rows = [["订单号", "手机", "金额", "日期"],
            ["A1", "13812345678", "13912345678元x", "2026-11-01"],
            ["A2", "13812345678", "10", "2026-02-30"],
            ["2.02611E+17", "13812345678", "10", "2026-11-01"],
            ["2.02611E+17", "13912345678", "20", "2026-11-02"]]
    reasons = [r["__error__"] for r in read_intake(write_csv(tmp_path / "o.csv", rows), "s")]
    kinds = [reason_kind(r) for r in reasons[:3]]
    assert "13912345678" in reasons[0]  # the full reason (kept in raw.quarantine) names the value
    assert kinds == ["unparseable amount", "impossible date", "order id was rounded by Excel"]
    assert reason_kind("impossible date in created_at: 'not a date'") == "impossible date in created_at"
    assert reason_kind("o.xlsx sheet '12月' row 3: unknown status 'haunted'") == "unknown status"
    assert reason_kind("decrypt failed for 13912345678") == "decrypt failed for 139******78"  # redacted
