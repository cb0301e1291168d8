"""Connectors against the sandbox platforms, landing into a real PostgreSQL.

Ground truth is the sandbox's own world: every order the platform would report
for the window must end either in the raw table or in raw.quarantine.
Every injected fault ends either in exactly the rows a fault-free run lands, or
in a clear ExtractError naming platform and shop with nothing landed.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime, timedelta

import pytest
from helpers import fault, faults_fired, reset, rows, shop, table_digest

pytestmark = pytest.mark.integration

AS_OF = date(2026, 11, 18)
START = date(2026, 5, 1)
API_SHOPS = {"tmall_flagship": "taobao_trades", "jd_pop": "jd_orders", "shopify_global": "shopify_orders",
             "woo_site": "woocommerce_orders", "youzan_wx": "youzan_orders"}


def small_shop(shop_id: str, page_size: int = 3, **options):
    s = shop(shop_id)
    return dataclasses.replace(s, start_date=START, options={**s.options, "page_size": page_size, "timeout": 1,
                                                             **options})


def extract(shop_cfg, url, sleeps=None, **kwargs):
    from crm_pipeline.extract.base import RetryPolicy
    from crm_pipeline.extract.run import connector_for, run_extract

    sleeps = [] if sleeps is None else sleeps
    connector = connector_for(shop_cfg, sleep=sleeps.append, retry=RetryPolicy(attempts=4, backoff=0.01, timeout=1))
    return run_extract(shop_cfg, "nightly", AS_OF, url=url, connector=connector, **kwargs)


def expected_ids(sandbox, shop_cfg) -> set[str]:
    """Order ids the platform reports for [start of START, end of AS_OF] (sandbox world)."""
    from crm_pipeline.extract.base import local_day_bounds
    from crm_pipeline.sandbox import formats

    world = sandbox.state.world
    start = local_day_bounds(START, shop_cfg.tz)[0]
    end = local_day_bounds(AS_OF, shop_cfg.tz)[1]
    orders = world.modified_between(shop_cfg.shop_id, start, end)
    if shop_cfg.platform == "jd":
        orders = [o for o in orders if formats.jd_visible(o, end)]
    return {o.order_id for o in orders}


def landed_ids(url, table) -> set[str]:
    return {r[0] for r in rows(url, f"select order_id from raw.{table}")}


def quarantined(url, shop_id) -> list[tuple[str, str]]:
    return rows(url, "select record_ref, reason from raw.quarantine where shop_id = %s order by 1, 2", shop_id)


@pytest.fixture(scope="module")
def baselines(sandbox, make_database):
    """One fault-free run per shop: database url and table digest."""
    reset(sandbox, throttle=False)
    out = {}
    for shop_id, table in API_SHOPS.items():
        url = make_database("base")
        result = extract(small_shop(shop_id), url)
        out[shop_id] = (url, table_digest(url, f"raw.{table}", "order_id", exclude=("batch_id", "loaded_at")),
                        result)
    return out


@pytest.mark.parametrize("shop_id", sorted(API_SHOPS))
def test_fault_free_run_lands_every_order_the_platform_reports(shop_id, sandbox, baselines):
    url, _digest, result = baselines[shop_id]
    table = API_SHOPS[shop_id]
    want = expected_ids(sandbox, small_shop(shop_id))
    landed = landed_ids(url, table)
    quarantine_refs = {ref for ref, _ in quarantined(url, shop_id)}
    assert want, "the window must hold orders for this test to mean anything"
    assert result.pages > 2, "small page size: several pages per run"
    assert landed | quarantine_refs == want
    assert not landed & quarantine_refs
    # the run's own bookkeeping balances (received = landed + quarantined)
    batch = rows(url, "select status, received, landed, quarantined from ops.load_batches where batch_id = %s",
                 result.batch_id)[0]
    assert batch[0] == "succeeded" and batch[1] == batch[2] + batch[3]
    assert batch[2] >= len(landed)  # records, one order may come in several daily windows
    # the watermark moved to the end of the business day
    wm = rows(url, "select watermark from ops.watermarks where shop_id = %s", shop_id)[0][0]
    assert wm.astimezone(small_shop(shop_id).tz).date() == AS_OF + timedelta(days=1)


DIRTY_KEY = {"shopify": 7, "woocommerce": 11, "jd": 13, "taobao": 17, "youzan": 19}  # sandbox/server.py Handler._dirty


def test_dirty_records_are_quarantined_with_a_reason(sandbox, baselines):
    """Bad phone (Shopify; Youzan's once decrypted), negative total (Woo), impossible date (JD),
    unknown status (TOP)."""
    total = 0
    for shop_id in API_SHOPS:
        s = small_shop(shop_id)
        url = baselines[shop_id][0]
        dirty = {o.order_id for o in sandbox.state.world.by_shop[shop_id]
                 if o.seq % 499 == DIRTY_KEY[s.platform] and o.order_id in expected_ids(sandbox, s)}
        got = quarantined(url, shop_id)
        assert {ref for ref, _ in got} == dirty, shop_id
        assert all(reason.strip() for _, reason in got)
        total += len(dirty)
    assert total > 0, "the window holds dirty records on at least one platform"


ONE_SHOT = ["throttle", "server_error", "timeout", "truncated", "duplicate"]


@pytest.mark.parametrize("kind", ONE_SHOT)
@pytest.mark.parametrize("shop_id", sorted(API_SHOPS))
def test_one_shot_fault_lands_exactly_the_fault_free_rows(shop_id, kind, sandbox, baselines, make_database):
    reset(sandbox, throttle=False)
    platform = small_shop(shop_id).platform
    params = {"delay": 2} if kind == "timeout" else {"ban_seconds": 3} if kind == "throttle" else {}
    fault(sandbox, target=platform, kind=kind, times=1, after=2, shop=shop_id, params=params)
    url = make_database("fault")
    sleeps: list[float] = []
    result = extract(small_shop(shop_id), url, sleeps=sleeps)
    fired = faults_fired(sandbox)
    reset(sandbox, throttle=False)
    assert fired == {kind: 1}, "the fault took effect (else this test proves nothing)"
    _base_url, digest, base_result = baselines[shop_id]
    assert table_digest(url, f"raw.{API_SHOPS[shop_id]}", "order_id", exclude=("batch_id", "loaded_at")) == digest
    if kind == "duplicate":
        assert result.counts.duplicates == base_result.counts.duplicates + 1, "the repeat was seen and set aside"
    if kind in ("throttle", "server_error", "timeout", "truncated"):
        assert sleeps, "a transient fault is retried after a wait"
    if kind == "throttle" and platform == "taobao":
        assert 3.0 in sleeps, "TOP error code 7: wait as long as sub_msg says"


@pytest.mark.parametrize("kind", ["server_error", "timeout", "truncated"])
@pytest.mark.parametrize("shop_id", ["tmall_flagship", "shopify_global"])
def test_persistent_fault_fails_clearly_and_lands_nothing(shop_id, kind, sandbox, make_database):
    from crm_pipeline.extract.base import ExtractError

    reset(sandbox, throttle=False)
    platform = small_shop(shop_id).platform
    # let a few pages through first: the failure happens mid-run
    fault(sandbox, target=platform, kind=kind, times=-1, after=3, shop=shop_id,
          params={"delay": 1.5} if kind == "timeout" else {})
    url = make_database("persist")
    try:
        with pytest.raises(ExtractError) as err:
            extract(small_shop(shop_id), url)
    finally:
        reset(sandbox, throttle=False)
    assert platform in str(err.value) and shop_id in str(err.value)
    assert rows(url, f"select count(*) from raw.{API_SHOPS[shop_id]}")[0][0] == 0
    assert rows(url, f"select count(*) from raw.{API_SHOPS[shop_id]}_versions")[0][0] == 0
    assert rows(url, "select count(*) from raw.quarantine")[0][0] == 0
    assert rows(url, "select count(*) from ops.watermarks")[0][0] == 0
    status, error = rows(url, "select status, error from ops.load_batches")[0]
    assert status == "failed" and error


def test_record_without_an_id_is_quarantined_not_dropped(sandbox, baselines, make_database):
    reset(sandbox, throttle=False)
    # on the first page: a later request may be the window's count call, whose body is not landed
    fault(sandbox, target="woocommerce", kind="malformed", times=1, after=0, shop="woo_site",
          params={"variant": "missing_id"})
    url = make_database("malformed")
    result = extract(small_shop("woo_site"), url)
    reset(sandbox, throttle=False)
    base_url, digest, base_result = baselines["woo_site"]
    assert table_digest(url, "raw.woocommerce_orders", "order_id", exclude=("batch_id", "loaded_at")) == digest
    extra = set(quarantined(url, "woo_site")) - set(quarantined(base_url, "woo_site"))
    assert len(extra) == 1 and "id" in next(iter(extra))[1].lower()
    assert result.counts.received == base_result.counts.received + 1


@pytest.mark.parametrize(("shop_id", "secret", "named"), [
    ("tmall_flagship", "app_secret", "ignature"),  # TOP: Invalid Signature
    ("youzan_wx", "client_secret", "client_secret"),  # Youzan: the token is refused
])
def test_wrong_secret_is_rejected_naming_the_shop(shop_id, secret, named, sandbox, make_database):
    from crm_pipeline.extract.base import ExtractError

    reset(sandbox, throttle=False)
    s = small_shop(shop_id)
    bad = dataclasses.replace(s, credentials={**s.credentials, secret: "not-the-secret"})
    url = make_database("badsecret")
    with pytest.raises(ExtractError, match=shop_id) as err:
        extract(bad, url)
    assert named in str(err.value)
    assert rows(url, f"select count(*) from raw.{API_SHOPS[shop_id]}")[0][0] == 0


def test_missing_credential_names_platform_and_shop(monkeypatch, make_database):
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.base import ExtractError

    monkeypatch.delenv("CRM_SECRET_JD_POP_ACCESS_TOKEN", raising=False)
    s = get_shop("jd_pop")
    with pytest.raises(ExtractError) as err:
        extract(dataclasses.replace(s, start_date=START), make_database("nocred"))
    assert "jd" in str(err.value) and "jd_pop" in str(err.value) and "access_token" in str(err.value)


def test_unreachable_api_fails_naming_platform_and_shop(make_database):
    from crm_pipeline.extract.base import ExtractError

    s = dataclasses.replace(small_shop("shopify_global"), base_url="http://127.0.0.1:9/admin/api/2025-10")
    with pytest.raises(ExtractError, match="shopify.*shopify_global|shopify_global") as err:
        extract(s, make_database("unreach"))
    assert "connect" in str(err.value)


def test_rerun_with_overlap_adds_no_versions(sandbox, baselines):
    """The next night re-reads the overlap window: unchanged orders add no version."""
    reset(sandbox, throttle=False)
    url, digest, _ = baselines["tmall_flagship"]
    before = rows(url, "select count(*) from raw.taobao_trades_versions")[0][0]
    result = extract(small_shop("tmall_flagship"), url)
    assert result.counts.received > 0, "the overlap window is re-read"
    assert result.counts.new_versions == 0
    assert rows(url, "select count(*) from raw.taobao_trades_versions")[0][0] == before
    assert table_digest(url, "raw.taobao_trades", "order_id", exclude=("batch_id", "loaded_at")) == digest


def test_status_history_keeps_every_version(sandbox, make_database):
    """Two nights: orders that changed status in between have two versions (paid -> shipped ...)."""
    from crm_pipeline.extract.base import RetryPolicy
    from crm_pipeline.extract.run import connector_for, run_extract

    reset(sandbox, throttle=False)
    url = make_database("history")
    s = small_shop("tmall_flagship", page_size=40)
    for day in (date(2026, 11, 10), date(2026, 11, 16)):
        run_extract(s, "nightly", day, url=url,
                    connector=connector_for(s, sleep=lambda _s: None, retry=RetryPolicy(attempts=3, timeout=2)))
    multi = rows(url, "select order_id, count(*) from raw.taobao_trades_versions group by 1 having count(*) > 1")
    assert multi, "orders that moved on between the two nights keep both versions"
    oid = multi[0][0]
    statuses = [r[0] for r in rows(url, "select payload->>'status' from raw.taobao_trades_versions"
                                        " where order_id = %s order by source_updated_at", oid)]
    current = rows(url, "select payload->>'status' from raw.taobao_trades where order_id = %s", oid)[0][0]
    assert len(set(statuses)) > 1
    assert current == statuses[-1]


def test_a_los_angeles_shop_read_at_0230_shanghai_loses_no_order_of_its_afternoon(sandbox, make_database):
    """At 02:30 Shanghai the nightly's day is still running in Los Angeles (10:30). The run reads
    up to now, not to LA's midnight in the future; the watermark stays at now, the shop counts as
    current for the night (read past Shanghai's midnight), and the next night reads the afternoon
    the first one could not."""
    from zoneinfo import ZoneInfo

    import psycopg
    from crm_pipeline.extract.base import RetryPolicy, local_day_bounds
    from crm_pipeline.extract.freshness import shop_freshness
    from crm_pipeline.extract.run import connector_for, run_extract

    reset(sandbox, throttle=False)
    url = make_database("los_angeles")
    s = dataclasses.replace(small_shop("shopify_global", page_size=50), timezone="America/Los_Angeles")
    cn, world = ZoneInfo("Asia/Shanghai"), sandbox.state.world
    first = local_day_bounds(START, s.tz)[0]
    nights = [(date(2026, 11, 22), datetime(2026, 11, 23, 2, 30, tzinfo=cn)),
              (date(2026, 11, 23), datetime(2026, 11, 24, 2, 30, tzinfo=cn))]
    for day, now in nights:
        run_extract(s, "nightly", day, url=url, now=now,
                    connector=connector_for(s, sleep=lambda _s: None, retry=RetryPolicy(attempts=3, timeout=2)))
        assert rows(url, "select watermark from ops.watermarks where shop_id = 'shopify_global'")[0][0] == now
        expected = {o.order_id for o in world.modified_between(s.shop_id, first, now)}
        assert landed_ids(url, "shopify_orders") == expected
        with psycopg.connect(url) as conn:
            assert not shop_freshness(conn, day, shops=[s], inbox=None)[0].stale
            assert shop_freshness(conn, day + timedelta(days=1), shops=[s], inbox=None)[0].stale  # not yet read
    afternoon = world.modified_between(s.shop_id, nights[0][1], local_day_bounds(nights[0][0], s.tz)[1])
    assert afternoon, "LA's afternoon of the first night's day has orders (read by the second night)"


@pytest.mark.parametrize(("shop_id", "created_sql"), [
    ("tmall_flagship", "select (payload->>'created')::timestamp from raw.taobao_trades"),
    ("youzan_wx", "select (payload->'order_info'->>'created')::timestamp from raw.youzan_orders"),
])
def test_backfill_reads_created_range_and_keeps_watermark(shop_id, created_sql, sandbox, make_database, monkeypatch):
    from crm_pipeline.extract.base import RetryPolicy, local_day_bounds
    from crm_pipeline.extract.run import connector_for, run_extract

    monkeypatch.setenv("CRM_NOW", "2026-11-21T09:00:00+08:00")  # the range is within TOP's 3 months
    reset(sandbox, throttle=False)
    url = make_database("backfill")
    s = small_shop(shop_id, page_size=40)
    result = run_extract(s, "backfill", start_date=date(2026, 9, 1), end_date=date(2026, 9, 10), url=url,
                         connector=connector_for(s, sleep=lambda _s: None, retry=RetryPolicy(attempts=3)))
    created = [r[0] for r in rows(url, created_sql)]
    assert result.counts.landed > 0
    assert all(datetime(2026, 9, 1) <= c < datetime(2026, 9, 11) for c in created)
    # every order created in the range, whenever it was last modified (landed or quarantined)
    start, end = local_day_bounds(date(2026, 9, 1), s.tz)[0], local_day_bounds(date(2026, 9, 10), s.tz)[1]
    assert len(created) + len(quarantined(url, shop_id)) == len(sandbox.state.world.created_between(shop_id, start, end))
    assert rows(url, "select count(*) from ops.watermarks")[0][0] == 0


def test_a_backfill_older_than_the_platform_keeps_fails_before_reading(sandbox, make_database, monkeypatch):
    """taobao.trades.sold.get serves the last 3 months only (reference §3): a backfill
    reaching further fails with what to do, is recorded as failed, and lands nothing."""
    from crm_pipeline.extract.base import ExtractError, RetryPolicy
    from crm_pipeline.extract.run import connector_for, run_extract

    monkeypatch.setenv("CRM_NOW", "2026-11-21T09:00:00+08:00")
    reset(sandbox, throttle=False)
    url = make_database("old_backfill")
    s = small_shop("tmall_flagship", page_size=40)
    connector = connector_for(s, sleep=lambda _s: None, retry=RetryPolicy(attempts=2))
    with pytest.raises(ExtractError, match=r"last 3 months \(from 2026-08-21\).*starts 2026-08-20") as err:
        run_extract(s, "backfill", start_date=date(2026, 8, 20), end_date=date(2026, 9, 10), url=url,
                    connector=connector)
    assert "[taobao/tmall_flagship]" in str(err.value)
    assert connector.requests_made == 0
    assert rows(url, "select count(*) from raw.taobao_trades_versions")[0][0] == 0
    assert rows(url, "select status, error like '%%3 months%%' from ops.load_batches") == [("failed", True)]
    # the sandbox refuses it too, as TOP does: the client's check is not the only guard
    from crm_pipeline.extract.base import local_day_bounds, split_windows

    start, end = local_day_bounds(date(2026, 8, 1), s.tz)
    with pytest.raises(ExtractError, match="isv.invalid-parameter:start_created"):
        list(connector.fetch(split_windows(start, end, timedelta(days=1))[0], "backfill"))


def test_shopify_without_read_all_orders_refuses_a_run_older_than_60_days(sandbox, make_database, monkeypatch):
    """Without read_all_orders Shopify silently shows only the last 60 days (reference §1):
    a run reaching further back fails and says what to grant; within 60 days it reads."""
    from crm_pipeline.extract.base import ExtractError

    monkeypatch.setenv("CRM_NOW", "2026-11-21T00:00:00+08:00")  # the sandbox world's end: one clock for both
    reset(sandbox, throttle=False, shopify_scopes={"shopify_global": ["read_orders"]})
    try:
        url = make_database("scopes")
        s = small_shop("shopify_global")
        with pytest.raises(ExtractError, match=r"lacks the read_all_orders scope.*from 2026-09-22"):
            extract(s, url)
        assert rows(url, "select count(*) from raw.shopify_orders_versions")[0][0] == 0
        assert rows(url, "select status from ops.load_batches") == [("failed",)]
        # what the check protects against: the platform itself answers with fewer orders, no error
        declared = dataclasses.replace(s, options={**s.options, "read_all_orders": True})
        partial = extract(declared, make_database("scopes_declared"))
        assert 0 < partial.counts.received < len(expected_ids(sandbox, s))
        # a run that starts inside the 60 days needs no scope and reads as before
        recent = dataclasses.replace(s, start_date=AS_OF - timedelta(days=20))
        assert extract(recent, make_database("scopes_recent")).counts.received > 0
    finally:
        reset(sandbox, throttle=False)


def test_order_updated_while_paging_is_not_lost(make_database, tmp_path):
    """An order modified mid-read shifts offset pages; the count check re-reads the window."""
    from crm_pipeline.sandbox.server import SandboxServer

    # its own world (a different size): this fault mutates the world it runs in
    server = SandboxServer(port=0, anchor=date(2026, 11, 20), persons=157, log_dir=tmp_path, throttle=False).start()
    try:
        # taobao: hundreds of one-day windows read ahead across window boundaries
        # WooCommerce lists newest first: an older order pulled into the window sorts after
        # the pages served, so nothing can be skipped (nothing to re-read); it must still land
        for n, (shop_id, platform, table, shifts) in enumerate((
                ("woo_site", "woocommerce", "woocommerce_orders", False), ("jd_pop", "jd", "jd_orders", True),
                ("youzan_wx", "youzan", "youzan_orders", True), ("tmall_flagship", "taobao", "taobao_trades", True)),
                start=1):
            s = small_shop(shop_id, page_size=3)
            s = dataclasses.replace(s, base_url=s.base_url.replace(_sandbox_root(s.base_url), server.url))
            # right after the first page: an update after the window's count call is a late
            # update (the next night's overlap reads it), not one made while paging
            fault(server, target=platform, kind="update_while_paging", times=1, after=0, shop=shop_id)
            url = make_database("uwp")
            result = extract(s, url)
            want = expected_ids(server, s)
            got = landed_ids(url, table) | {ref for ref, _ in quarantined(url, shop_id)}
            assert got == want, f"{shop_id}: lost {sorted(want - got)[:5]}"
            assert result.passes_retried >= 1 or not shifts, f"{shop_id}: the shifted window was not read again"
            assert faults_fired(server) == {"update_while_paging": n}, f"{shop_id}: the update was made"
    finally:
        server.stop()


def _sandbox_root(base_url: str) -> str:
    from urllib.parse import urlsplit

    p = urlsplit(base_url)
    return f"{p.scheme}://{p.netloc}"


def test_text_with_a_nul_character_is_quarantined_not_a_failed_run(make_database):
    """jsonb cannot store U+0000; one such record must not fail the whole run."""
    import psycopg
    from crm_pipeline.load.landing import Lander

    good = {"id": 1, "financial_status": "paid", "updated_at": "2026-11-01T10:00:00+08:00",
            "created_at": "2026-11-01T09:00:00+08:00", "total_price": "10.00", "note": "ok"}
    bad = {**good, "id": 2, "note": "gift\u0000wrap"}
    url = make_database("nul")
    with psycopg.connect(url) as conn:
        lander = Lander(conn, "shopify", "shopify_global", "b-nul")
        assert lander.stage([good, bad], 1) == (1, 1)
        counts = lander.finalize()
        conn.commit()
    assert (counts.received, counts.landed, counts.quarantined) == (2, 1, 1)
    assert rows(url, "select order_id from raw.shopify_orders") == [("1",)]
    ref, reason = quarantined(url, "shopify_global")[0]
    assert ref == "2" and "NUL" in reason


def test_crm_intake_says_which_rows_were_quarantined_and_why(make_database, monkeypatch, tmp_path, capsys):
    """An ops person importing a sheet sees each rejected row (file, sheet, row, reason)
    on the terminal, with a phone in the wrong column masked, and every row accounted for."""
    from crm_pipeline import cli
    from crm_pipeline.settings import reload_settings
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "11月"
    ws.append(["姓名", "手机", "金额", "日期"])
    ws.append(["张三", "13812345678", 10, "2026-11-01"])
    ws.append(["李四", "13912345678", "13912345678元x", "2026-11-02"])  # phone typed into the amount
    ws.append(["王五", "12345", 10, "2026-11-03"])  # not a phone: rejected after reading
    wb.save(tmp_path / "o.xlsx")
    url = make_database("intake_cli")
    monkeypatch.setenv("CRM_WAREHOUSE_URL", url)
    reload_settings()
    try:
        assert cli.main(["intake", str(tmp_path / "o.xlsx"), "--shop", "wechat_social"]) == 0
    finally:
        monkeypatch.undo()
        reload_settings()
    out = capsys.readouterr().out
    assert "received=3 landed=1" in out and "2 row(s) quarantined" in out
    assert "o.xlsx row 3: unparseable amount" in out and "13912345678" not in out
    assert "bad phone" in out and "order IN-" in out
    assert rows(url, "select count(*) from raw.quarantine")[0][0] == 2


def test_youzan_token_that_expires_mid_run_is_renewed(sandbox, baselines, make_database):
    """Youzan answers a dead token with gateway error 4202: a new token, the call again."""
    from crm_pipeline.extract.base import RetryPolicy
    from crm_pipeline.extract.run import connector_for, run_extract

    reset(sandbox, throttle=False)
    fault(sandbox, target="youzan", kind="token_expired", times=1, after=3, shop="youzan_wx")
    s = small_shop("youzan_wx")
    connector = connector_for(s, sleep=lambda _s: None, retry=RetryPolicy(attempts=4, backoff=0.01, timeout=1))
    url = make_database("yz_token")
    run_extract(s, "nightly", AS_OF, url=url, connector=connector)
    fired = faults_fired(sandbox)
    reset(sandbox, throttle=False)
    assert fired == {"token_expired": 1}
    assert connector.tokens_fetched == 2
    assert table_digest(url, "raw.youzan_orders", "order_id", exclude=("batch_id", "loaded_at")) == \
        baselines["youzan_wx"][1]


def test_youzan_without_decryption_lands_every_order_and_no_ciphertext_as_contact(sandbox, baselines,
                                                                                 make_database):
    """A shop without Youzan's decryption permission: every order lands, known by
    yz_open_id; an encrypted phone is no phone (and its nonsense plain value cannot
    be seen, so nothing is quarantined for it)."""
    reset(sandbox, throttle=False)
    s = small_shop("youzan_wx", decrypt_pii=False)
    url = make_database("yz_plain")
    extract(s, url)
    assert landed_ids(url, "youzan_orders") == expected_ids(sandbox, s)
    assert quarantined(url, "youzan_wx") == []
    assert rows(url, "select count(*) from raw.youzan_orders where derived ? 'phones' or derived ? 'enrichment'"
                )[0][0] == 0
    with_decryption = baselines["youzan_wx"][0]
    assert rows(with_decryption, "select count(*) from raw.youzan_orders where derived ? 'phones'")[0][0] > 0



def test_crm_shops_status_and_check(sandbox, baselines, monkeypatch, capsys):
    """`crm shops status` judges each shop by how far it was read (D45) and exits 1 while
    any is behind; `crm shops check` reads each shop's last hour with its credentials,
    lands nothing, and names a shop whose token was rejected or whose API keeps failing."""
    from crm_pipeline import cli
    from crm_pipeline.settings import reload_settings

    url = baselines["jd_pop"][0]  # only JD has been read, up to the end of AS_OF
    monkeypatch.setenv("CRM_WAREHOUSE_URL", url)
    monkeypatch.setenv("CRM_NOW", "2026-11-18T12:00:00+08:00")
    reload_settings()
    try:
        assert cli.main(["shops", "status", "--date", AS_OF.isoformat()]) == 1
        out = capsys.readouterr().out
        status = {line.split()[0]: line.split() for line in out.splitlines()[1:] if not line.startswith("not current")}
        assert status["jd_pop"][2:5] == ["yes", "2026-11-19", "00:00"], status["jd_pop"]
        assert status["tmall_flagship"][2:4] == ["NO", "never"]
        assert "not current for 2026-11-18: taobao/tmall_flagship: never read" in out
        assert "not current for 2026-11-18: jd/" not in out
        assert cli.main(["shops", "status", "--date", "2026-11-17"]) == 1  # the others still never read

        reset(sandbox, throttle=False)
        landed = rows(url, "select count(*) from raw.jd_orders")
        assert cli.main(["shops", "check"]) == 0
        assert "FAILED" not in capsys.readouterr().out
        assert rows(url, "select count(*) from raw.jd_orders") == landed  # nothing landed

        token = os.environ["CRM_SECRET_JD_POP_ACCESS_TOKEN"]
        monkeypatch.setenv("CRM_SECRET_JD_POP_ACCESS_TOKEN", "renewed-but-not-saved")
        fault(sandbox, target="shopify", kind="server_error", times=-1, shop="shopify_global")
        assert cli.main(["shops", "check", "--shop", "jd_pop", "--shop", "shopify_global", "--shop", "woo_site"]) == 1
        captured = capsys.readouterr()
        checked = {line.split()[0]: line for line in captured.out.splitlines()[1:]}
        assert "FAILED" in checked["jd_pop"] and "access_token" in checked["jd_pop"]
        assert "renewed-but-not-saved" not in captured.out + captured.err
        assert "FAILED" in checked["shopify_global"] and "gave up after 2 attempts" in checked["shopify_global"]
        assert " ok " in checked["woo_site"]
        assert "2 shop(s) cannot be read now: jd_pop, shopify_global" in captured.err
        assert cli.main(["shops", "check", "--shop", "no_such_shop"]) == 2

        # a Shopify shop never read, whose token lacks read_all_orders: its first night would
        # fail (it reads from start_date, past Shopify's 60 days); the check says so now.
        # JD, read up to AS_OF, is asked nothing more (its next night starts a day back)
        reset(sandbox, throttle=False, shopify_scopes={"shopify_global": ["read_orders"]})
        monkeypatch.setenv("CRM_SECRET_JD_POP_ACCESS_TOKEN", token)
        assert cli.main(["shops", "check", "--shop", "shopify_global", "--shop", "jd_pop"]) == 1
        checked = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
        assert "FAILED" in checked["shopify_global"] and "lacks the read_all_orders scope" in checked["shopify_global"]
        assert " ok " in checked["jd_pop"] and "the next night reads from 2026-11-18 00:00" in checked["jd_pop"]
    finally:
        reset(sandbox, throttle=False)
        monkeypatch.undo()
        reload_settings()
