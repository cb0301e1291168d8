"""Spreadsheet intake (R1): headers in English or Chinese, date shapes, stable ids, encodings."""

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.extract.intake import IntakeError, MappingError, parse_date, parse_mapping, read_intake, split_address

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
    for bad in ("2026-02-30", "", "12", 5, "97-02-30", 123456):
        with pytest.raises(ValueError):
            parse_date(bad, TZ)


def test_old_dates_two_digit_years_and_excel_serials(monkeypatch):
    """No calendar floor (a 1990s ledger imports); a two-digit year takes the century that
    does not put the date in the future, by the pipeline clock, at any moment."""
    from datetime import UTC, timedelta

    from crm_pipeline.clock import now

    for value in ("1997-01-01", "19970101", "1997/1/1", "97/01/01", "97-1-1", "97.1.1", 35431, "35431"):
        assert parse_date(value, TZ).date() == datetime(1997, 1, 1).date(), value
    for moment in (now(), datetime(2026, 11, 21, 2, tzinfo=UTC), datetime(2099, 12, 31, 15, tzinfo=UTC)):
        monkeypatch.setenv("CRM_NOW", moment.isoformat())
        today = moment.astimezone(TZ).date()
        yy = today.year % 100
        assert parse_date(f"{yy:02d}-{today.month}-{today.day}", TZ).date() == today
        ahead = today + timedelta(days=1)
        assert parse_date(f"{ahead.year % 100:02d}/{ahead.month}/{ahead.day}", TZ).year == ahead.year - 100
        assert parse_date(f"{(yy - 1) % 100:02d}/06/01", TZ).year == today.year - 1


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
    with pytest.raises(MappingError):
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


# -- hostile and oversized files: refused before they are unpacked, rows streamed ---------
def test_a_zip_bomb_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    import openpyxl
    from hostile import zip_bomb

    def never(*a, **k):
        raise AssertionError("the workbook was opened")

    monkeypatch.setattr(openpyxl, "load_workbook", never)
    with pytest.raises(IntakeError, match=r"would unpack to 150 MB, over the 100 MB limit.*refused without unpacking"):
        list(read_intake(zip_bomb(tmp_path / "bomb.xlsx"), "s"))
    # under the size limit, the compression ratio alone gives it away
    with pytest.raises(IntakeError, match=r"part xl/worksheets/sheet1.xml unpacks .* times its packed size"):
        list(read_intake(zip_bomb(tmp_path / "small_bomb.xlsx", unpacked_mb=5), "s"))


def test_the_size_limit_is_a_setting(tmp_path, monkeypatch):
    from crm_pipeline.settings import reload_settings
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["姓名", "手机", "金额", "日期", "商品"])
    for i in range(2500):
        wb.active.append([f"客户{i}", f"138{i:08d}", i, "2026-11-01", f"{i:06d}" * 80])  # ~1.3 MB unpacked
    wb.save(tmp_path / "big.xlsx")
    write_csv(tmp_path / "big.csv", [["姓名", "手机", "金额", "日期"]] + [["张三", "13812345678", "1", "2026-11-01"]] * 40000)
    monkeypatch.setenv("CRM_INTAKE_MAX_MB", "1")
    reload_settings()
    try:
        with pytest.raises(IntakeError, match="over the 1 MB limit"):
            list(read_intake(tmp_path / "big.xlsx", "s"))
        with pytest.raises(IntakeError, match="over the 1 MB limit"):
            list(read_intake(tmp_path / "big.csv", "s"))
    finally:
        monkeypatch.delenv("CRM_INTAKE_MAX_MB")
        reload_settings()
    assert sum(1 for _ in read_intake(tmp_path / "big.xlsx", "s")) == 2500


def test_files_that_only_pretend_to_be_spreadsheets(tmp_path):
    from hostile import not_a_zip, zip_without_workbook

    with pytest.raises(IntakeError, match="not an .xlsx workbook"):
        list(read_intake(not_a_zip(tmp_path / "old.xlsx"), "s"))
    with pytest.raises(IntakeError, match="not an Excel workbook"):
        list(read_intake(zip_without_workbook(tmp_path / "z.xlsx"), "s"))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(IntakeError, match="empty"):
        list(read_intake(tmp_path / "empty.csv", "s"))
    (tmp_path / "wide.csv").write_text("姓名,手机,金额\n张三," + "1" * 200_000 + ",1\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="wide.csv line 2: not a readable CSV line"):
        list(read_intake(tmp_path / "wide.csv", "s"))


def test_rows_are_streamed_with_bounded_memory(tmp_path):
    """Reading a file does not hold it: memory stays flat as the file grows."""
    import tracemalloc

    rows = [["姓名", "手机", "金额", "日期"]] + [["张三", f"138{i:08d}", "12.5", "2026-11-01"] for i in range(10000)]
    path = write_csv(tmp_path / "long.csv", rows)

    def peak_while_reading(path, limit):
        tracemalloc.start()
        try:
            n = sum(1 for _ in zip(range(limit), read_intake(path, "s"), strict=False))
            return n, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    n_small, small = peak_while_reading(path, 500)
    n_all, whole = peak_while_reading(path, 10**9)
    assert (n_small, n_all) == (500, 10000)
    # holding the rows of this 0.5 MB file as lists took 9 MB here; streamed, the peak stays near the first page's
    assert whole < small + 1_500_000, (small, whole)


def test_common_chinese_headers_and_a_missing_field_named(tmp_path):
    rows = [["客户姓名", "客户电话", "订单金额", "下单日期", "商品名称"],
            ["张三", "13812345678", "99", "2026/11/01", "面膜"]]
    (record,) = read_intake(write_csv(tmp_path / "o.csv", rows), "s")
    assert (record["name"], record["phone"], record["amount"], record["product"]) == ("张三", "13812345678", "99",
                                                                                       "面膜")
    rows = [["备注"], ["客户姓名", "客户电话", "下单日期"], ["张三", "13812345678", "2026/11/01"]]
    with pytest.raises(IntakeError) as info:
        list(read_intake(write_csv(tmp_path / "n.csv", rows), "s"))
    message = str(info.value)
    assert "names amount (e.g. 金额" in message and "row 2: ['客户姓名', '客户电话', '下单日期']" in message


def test_two_name_columns_read_the_receivers_name_and_say_so(tmp_path, caplog):
    """A Taobao-style export names the buyer twice: the account's nickname and the receiver.
    The receiver's name is read, whichever column comes first, a warning names both, and
    --map chooses the other."""
    rows = [["订单编号", "买家昵称", "联系手机", "收货人姓名", "实付金额", "付款时间"],
            ["T-1", "tb_sunny88", "13812345678", "周芷若", "99", "2026-11-01 10:00"]]
    path = write_csv(tmp_path / "taobao.csv", rows)
    with caplog.at_level("WARNING"):
        (record,) = read_intake(path, "s")
    assert record["name"] == "周芷若" and record["phone"] == "13812345678"
    assert "'收货人姓名' and '买家昵称' both give name" in caplog.text
    (chosen,) = read_intake(path, "s", parse_mapping(["买家昵称=name"]))
    assert chosen["name"] == "tb_sunny88"


def test_a_taobao_seller_export_imports_as_written(tmp_path, caplog):
    """千牛's order export: its own headers and order states, order numbers written as
    ="..." so that Excel keeps all 19 digits, the buyer's account beside the receiver, a
    landline column before the mobile that is mostly empty, and the creation time before
    the payment time."""
    rows = [["订单编号", "买家会员名", "买家实际支付金额", "订单状态", "收货人姓名", "联系电话", "联系手机",
             "订单创建时间", "订单付款时间", "宝贝标题", "宝贝总数量"],
            ['="4012345678901234567"', "sunny_tb88", "567.00", "买家已付款，等待卖家发货", "王秀英", "",
             "13812345678", "2026-10-31 23:50:00", "2026-11-01 10:00:00", "玻尿酸保湿精华液 30ml", "3"],
            ["4012345678901234568", "sunny_tb88", "79.00", "卖家已发货,等待买家确认", "王秀英", "021-62345678",
             "13812345678", "2026-11-02 09:00:00", "2026-11-02 10:00:00", "氨基酸洁面乳 120g", "1"],
            ["4012345678901234569", "lee_2020", "79.00", "交易关闭", "李雷", "010-88886666", "",
             "2026-11-03 09:00:00", "2026-11-03 10:00:00", "氨基酸洁面乳 120g", "1"]]
    path = write_csv(tmp_path / "ExportOrderList.csv", rows, encoding="gbk")
    with caplog.at_level("WARNING"):
        records = list(read_intake(path, "s"))
    assert [r.get("__error__") for r in records] == [None, None, None]
    assert [(r["order_id"], r["buyer_id"], r["name"], r["phone"], r["status"], r["amount"], r["quantity"])
            for r in records] == [
        ("4012345678901234567", "sunny_tb88", "王秀英", "13812345678", "paid", "567.00", 3),
        ("4012345678901234568", "sunny_tb88", "王秀英", "13812345678", "shipped", "79.00", 1),
        ("4012345678901234569", "lee_2020", "李雷", "010-88886666", "closed", "79.00", 1)]  # no mobile: the landline
    assert records[0]["paid_at"].startswith("2026-11-01T10:00")  # paid, not created (23:50 the day before)
    assert "'联系手机' and '联系电话' both give phone" in caplog.text
    assert records[0]["product"] == "玻尿酸保湿精华液 30ml"


def test_a_file_without_a_date_column_is_refused_not_quarantined_row_by_row(tmp_path):
    rows = [["订单号", "客户姓名", "金额"], ["A-1", "张三", "99"]]
    with pytest.raises(IntakeError) as info:
        list(read_intake(write_csv(tmp_path / "nodate.csv", rows), "s"))
    assert "paid_at (e.g. 付款时间" in str(info.value)


@pytest.mark.parametrize("address, province, city", [
    ("浙江省 杭州市 西湖区 文三路1号", "浙江省", "杭州市"),
    ("浙江省杭州市西湖区文三路", "浙江省", "杭州市"),
    ("上海浦东新区世纪大道100号", "上海市", "上海市"),
    ("北京市朝阳区建国路", "北京市", "北京市"),
    ("广西壮族自治区南宁市青秀区", "广西壮族自治区", "南宁市"),
    ("湖北省恩施土家族苗族自治州恩施市", "湖北省", "恩施土家族苗族自治州"),
    ("黑龙江省哈尔滨市南岗区", "黑龙江省", "哈尔滨市"),
    ("上海路88号", "", ""),  # a street named after a city is no province
    ("人民路88号", "", ""),
])
def test_province_and_city_from_a_one_line_address(address, province, city):
    assert split_address(address) == (province, city)


def test_a_row_with_only_an_address_gets_its_province_and_city(tmp_path):
    rows = [["订单号", "客户姓名", "收货地址", "金额", "日期", "城市"],
            ["A-1", "张三", "浙江省 杭州市 西湖区 文三路1号", "99", "2026-11-01", ""],
            ["A-2", "李四", "江苏省苏州市工业园区", "99", "2026-11-01", "昆山市"]]  # a city column wins
    first, second = read_intake(write_csv(tmp_path / "a.csv", rows), "s")
    assert (first["province"], first["city"]) == ("浙江省", "杭州市")
    assert (second["province"], second["city"]) == ("江苏省", "昆山市")


def test_a_refund_column_is_read_and_leaves_derived_ids_alone(tmp_path):
    """退款金额 lands as `refund` where a row has one (the payload of a sheet without it is
    unchanged), a refund that is no amount is quarantined with its row, and a row's derived
    id does not depend on its refund: a refund recorded in a later export is the same order."""
    header = ["姓名", "手机", "实付金额", "付款时间", "状态"]
    rows = [["张三", "13812345678", "300", "2026/11/01", "交易成功"],
            ["李四", "13912345678", "79", "2026/11/02", "交易关闭"],
            ["王五", "13712345678", "59", "2026/11/03", "交易成功"]]
    plain = list(read_intake(write_csv(tmp_path / "a.csv", [header] + rows), "s"))
    refunds = ["￥120.00", "79", ""]
    with_refund = list(read_intake(write_csv(tmp_path / "b.csv", [header + ["退款金额"]]
                                             + [r + [x] for r, x in zip(rows, refunds, strict=True)]), "s"))
    assert [r.get("refund") for r in with_refund] == ["120.00", "79", None]
    assert all("refund" not in r for r in plain)
    assert [r["order_id"] for r in plain] == [r["order_id"] for r in with_refund]
    # the id the intake gave this row before it read refunds (at 682c5d5): a file imported then
    # and again now lands on the same order
    assert plain[0]["order_id"] == "IN-7fb879734d014278-1"
    bad = list(read_intake(write_csv(tmp_path / "c.csv", [header + ["退款金额"], rows[0] + ["退了一半"],
                                                          rows[1] + ["-5"]]), "s"))
    assert [r["__error__"].split(": ", 1)[1] for r in bad] == ["unparseable refund '退了一半'", "negative refund '-5'"]
