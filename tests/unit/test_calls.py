"""Call lists (R7) and reading outcomes back (R8)."""

from datetime import date
from pathlib import Path

import pytest
from crm_pipeline.outreach.calls import (
    CallCandidate,
    CallConfig,
    OutcomeSheetError,
    parse_outcome_sheets,
    select_calls,
    write_sheets,
)
from openpyxl import load_workbook

DAY = date(2026, 11, 21)


def config(capacity_a=3, capacity_b=2, share=0.5):
    return CallConfig(agents=(("a", "Agent A", capacity_a), ("b", "Agent B", capacity_b)), high_value_share=share,
                      lukewarm_phrases=("还行", "一般"))


def c(customer, value, round_no=1, rating=None, review=None):
    return CallCandidate(customer, round_no, f"o:{customer}:{value}", value, rating, review, name=f"n{customer}",
                         phone="+8613800000000")


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


def fill(path: Path, values: dict[int, dict[str, object]]) -> None:
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    headers = [str(cell.value).split(" ")[-1] for cell in ws[2]]
    for row, cols in values.items():
        for key, value in cols.items():
            ws.cell(row=row, column=headers.index(key) + 1, value=value)
    wb.save(path)


def test_sheet_round_trip_and_whole_sheet_rejection(tmp_path):
    entries = select_calls([c("C1", 10), c("C2", 20)], config(), DAY)
    paths = write_sheets(entries, config(), DAY, tmp_path)
    assert {"a", "b", "combined", "csv"} <= set(paths)
    sheet = paths["a"]
    ws = load_workbook(sheet).worksheets[0]
    assert ws.freeze_panes == "C3" and "11:00-16:00" in ws["A1"].value
    assert ws.column_dimensions["B"].width > 10
    fill(sheet, {3: {"reached": "是", "resolved": "否", "birthday": "1990-05-01", "gender": "女", "opt_out": "否",
                     "notes": "包装破损"}})
    outcomes = parse_outcome_sheets(sheet)
    assert len(outcomes) == 1
    o = outcomes[0]
    assert (o.reached, o.resolved, o.gender, o.birthday.isoformat()) == (True, False, "F", "1990-05-01")
    assert o.list_date == DAY
    # one bad value anywhere rejects the whole sheet, with row numbers
    fill(sheet, {3: {"gender": "unknown"}})
    with pytest.raises(OutcomeSheetError, match="row 3: gender"):
        parse_outcome_sheets(sheet)


def test_unfilled_rows_are_not_outcomes(tmp_path):
    entries = select_calls([c("C1", 10)], config(), DAY)
    paths = write_sheets(entries, config(), DAY, tmp_path)
    assert parse_outcome_sheets(paths["a"]) == []
