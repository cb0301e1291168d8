"""Every `crm` subcommand's failure modes end with the exit code the README promises:
0 ok, 1 a pipeline step failed, 2 usage or configuration, 3 data quality, 4 a bad
input file (nothing of it applied), and a message that says what and where.

One row per failure mode; a new subcommand is one more row (a test fails while a
subcommand has none). The command runs in-process (`cli.main`) against a real,
migrated warehouse.
"""

from __future__ import annotations

import pytest
from crm_pipeline import cli
from helpers import rows
from hostile import not_a_zip, zip_bomb, zip_without_workbook

USAGE, QUALITY, REJECTED = cli.EXIT_USAGE, cli.EXIT_QUALITY, cli.EXIT_REJECTED
D = "2026-11-20"

# (subcommand, argv, exit code, text the message must contain); {name} is a file from `files`
CASES = [
    ("demo", ["demo", "--date", "2026-13-01"], USAGE, "not a date"),
    ("run", ["run"], USAGE, "--date"),
    ("extract", ["extract", "no_such_shop", "--date", D], USAGE, "unknown shop 'no_such_shop'"),
    ("extract", ["extract", "wechat_social", "--date", D], USAGE, "crm intake"),
    ("backfill", ["backfill", "taobao", "--shop", "tmall_flagship", "--from", "2026-09-30", "--to", "2026-09-01"],
     USAGE, "--from 2026-09-30 is after --to 2026-09-01"),
    ("backfill", ["backfill", "jd", "--shop", "tmall_flagship", "--from", "2026-09-01", "--to", "2026-09-02"],
     USAGE, "is a taobao shop, not jd"),
    ("backfill", ["backfill", "taobao", "--shop", "nope", "--from", "2026-09-01", "--to", "2026-09-02"],
     USAGE, "unknown shop"),
    ("intake", ["intake", "{missing}", "--shop", "wechat_social"], USAGE, "no such file"),
    ("intake", ["intake", "{orders_csv}", "--shop", "wechat_social", "--map", "客户=nobody"], USAGE, "--map"),
    ("intake", ["intake", "{orders_csv}", "--shop", "tmall_flagship"], USAGE, "not a spreadsheet (intake) shop"),
    ("intake", ["intake", "{orders_csv}", "--shop", "no_such_shop"], USAGE, "unknown shop"),
    ("intake", ["intake", "{empty_csv}", "--shop", "wechat_social"], REJECTED, "empty"),
    ("intake", ["intake", "{empty_xlsx}", "--shop", "wechat_social"], REJECTED, "not an .xlsx workbook"),
    ("intake", ["intake", "{xls_renamed}", "--shop", "wechat_social"], REJECTED, "not an .xlsx workbook"),
    ("intake", ["intake", "{zip_not_workbook}", "--shop", "wechat_social"], REJECTED, "not an Excel workbook"),
    ("intake", ["intake", "{bomb}", "--shop", "wechat_social"], REJECTED, "refused without unpacking"),
    ("intake", ["intake", "{no_amount}", "--shop", "wechat_social"], REJECTED, "amount (e.g. 金额"),
    ("intake", ["intake", "{rounded_ids}", "--shop", "wechat_social"], QUALITY, "next run stops at the raw_landing"),
    ("transform", ["transform"], USAGE, "--date"),
    ("clv", ["clv"], USAGE, "--date"),
    ("clv", ["clv", "--date", "2026-02-30"], USAGE, "not a date"),
    ("quality", ["quality", "no_such_checkpoint", "--date", D], USAGE, "no checkpoint 'no_such_checkpoint'"),
    ("identity", ["identity", "link", "taobao:tmall_flagship:b1"], USAGE, "two node keys"),
    ("identity", ["identity", "split"], USAGE, "needs a node key"),
    ("identity", ["identity", "merge", "a", "b"], USAGE, "invalid choice"),
    ("identity", ["identity", "undo", "x"], USAGE, "needs a rule id"),
    ("identity", ["identity", "undo", "999999"], USAGE, "no identity rule 999999"),
    ("erase", ["erase"], USAGE, "give --phone, --email or --customer"),
    ("erase", ["erase", "--phone", "12345"], USAGE, "not a valid phone"),
    ("erase", ["erase", "--email", "not-an-address"], USAGE, "not a valid e-mail"),
    ("erase", ["erase", "--phone", "+8613900000000"], USAGE, "nobody in the warehouse"),
    ("quarantine", ["quarantine", "export"], USAGE, "needs a file"),
    ("quarantine", ["quarantine", "list", "--since", "yesterday"], USAGE, "not a date"),
    ("shops", ["shops", "check", "--shop", "no_such_shop"], USAGE, "no such shop"),
    ("shops", ["shops", "status", "--date", "2026-11-31"], USAGE, "not a date"),
    ("optout", ["optout", "add"], USAGE, "give --customer, --phone or --email"),
    ("optout", ["optout", "add", "--phone", "12345"], USAGE, "not a valid phone"),
    ("optout", ["optout", "add", "--email", "not-an-address"], USAGE, "not a valid e-mail"),
    ("optout-import", ["optout-import", "{missing}"], USAGE, "no such file"),
    ("optout-import", ["optout-import", "{xls_renamed}"], REJECTED, "not a text CSV"),
    ("calls", ["calls", "import"], USAGE, "calls import needs a file"),
    ("calls", ["calls", "import", "{missing}"], USAGE, "no such file"),
    ("calls", ["calls", "import", "{xls_renamed}"], REJECTED, "cannot open as .xlsx"),
    ("calls", ["calls", "import", "{headerless_sheet}"], REJECTED, "no header row"),
    ("calls", ["calls", "import", "{orders_csv}"], REJECTED, "not the call-list CSV header"),
    ("calls", ["calls", "list", "{orders_csv}"], USAGE, "takes no file"),
    ("campaign", ["campaign", "plan", "no_such_campaign", "--date", D], USAGE, "no campaign 'no_such_campaign'"),
    ("push", ["push", "--date", "tomorrow"], USAGE, "not a date"),
    ("report", ["report"], USAGE, "--date"),
    ("summary", ["summary", "--date", "x"], USAGE, "not a date"),
    ("warehouse", ["warehouse", "explode"], USAGE, "invalid choice"),
    ("sandbox", ["sandbox", "explode"], USAGE, "invalid choice"),
    ("airflow", ["airflow-ui", "--port", "eighty"], USAGE, "invalid int value"),  # `crm airflow` passes airflow's own
    ("airflow-ui", ["airflow-ui", "--port", "70000"], USAGE, "port"),
    ("dbt", ["dbt", "--date", D], USAGE, "name the dbt command"),
    ("dbt", ["dbt", "--", "build"], USAGE, "--date"),
    ("dbt-parse", ["dbt-parse", "extra"], USAGE, "unrecognized arguments"),
    ("env-example", ["env-example", "extra"], USAGE, "unrecognized arguments"),
    ("setup-roles", ["setup-roles", "--superuser"], USAGE, "unrecognized arguments"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from crm_pipeline.outreach.calls import CallConfig, IssuedList, write_sheets
    from openpyxl import load_workbook

    d = tmp_path_factory.mktemp("cli_files")
    out = {"missing": str(d / "missing.xlsx")}
    (d / "orders.csv").write_text("姓名,手机,金额,日期\n张三,13812345678,10,2026-11-01\n", encoding="utf-8")
    out["orders_csv"] = str(d / "orders.csv")
    (d / "empty.csv").write_bytes(b"")
    out["empty_csv"] = str(d / "empty.csv")
    (d / "empty.xlsx").write_bytes(b"")
    out["empty_xlsx"] = str(d / "empty.xlsx")
    out["xls_renamed"] = str(not_a_zip(d / "old.xlsx"))
    out["zip_not_workbook"] = str(zip_without_workbook(d / "zip.xlsx"))
    out["bomb"] = str(zip_bomb(d / "bomb.xlsx"))
    (d / "no_amount.csv").write_text("客户姓名,客户电话,日期\n张三,13812345678,2026-11-01\n", encoding="utf-8")
    out["no_amount"] = str(d / "no_amount.csv")
    # order numbers Excel rounded (stored as numbers): every row quarantined
    (d / "rounded.csv").write_text("订单编号,姓名,手机,金额,日期\n" + "".join(
        f"4.01234567890123E+18,张三{i},138123456{i:02d},10,2026-11-01\n" for i in range(25)), encoding="utf-8")
    out["rounded_ids"] = str(d / "rounded.csv")
    # a call sheet whose title and header rows were deleted
    row = {"agent": "a", "agent_rank": 1, "rank": 1, "customer_id": "C1", "call_round": 1, "round": "首次回访",
           "name": "张三", "phone": "+8613812345678", "reason_key": "all_fit", "reason": "例行回访", "script": "",
           "shop_id": "s", "shop_name": "店", "platform": "淘宝/天猫", "order_key": "taobao:s:1", "order_number": "1",
           "paid_date": "2026-11-06", "order_value": 10.0, "products": "面霜", "segment": "新客户", "tier": "—",
           "context": ""}
    from datetime import date

    paths = write_sheets(IssuedList(date(2026, 11, 21), 1, [row]), CallConfig(agents=(("a", "A", 5),)), d / "calls")
    wb = load_workbook(paths["a"])
    ws = wb.worksheets[0]
    ws.cell(3, 17, "已接通")
    ws.delete_rows(1, 2)
    wb.save(d / "headerless.xlsx")
    out["headerless_sheet"] = str(d / "headerless.xlsx")
    return out


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(("command", "argv", "code", "says"), CASES,
                         ids=[f"{c[0]}:{' '.join(c[1][1:])[:40]}" for c in CASES])
def test_failure_mode_exit_code_and_message(command, argv, code, says, files, warehouse, capsys):
    argv = [a.format(**files) for a in argv]
    got, text = run(argv, capsys)
    assert got == code, text[-2000:]
    assert says in text, text[-2000:]
    assert "Traceback" not in text


def test_every_subcommand_has_its_failure_modes_in_the_table():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    covered = {c[0] for c in CASES}
    assert set(commands) - covered == set(), "add a row for each new subcommand's failure modes"


def test_a_bomb_lands_nothing(files, warehouse, capsys):
    """The refusal happens before anything is unpacked, and no order of the file lands."""
    code, text = run(["intake", files["bomb"], "--shop", "wechat_social"], capsys)
    assert code == REJECTED and "150 MB" in text and "CRM_INTAKE_MAX_MB" in text
    assert rows(warehouse, "select count(*) from raw.intake_orders")[0][0] == 0
    assert rows(warehouse, "select count(*) from raw.quarantine where batch_id in"
                           " (select batch_id from ops.load_batches where source = %s)", files["bomb"])[0][0] == 0
    failed = rows(warehouse, "select status, error from ops.load_batches where source = %s", files["bomb"])
    assert failed and all(s == "failed" and "refused" in e for s, e in failed)


def test_missing_field_errors_name_the_field_and_the_headers_found(files, warehouse, capsys):
    code, text = run(["intake", files["no_amount"], "--shop", "wechat_social"], capsys)
    assert code == REJECTED
    assert "names amount" in text and "['客户姓名', '客户电话', '日期']" in text
    # the same file with the column mapped lands (客户姓名 and 客户电话 are known headers)
    csv = files["no_amount"].replace("no_amount", "mapped")
    with open(csv, "w", encoding="utf-8") as fh:
        fh.write("客户姓名,客户电话,日期,实收\n张三,13812345678,2026-11-01,19.9\n")
    code, text = run(["intake", csv, "--shop", "wechat_social", "--map", "实收=amount"], capsys)
    assert code == 0, text
    assert rows(warehouse, "select payload->>'name', payload->>'amount' from raw.intake_orders") == [("张三", "19.9")]
