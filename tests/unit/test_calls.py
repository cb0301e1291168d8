"""Call lists (R7) and reading outcomes back (R8): the sheets are the agents' files.

The files are opened as a person's spreadsheet program would see them: cell types,
number formats, dropdown rules, hidden parts, and the raw XML for formulas.
"""

import csv
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from crm_pipeline.outreach.calls import (
    KEY_HEADER,
    CallCandidate,
    CallConfig,
    IssuedList,
    OutcomeSheetError,
    parse_outcome_sheets,
    select_calls,
    sheet_rows,
    write_sheets,
)
from crm_pipeline.sheets import META_SHEET, csv_unescape, read_meta
from hostile import FORMULAS
from openpyxl import load_workbook

DAY = date(2026, 11, 21)


def config(capacity_a=3, capacity_b=2, share=0.5):
    return CallConfig(agents=(("a", "王芳", capacity_a), ("b", "李敏", capacity_b)), high_value_share=share,
                      lukewarm_phrases=("还行", "一般"), scripts={"all_fit": "您好，我是{店铺}的客服{坐席}"},
                      shop_names={"tmall": "天猫旗舰店"})


def c(customer, value, round_no=1, rating=None, review=None, **kw):
    return CallCandidate(customer, round_no, f"taobao:tmall:{customer}{int(value)}", value, rating, review,
                         name=kw.pop("name", f"n{customer}"), phone=kw.pop("phone", "+8613800000000"),
                         paid_date=date(2026, 11, 6), shop_id="tmall", platform="taobao", **kw)


def issue(entries, cfg=None, version=1, numbers=None) -> IssuedList:
    cfg = cfg or config()
    numbers = numbers or {e.candidate.order_key: "2353812345678901234" for e in entries}
    return IssuedList(DAY, version, sheet_rows(entries, cfg, numbers))


def test_everyone_is_called_when_the_volume_fits():
    entries = select_calls([c("1", 10), c("2", 20), c("3", 30)], config(), DAY)
    assert {e.candidate.customer_id for e in entries} == {"1", "2", "3"}
    assert {e.priority_reason for e in entries} == {"all_fit"}


def test_over_capacity_follow_ups_then_value_then_lukewarm_then_random():
    cands = [c("f", 5, round_no=2)] + [c(str(i), 100 - i) for i in range(10)]
    cands += [c("lw", 1, rating="good", review="还行吧"), c("ok", 2, rating="good", review="很好")]
    entries = select_calls(cands, config(3, 2, share=0.5), DAY)
    reasons = [(e.candidate.customer_id, e.priority_reason) for e in entries]
    assert len(entries) == 5  # capacity
    assert reasons[0] == ("f", "unresolved_followup")
    assert reasons[1:3] == [("0", "order_value"), ("1", "order_value")]
    assert reasons[3] == ("lw", "good_rating_lukewarm_review")
    assert reasons[4][1] == "random_sample"
    # the same day gives the same sample; another day may not
    assert entries == select_calls(list(reversed(cands)), config(3, 2, share=0.5), DAY)


def test_agents_never_exceed_capacity_and_a_customer_is_called_once():
    cands = [c(str(i), i) for i in range(20)] + [c("7", 999, round_no=2)]
    entries = select_calls(cands, config(3, 2), DAY)
    per_agent = {}
    for e in entries:
        per_agent[e.agent] = per_agent.get(e.agent, 0) + 1
    assert per_agent == {"a": 3, "b": 2}
    assert len({e.candidate.customer_id for e in entries}) == len(entries)


def columns(ws, header_row=2) -> dict[str, int]:
    return {str(cell.value): cell.column for cell in ws[header_row] if cell.value}


def fill(path: Path, values: dict[int, dict[str, object]], out: Path | None = None, sheet: int = 0) -> Path:
    wb = load_workbook(path)
    ws = wb.worksheets[sheet]
    col = columns(ws)
    for row, cells in values.items():
        for label, value in cells.items():
            ws.cell(row=row, column=col[label], value=value)
    wb.save(out or path)
    return out or path


def test_the_sheet_an_agent_works_from(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20), c("C3", 30), c("C4", 40)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    assert {"a", "b", "combined", "csv"} <= set(paths)
    wb = load_workbook(paths["a"])
    assert wb.sheetnames == ["王芳", "填写说明", META_SHEET]
    assert wb[META_SHEET].sheet_state == "veryHidden" and wb[META_SHEET].protection.sheet
    ws = wb["王芳"]
    col = columns(ws)
    assert "11:00-16:00" in ws["A1"].value and ws.freeze_panes == "D3"
    assert ws.auto_filter.ref.startswith("A2:")
    assert ws.column_dimensions[ws.cell(2, col[KEY_HEADER]).column_letter].hidden
    rows = list(range(3, ws.max_row + 1))
    # per-agent numbering, in Chinese, with the shop and the order number as the platform shows it
    assert [ws.cell(r, col["序号"]).value for r in rows] == [1, 2]
    assert ws.cell(3, col["回访原因"]).value == "例行回访（当日名单全部回访）"
    assert ws.cell(3, col["话术提示"]).value == "您好，我是天猫旗舰店的客服王芳"
    assert ws.cell(3, col["店铺"]).value == "天猫旗舰店" and ws.cell(3, col["平台"]).value == "淘宝/天猫"
    order_no = ws.cell(3, col["订单号（平台后台可搜）"])
    assert order_no.value == "2353812345678901234" and order_no.data_type == "s"  # 19 digits stay exact
    # phones are text a dialler can use; dates and amounts are real values with formats
    phone = ws.cell(3, col["手机"])
    assert (phone.value, phone.data_type, phone.number_format) == ("13800000000", "s", "@")
    paid = ws.cell(3, col["付款日期"])
    assert isinstance(paid.value, datetime) and paid.number_format == "yyyy-mm-dd"
    amount = ws.cell(3, col["订单金额"])
    assert isinstance(amount.value, int | float) and "¥" in amount.number_format
    assert ws.cell(3, col["客户分群"]).value == "未评分" and ws.cell(3, col["回访轮次"]).value == "首次回访"
    # dropdowns refuse anything else (error style "stop"), the birthday only takes dates
    rules = {str(dv.sqref).split(":")[0][:1]: dv for dv in ws.data_validations.dataValidation}
    reached = rules[ws.cell(2, col["接通情况"]).column_letter]
    assert reached.formula1 == '"已接通,未接通"' and reached.showErrorMessage and reached.errorStyle == "stop"
    assert rules[ws.cell(2, col["拒绝再联系"]).column_letter].formula1 == '"是,否"'
    assert rules[ws.cell(2, col["生日"]).column_letter].type == "date"
    # the instructions sheet explains every reason and where the file goes back
    text = "\n".join(str(r[0]) for r in wb["填写说明"].iter_rows(values_only=True) if r[0])
    assert "crm calls import" in text and "二次回访" in text and "（all_fit）" in text


def test_outside_text_is_never_a_formula_in_xlsx_or_csv(tmp_path):
    """Names, products and notes come from platforms and sheets: stored as text, never <f> cells."""
    cands = [c(f"C{i}", 10 + i, name=f, products=f, context=f) for i, f in enumerate(FORMULAS)]
    entries = select_calls(cands, config(10, 10), DAY)
    paths = write_sheets(issue(entries, config(10, 10)), config(10, 10), tmp_path)
    for key in ("a", "b", "combined"):
        with zipfile.ZipFile(paths[key]) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/"):
                    assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name), (key, name)
        wb = load_workbook(paths[key])
        payloads = {f.replace("\r", "\n") for f in FORMULAS}  # XML reads a stored CR back as LF
        seen = set()
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (key, cell.coordinate, cell.value)
                    if cell.value in payloads:
                        seen.add(cell.value)
                        assert cell.data_type == "s" and cell.quotePrefix, (key, cell.coordinate)
        if key == "combined":
            assert seen == payloads  # every payload kept, as text
    with open(paths["csv"], encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == len(FORMULAS)
    for line in lines:
        for field in ("name", "products", "context"):
            assert line[field].startswith("'"), line[field]
            assert csv_unescape(line[field]) in FORMULAS
        assert line["phone"] == "+8613800000000"  # a plain number is data: tools read it as is


def test_a_written_list_is_never_replaced(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    fill(paths["a"], {3: {"接通情况": "已接通", "备注": "包装破损"}})
    before = {k: p.read_bytes() for k, p in paths.items()}
    # a rerun of the day (same issued list) and one whose data changed meanwhile
    again = write_sheets(issue(entries), config(), tmp_path)
    changed = write_sheets(issue(select_calls([c("C9", 99)], config(), DAY)), config(), tmp_path)
    assert again == paths and changed == paths
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    # a file someone deleted is written again; nothing else is touched
    paths["b"].unlink()
    write_sheets(issue(entries), config(), tmp_path)
    assert paths["b"].exists() and paths["a"].read_bytes() == before["a"]
    # a reissued list is a new version beside the first
    v2 = write_sheets(issue(entries, version=2), config(), tmp_path)
    assert v2["a"].name == "call_list_a.v2.xlsx" and v2["csv"].name == "call_list.v2.csv"
    assert paths["a"].read_bytes() == before["a"]
    assert read_meta(v2["combined"])["version"] == 2 and read_meta(paths["combined"])["version"] == 1


def test_import_reads_list_date_and_agent_from_the_rows_not_the_title_or_the_tab(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20), c("C3", 30)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    wb = load_workbook(paths["combined"])
    ws = wb["王芳"]
    col = columns(ws)
    ws.cell(3, col["接通情况"], "已接通")
    ws.cell(3, col["问题是否解决"], "未解决")
    ws.cell(3, col["生日"], datetime(1990, 5, 1))
    ws.cell(3, col["性别"], "女")
    ws.cell(3, col["拒绝再联系"], "否")
    called = ws.cell(3, col["客户ID"]).value
    ws.title = "Sheet3"           # tab renamed
    ws.delete_rows(1)             # title row deleted
    wb["李敏"].cell(3, columns(wb["李敏"])["接通情况"], "未接通")
    wb.move_sheet("李敏", offset=-1)  # tabs reordered
    wb.save(tmp_path / "edited.xlsx")
    outcomes = {o.customer_id: o for o in parse_outcome_sheets(tmp_path / "edited.xlsx")}
    assert set(outcomes) == {called, wb["李敏"].cell(3, columns(wb["李敏"])["客户ID"]).value}
    o = outcomes[called]
    assert (o.list_date, o.agent, o.reached, o.resolved, o.gender, o.birthday) == (
        DAY, "a", True, False, "F", date(1990, 5, 1))
    assert o.where == "sheet 'Sheet3' row 2"
    # sorting whole rows keeps each row's key with it
    wb = load_workbook(tmp_path / "edited.xlsx")
    ws = wb["Sheet3"]
    values = [[cell.value for cell in row] for row in ws.iter_rows(min_row=2, max_row=ws.max_row)]
    for i, row in enumerate(reversed(values), start=2):
        for j, v in enumerate(row, start=1):
            ws.cell(i, j).value = v
    wb.save(tmp_path / "sorted.xlsx")
    assert {o.customer_id for o in parse_outcome_sheets(tmp_path / "sorted.xlsx")} == set(outcomes)


def test_import_is_whole_workbook_or_nothing_and_says_where(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20), c("C3", 30)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    good = fill(paths["a"], {3: {"接通情况": "已接通"}}, tmp_path / "good.xlsx")
    assert len(parse_outcome_sheets(good)) == 1
    bad = fill(good, {4: {"接通情况": "也许"}}, tmp_path / "bad.xlsx")
    with pytest.raises(OutcomeSheetError, match=r"sheet '王芳' row 4: 接通情况 must be 已接通 / 未接通"):
        parse_outcome_sheets(bad)
    # a visible customer id that no longer matches its row (a column sorted on its own)
    wb = load_workbook(good)
    ws = wb.worksheets[0]
    col = columns(ws)
    ws.cell(3, col["客户ID"], "someone_else")
    wb.save(tmp_path / "shifted.xlsx")
    with pytest.raises(OutcomeSheetError, match="sorted on their own"):
        parse_outcome_sheets(tmp_path / "shifted.xlsx")
    # outcomes typed on a row the list did not have
    added = fill(good, {10: {"接通情况": "已接通", "客户ID": "C1"}}, tmp_path / "added.xlsx")
    with pytest.raises(OutcomeSheetError, match="row 10: outcomes on a row that is not from the list"):
        parse_outcome_sheets(added)


def test_a_sheet_without_its_header_row_is_refused_not_skipped(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20), c("C3", 30)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    wb = load_workbook(paths["combined"])
    wb["王芳"].cell(3, columns(wb["王芳"])["接通情况"], "已接通")
    wb["李敏"].cell(3, columns(wb["李敏"])["接通情况"], "已接通")
    wb["李敏"].delete_rows(1, 2)  # title and header gone on one agent's sheet
    wb.save(tmp_path / "no_header.xlsx")
    with pytest.raises(OutcomeSheetError, match="sheet '李敏': holds 1 call-list row.* no header row"):
        parse_outcome_sheets(tmp_path / "no_header.xlsx")
    from openpyxl import Workbook

    other = Workbook()
    other.active.append(["姓名", "电话"])
    other.save(tmp_path / "other.xlsx")
    with pytest.raises(OutcomeSheetError, match="not a call sheet written by crm"):
        parse_outcome_sheets(tmp_path / "other.xlsx")


def test_unfilled_rows_are_not_outcomes_and_the_csv_imports_too(tmp_path):
    entries = select_calls([c("C1", 10)], config(), DAY)
    paths = write_sheets(issue(entries), config(), tmp_path)
    assert parse_outcome_sheets(paths["a"]) == []
    with open(paths["csv"], encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    head = lines[0]
    lines[1][head.index("reached")] = "已接通"
    lines[1][head.index("opt_out")] = "是"
    with open(tmp_path / "filled.csv", "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(lines)
    (o,) = parse_outcome_sheets(tmp_path / "filled.csv")
    assert (o.customer_id, o.list_date, o.agent, o.reached, o.opt_out) == ("C1", DAY, "a", True, True)


def test_the_about_to_lose_list_is_a_sheet_for_people_and_a_csv_for_tools(tmp_path):
    from crm_pipeline.outreach.lists import write_about_to_lose

    alerts = [{"customer_id": "C1", "name": FORMULAS[0], "phone": "+8613812345678", "last_order": "taobao:s:1",
               "paid_date": "2026-08-13", "net_revenue_cny": 1234.5, "reason": "no purchase for 100 days (R10)"}]
    first = write_about_to_lose(tmp_path, alerts, DAY)
    ws = load_workbook(first).worksheets[0]
    col = columns(ws)
    assert (ws.cell(3, col["手机"]).value, ws.cell(3, col["手机"]).data_type) == ("13812345678", "s")
    assert ws.cell(3, col["未购买天数"]).value == 100 and ws.cell(3, col["提醒原因"]).value == "已 100 天未购买"
    assert ws.cell(3, col["姓名"]).data_type == "s" and ws.auto_filter.ref
    with open(tmp_path / "about_to_lose.csv", encoding="utf-8-sig", newline="") as fh:
        (line,) = csv.DictReader(fh)
    assert line["name"].startswith("'=") and line["phone"] == "+8613812345678"
    # a rerun with the same list keeps the file; another list is a new version beside it
    fill(first, {3: {"姓名": "已联系"}})
    kept = first.read_bytes()
    assert write_about_to_lose(tmp_path, alerts, DAY) == first and first.read_bytes() == kept
    second = write_about_to_lose(tmp_path, alerts + [{**alerts[0], "customer_id": "C2"}], DAY)
    assert second.name == "about_to_lose.v2.xlsx" and first.read_bytes() == kept
