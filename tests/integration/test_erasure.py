"""Erasure on request (issue 31 §3): `crm erase --phone P` on a warehouse that has run a
day (orders of several platforms and a spreadsheet, models, a ledger and a push, call
lists and alerts on disk). Afterwards neither the phone nor the e-mail is found in any
table or in any file under the output and state folders — the embedded warehouse's own
data and WAL files included — order facts are kept, and re-reading the same orders from
the platforms does not bring the person back."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import MODEL_AS_OF, free_port
from helpers import reset, rows

pytestmark = pytest.mark.integration
NOW = "2026-11-21T10:30:00+08:00"


def _files_with(roots: list[Path], needles: list[bytes]) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes().lower()
                except OSError:
                    continue
                found += [f"{path}: {n!r}" for n in needles if n in data]
    return found


def _tables_with(url: str, pattern: str) -> list[str]:
    hits = []
    cols = rows(url, """
        select c.table_schema, c.table_name, c.column_name from information_schema.columns c
        join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
        where t.table_type in ('BASE TABLE', 'VIEW') and c.table_schema not in ('pg_catalog', 'information_schema')
          and c.udt_name in ('text', 'varchar', 'jsonb', 'json', '_text')""")
    for schema, table, column in cols:
        n = rows(url, f'select count(*) from "{schema}"."{table}" where "{column}"::text ~* %s', pattern)[0][0]
        if n:
            hits.append(f"{schema}.{table}.{column}: {n}")
    return hits


@pytest.fixture(scope="module")
def ran_a_day(sandbox, monkeypatch_module):
    """A private embedded warehouse (its files are this test's to search) that ran a day."""
    from crm_pipeline import pipeline
    from crm_pipeline.outreach.triggers import write_alerts  # noqa: F401  (the alerts file is part of the day)
    from crm_pipeline.sandbox.intake_files import write_intake_xlsx
    from crm_pipeline.settings import reload_settings
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres
    from crm_pipeline.warehouse.migrate import migrate

    # outside pytest's own temp root: another pytest session starting on the machine resets that
    # root to 0700, and the embedded server (its own system user when we are root) would lose it
    base = Path(tempfile.mkdtemp(prefix="crm_erase_"))
    home, out = base / "home", base / "out"
    pg = EmbeddedPostgres(home, free_port())
    url = pg.ensure_running()
    migrate(url)
    for key, value in {"CRM_HOME": str(home), "CRM_OUT_DIR": str(out), "CRM_INTAKE_DIR": str(home / "inbox"),
                       "CRM_WAREHOUSE_URL": url, "CRM_NOW": NOW}.items():
        monkeypatch_module.setenv(key, value)
    reload_settings()
    reset(sandbox, messages=True)
    for shop_id in pipeline.api_shop_ids():
        pipeline.extract_shop(shop_id, MODEL_AS_OF, url=url)
    sheet = home / "inbox" / "wechat_social" / "orders.xlsx"
    sheet.parent.mkdir(parents=True)
    write_intake_xlsx(sandbox.state.world, "wechat_social", MODEL_AS_OF, sheet)
    pipeline.intake_shop("wechat_social", MODEL_AS_OF, url=url)
    pipeline.transform(MODEL_AS_OF, url=url)
    pipeline.plan_outreach(MODEL_AS_OF, url)
    pipeline.call_list(MODEL_AS_OF, url)
    pipeline.push_messages(MODEL_AS_OF, url)
    # a person with a phone and an e-mail, several orders, and messages in the ledger
    customer, phone, email, address = rows(url, """
        select c.customer_id, c.phone_e164, c.email, c.address from marts.dim_customers c
        where c.phone_e164 is not null and c.email is not null and c.paid_orders >= 2 and length(c.address) > 12
          and exists (select 1 from outreach.message_ledger l where l.customer_id = c.customer_id)
          and (select count(distinct platform) from marts.fct_orders o where o.customer_id = c.customer_id) >= 2
        order by c.paid_orders desc, c.customer_id limit 1""")[0]
    # before the request: an agent heard them say stop, and one message still waits for its time
    rows(url, "insert into outreach.optouts (channel, customer_id, source, reason)"
              " values ('all', %s, 'call_outcome', 'told agent') returning 1", customer)
    rows(url, "update outreach.message_ledger set status = 'pending', send_after = send_after + interval '3 days',"
              " expires_at = expires_at + interval '3 days' where idempotency_key = (select min(idempotency_key)"
              " from outreach.message_ledger where customer_id = %s) returning 1", customer)
    yield {"url": url, "home": home, "out": out, "customer": customer, "phone": phone, "email": email,
           "address": address, "pg": pg}
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)


def _needles(phone: str, email: str, address: str | None = None) -> list[bytes]:
    return [phone[3:].encode(), email.lower().encode()] + ([address.encode()] if address else [])


def test_erase_leaves_neither_phone_nor_email_in_any_table_or_file(ran_a_day, sandbox):
    from crm_pipeline.cli import main

    url, phone, email, address = ran_a_day["url"], ran_a_day["phone"], ran_a_day["email"], ran_a_day["address"]
    roots = [ran_a_day["home"], ran_a_day["out"]]
    pattern = "|".join(re.escape(v) for v in (phone[3:], email, address))
    orders_before = rows(url, "select order_key, amount_cny from marts.fct_orders where customer_id = %s order by 1",
                         ran_a_day["customer"])
    waiting = rows(url, "select idempotency_key from outreach.message_ledger where customer_id = %s"
                        " and status = 'pending'", ran_a_day["customer"])
    assert waiting
    assert _files_with(roots, _needles(phone, email, address)), "the search finds the person before the erasure"
    assert _tables_with(url, pattern)

    assert main(["erase", "--phone", phone, "--reason", "customer request (test)"]) == 0

    assert _tables_with(url, pattern) == []
    assert _files_with(roots, _needles(phone, email, address)) == []
    # what waited for them is not sent to an erased address
    assert rows(url, "select status from outreach.message_ledger where idempotency_key = %s", waiting[0][0]) == \
        [("cancelled",)]
    # their inbox sheet, rewritten without them, is not a new sheet to import
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import pending_intake_files
    from crm_pipeline.settings import get_settings

    assert pending_intake_files(get_shop("wechat_social"), get_settings().intake_dir, url) == []
    # the shop's accounts keep the orders (amounts, dates, items), not the person
    kept = rows(url, "select count(*), sum(amount_cny) from marts.fct_orders where order_key = any(%s)",
                [k for k, _ in orders_before])[0]
    assert kept == (len(orders_before), sum(a for _, a in orders_before))
    assert rows(url, "select count(*) from ops.erasures")[0][0] == 1
    # idempotent, whichever way they are named again
    tables = {t: rows(url, f"select md5(string_agg(x::text, '|' order by x::text)) from {t} x")[0][0]
              for t in ("raw.taobao_trades", "marts.fct_orders", "outreach.optouts", "ops.erasures")}
    assert main(["erase", "--phone", phone]) == 0
    assert main(["erase", "--customer", ran_a_day["customer"]]) == 0
    assert {t: rows(url, f"select md5(string_agg(x::text, '|' order by x::text)) from {t} x")[0][0]
            for t in tables} == tables


def test_re_reading_the_same_orders_does_not_bring_the_person_back(ran_a_day, sandbox):
    from crm_pipeline import pipeline

    url, phone, email = ran_a_day["url"], ran_a_day["phone"], ran_a_day["email"]
    erased = rows(url, "select platform, shop_id, order_id from ops.erased_orders")
    assert erased, "run after the erasure"
    first = min(r[0] for r in rows(url, "select paid_date from marts.fct_orders where (platform, shop_id, order_id)"
                                        " in (select platform, shop_id, order_id from ops.erased_orders)"
                                        " and paid_date is not null"))
    shops = sorted({(p, s) for p, s, _ in erased if p != "intake"})
    for platform, shop_id in shops:
        start = max(first, MODEL_AS_OF - timedelta(days=85)) if platform == "taobao" else first
        pipeline.extract_shop(shop_id, MODEL_AS_OF, mode="backfill", start=start, end=MODEL_AS_OF, url=url)
        pipeline.extract_shop(shop_id, MODEL_AS_OF, url=url)
    pipeline.transform(MODEL_AS_OF, url=url)
    pattern = "|".join(re.escape(v) for v in (phone[3:], email))
    assert _tables_with(url, pattern) == []
    assert rows(url, "select count(*) from marts.customer_identities where identifier_value in (%s, %s)",
                phone, email)[0][0] == 0



def test_an_erased_person_who_buys_again_is_still_opted_out(ran_a_day, sandbox):
    """Erased is not "message me again": their opt-out (told to an agent, by customer id) is
    kept as a hash of their contacts, and meets them under the new id a new order gives."""
    import csv

    from crm_pipeline import pipeline
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import run_intake
    from crm_pipeline.outreach.ledger import load_optouts
    from crm_pipeline.warehouse import connect

    url, phone = ran_a_day["url"], ran_a_day["phone"]
    assert rows(url, "select count(*) from ops.erasures")[0][0] == 1, "run after the erasure"
    sheet = ran_a_day["home"] / "new_order.csv"
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["订单号", "昵称", "手机", "实付金额", "付款时间", "状态"],
                                  ["NEW-1", "回头客", phone[3:], "199", "2026-11-20 15:00:00", "paid"]])
    run_intake(sheet, get_shop("wechat_social"), url=url)
    pipeline.transform(MODEL_AS_OF, url=url)
    back = rows(url, "select customer_id from marts.fct_orders where order_key = 'intake:wechat_social:NEW-1'")[0][0]
    with connect(url) as conn:
        blocked = {o.customer_id for o in load_optouts(conn) if o.channel == "all"}
    assert back in blocked
