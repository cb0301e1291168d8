"""`crm quarantine`: what was quarantined, what is still open, and an export to fix the source.

Records go through the real Lander into a real warehouse; an order is resolved only
when a later batch lands a valid version of it.
"""

from __future__ import annotations

import csv

import pytest
from helpers import rows

pytestmark = pytest.mark.integration

GOOD = {"id": 1, "financial_status": "paid", "updated_at": "2026-11-01T10:00:00+08:00",
        "created_at": "2026-11-01T09:00:00+08:00", "total_price": "10.00"}
PHONE = "13912345678"


def land(url, batch, records, unparseable=None):
    import psycopg
    from crm_pipeline.load.landing import Lander

    with psycopg.connect(url) as conn:
        lander = Lander(conn, "shopify", "shopify_global", batch)
        lander.stage(records, 1)
        if unparseable:
            lander.stage_unparseable(unparseable, 1, "JSONDecodeError: Expecting value")
        counts = lander.finalize()
        conn.commit()
    return counts


@pytest.fixture()
def quarantined_world(make_database, monkeypatch):
    from crm_pipeline.settings import reload_settings

    url = make_database("quarantine")
    # night 1: order 2 has a phone typed into its amount, order 3 an unknown status, one page is not JSON
    land(url, "b1", [GOOD, {**GOOD, "id": 2, "total_price": f"{PHONE}元"},
                     {**GOOD, "id": 3, "financial_status": "haunted"}, {**GOOD, "id": 5}], unparseable='{"orders": [{"id": 4,')
    # night 2: order 2 comes again, fixed; order 3 comes again, still broken (one row: same payload);
    # order 5, landed on night 1, comes with a broken update: its earlier version does not close it
    later = "2026-11-02T10:00:00+08:00"
    land(url, "b2", [{**GOOD, "id": 2, "total_price": "12.00", "updated_at": later},
                     {**GOOD, "id": 3, "financial_status": "haunted"},
                     {**GOOD, "id": 5, "financial_status": "haunted", "updated_at": later}])
    monkeypatch.setenv("CRM_WAREHOUSE_URL", url)
    reload_settings()
    yield url
    monkeypatch.undo()
    reload_settings()


def test_summary_groups_by_kind_and_knows_what_landed_since(quarantined_world):
    from crm_pipeline.load.quarantine import summarize
    from crm_pipeline.warehouse import connect

    assert rows(quarantined_world, "select count(*) from raw.quarantine")[0][0] == 4
    with connect(quarantined_world) as conn:
        got = {(g.shop_id, g.kind): (g.records, g.open) for g in summarize(conn)}
    assert got == {
        ("shopify_global", "unparseable amount in total_price"): (1, 0),  # landed fixed in b2
        ("shopify_global", "unknown status"): (2, 2),
        ("shopify_global", "unparseable"): (1, 1),  # no order id: only a person can close it
    }


def test_list_prints_kinds_and_counts_without_the_values(quarantined_world, capsys):
    from crm_pipeline import cli

    assert cli.main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out
    assert "unparseable amount in total_price" in out and "unknown status" in out
    assert PHONE not in out and "haunted" not in out
    assert "3 of 4 quarantined record(s) open" in out
    assert cli.main(["quarantine", "list", "--open"]) == 0
    out = capsys.readouterr().out
    assert "unparseable amount" not in out and "3 of 3" in out
    assert cli.main(["quarantine", "list", "--shop", "jd_pop"]) == 0
    assert "nothing quarantined" in capsys.readouterr().out
    assert cli.main(["quarantine", "list", "--since", "2999-01-01"]) == 0
    assert "nothing quarantined" in capsys.readouterr().out
    assert cli.main(["quarantine", "list", "--since", "2000-01-01", "--shop", "shopify_global"]) == 0
    assert "3 of 4" in capsys.readouterr().out


def test_export_writes_full_reasons_payloads_and_status(quarantined_world, tmp_path, capsys):
    from crm_pipeline import cli

    target = tmp_path / "q.csv"
    assert cli.main(["quarantine", "export", str(target)]) == 0
    assert "wrote 4 quarantined record(s)" in capsys.readouterr().out
    with open(target, encoding="utf-8-sig", newline="") as fh:
        exported = {r["record_ref"]: r for r in csv.DictReader(fh)}
    assert set(exported) == {"2", "3", "5", ""}
    assert exported["2"]["status"] == "resolved" and exported["2"]["resolved_by_batch"] == "b2"
    assert PHONE in exported["2"]["reason"] and PHONE in exported["2"]["payload"]  # for fixing the source
    assert exported["3"]["status"] == "open" and exported["3"]["kind"] == "unknown status"
    assert exported[""]["payload"] == '{"orders": [{"id": 4,' and exported[""]["status"] == "open"
    assert not list(tmp_path.glob("*.partial"))

    assert cli.main(["quarantine", "export", str(target), "--open"]) == 0
    with open(target, encoding="utf-8-sig", newline="") as fh:
        assert sorted(r["record_ref"] for r in csv.DictReader(fh)) == ["", "3", "5"]
    assert cli.main(["quarantine", "export"]) == 2


def test_a_failed_export_leaves_the_previous_file_and_no_partial_one(quarantined_world, tmp_path, monkeypatch):
    from crm_pipeline.load import quarantine
    from crm_pipeline.warehouse import connect

    target = tmp_path / "q.csv"
    target.write_text("yesterday's export\n", encoding="utf-8")
    seen = []

    def breaks_on_the_third(reason):
        seen.append(reason)
        if len(seen) == 3:
            raise RuntimeError("disk full")
        return "kind"

    monkeypatch.setattr(quarantine, "reason_kind", breaks_on_the_third)
    with connect(quarantined_world) as conn, pytest.raises(RuntimeError, match="disk full"):
        quarantine.export(conn, target)
    assert target.read_text(encoding="utf-8") == "yesterday's export\n"
    assert list(tmp_path.iterdir()) == [target]


def test_a_shop_whose_last_run_was_mostly_quarantined_stops_the_run(make_database):
    """A platform that changed its status list sends most of a night to quarantine: the
    raw_landing checkpoint fails (nothing is modelled or sent, D44); an earlier bad run
    superseded by a healthy one does not; a smaller share is a warning."""
    import psycopg
    from crm_pipeline.quality.runner import QualityError, run_checkpoint

    url = make_database("qshare")

    def batch(batch_id, shop_id, received, quarantined, minutes):
        with psycopg.connect(url) as conn:
            conn.execute("insert into ops.load_batches (batch_id, platform, shop_id, mode, status, started_at,"
                         " received, landed, quarantined) values (%s, 'taobao', %s, 'nightly', 'succeeded',"
                         " timestamptz '2026-11-20 02:00+08' + make_interval(mins => %s), %s, %s, %s)",
                         (batch_id, shop_id, minutes, received, received - quarantined, quarantined))

    batch("b1", "tmall_flagship", 400, 390, 0)
    batch("b2", "taobao_outlet", 19, 19, 0)  # too few records to judge
    with pytest.raises(QualityError, match="raw_quarantine_share") as failed:
        run_checkpoint("raw_landing", url=url, record=False)
    assert "over 50%" in str(failed.value) and "crm quarantine list" in str(failed.value)
    assert "taobao/tmall_flagship" in str(failed.value) and "taobao_outlet" not in str(failed.value)

    batch("b3", "tmall_flagship", 400, 30, 60)  # the next run: 7.5% quarantined
    result = run_checkpoint("raw_landing", url=url, record=False)
    assert not result.critical
    assert [f["suite"] for f in result.warnings if f["suite"] == "raw_quarantine_share"] == ["raw_quarantine_share"]

    batch("b4", "tmall_flagship", 400, 2, 120)
    result = run_checkpoint("raw_landing", url=url, record=False)
    assert not result.critical and not [f for f in result.warnings if f["suite"] == "raw_quarantine_share"]
