"""Windows, plans and configuration errors of the extraction layer."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.config import load_shops
from crm_pipeline.extract.base import ConfigError, ExtractError, ShopConfig, split_windows
from crm_pipeline.extract.run import plan_range
from crm_pipeline.extract.shopify import parse_link_header

CN = ZoneInfo("Asia/Shanghai")


def test_windows_cover_the_range_exactly_and_respect_the_limit():
    start, end = datetime(2026, 1, 1, tzinfo=CN), datetime(2026, 1, 3, 12, tzinfo=CN)
    windows = split_windows(start, end, timedelta(days=1))
    assert windows[0].start == start and windows[-1].end == end
    assert all(w.end - w.start <= timedelta(days=1) for w in windows)
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))


def test_nightly_plan_starts_at_the_watermark_minus_overlap_and_never_reads_past_the_day():
    shop = ShopConfig("s", "taobao", start_date=date(2024, 6, 1), overlap_hours=24)
    day_end = datetime(2026, 11, 21, tzinfo=CN)
    assert plan_range(shop, "nightly", None, date(2026, 11, 20)) == (datetime(2024, 6, 1, tzinfo=CN), day_end)
    wm = datetime(2026, 11, 20, tzinfo=CN)
    assert plan_range(shop, "nightly", wm, date(2026, 11, 20)) == (wm - timedelta(hours=24), day_end)
    # rerunning an older day after a newer one: re-read that day's overlap, not the future
    later = datetime(2026, 11, 25, tzinfo=CN)
    assert plan_range(shop, "nightly", later, date(2026, 11, 20)) == (day_end - timedelta(hours=24), day_end)
    with pytest.raises(ExtractError, match="from <= --to"):
        plan_range(shop, "backfill", None, start_date=date(2026, 2, 1), end_date=date(2026, 1, 1))


def test_a_shop_west_of_the_schedule_is_read_up_to_now_and_its_day_finished_the_next_night():
    """The nightly for D starts at D+1 02:30 Shanghai: 10:30 of D in Los Angeles. Reading LA's
    whole day would ask for the future and set the watermark there; the next night would then
    start after the hours between the read and the watermark, and lose their orders."""
    shop = ShopConfig("la", "shopify", timezone="America/Los_Angeles", start_date=date(2024, 6, 1), overlap_hours=2)
    la = ZoneInfo("America/Los_Angeles")
    first_night = datetime(2026, 11, 21, 2, 30, tzinfo=CN)
    start, end = plan_range(shop, "nightly", datetime(2026, 11, 20, 2, 30, tzinfo=CN), date(2026, 11, 20),
                            now=first_night)
    assert end == first_night and end < datetime(2026, 11, 21, tzinfo=la)
    second_night = datetime(2026, 11, 22, 2, 30, tzinfo=CN)
    start, end = plan_range(shop, "nightly", first_night, date(2026, 11, 21), now=second_night)
    assert start == first_night - timedelta(hours=2) and end == second_night  # LA's afternoon of the 20th is read
    # a past day rerun is not cut: its day is over
    assert plan_range(shop, "nightly", None, date(2026, 11, 19), now=second_night)[1] == datetime(2026, 11, 20, tzinfo=la)


def test_link_header_parsing_as_the_shopify_sdk_does():
    header = ('<https://s.myshopify.com/admin/api/2025-10/orders.json?limit=250&page_info=abc>; rel="previous", '
              '<https://s.myshopify.com/admin/api/2025-10/orders.json?limit=250&page_info=def>; rel="next"')
    links = parse_link_header(header)
    assert links["next"].endswith("page_info=def") and links["previous"].endswith("page_info=abc")
    assert parse_link_header(None) == {}


def test_shops_file_refuses_literal_secrets_and_unknown_platforms(tmp_path):
    path = tmp_path / "shops.yml"
    path.write_text("shops:\n  - {shop_id: a, platform: taobao, credentials: {app_secret: hunter2}}\n")
    with pytest.raises(ConfigError, match="not a literal"):
        load_shops(path)
    path.write_text("shops:\n  - {shop_id: a, platform: ebay}\n")
    with pytest.raises(ConfigError, match="unknown platform 'ebay'"):
        load_shops(path)


def test_a_missing_credential_names_platform_shop_and_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = tmp_path / "shops.yml"
    path.write_text("shops:\n  - {shop_id: a1, platform: jd, credentials: {app_secret: 'env:NOPE_SECRET'}}\n")
    shop = load_shops(path)[0]
    with pytest.raises(ConfigError) as exc:
        shop.credential("app_secret")
    assert "[jd/a1]" in str(exc.value) and "app_secret" in str(exc.value)


def test_prefetch_keeps_order_and_runs_at_most_depth_ahead():
    import threading

    from crm_pipeline.extract.base import prefetched

    produced: list[int] = []
    gate = threading.Event()

    def pages():
        for i in range(10):
            produced.append(i)
            yield i

    stream = prefetched(pages(), depth=2)
    assert next(stream) == 0
    gate.wait(0.3)  # give the producer time to run ahead as far as it may
    # consumed 1, queue holds 2, the producer may hold one more it cannot put
    assert len(produced) <= 4
    assert list(stream) == list(range(1, 10))


def test_prefetch_raises_the_producers_error_in_the_consumer_after_its_good_pages():
    from crm_pipeline.extract.base import ExtractError, prefetched

    def pages():
        yield 1
        yield 2
        raise ExtractError("taobao", "tmall_flagship", "page 3: gave up")

    got = []
    with pytest.raises(ExtractError, match=r"\[taobao/tmall_flagship\] page 3"):
        for page in prefetched(pages()):
            got.append(page)
    assert got == [1, 2]


def test_prefetch_stops_the_producer_when_the_consumer_stops():
    from crm_pipeline.extract.base import prefetched

    produced: list[int] = []

    def pages():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetched(pages(), depth=2)
    assert next(stream) == 0
    stream.close()  # joins the producer
    n = len(produced)
    assert n < 10
    assert len(produced) == n  # nothing more after close


def _decrypting_connector(workers: int, fail_oaid: str | None = None):
    """A TOP connector whose decrypt call is local: it records how many run at once."""
    import random
    import threading
    import time

    from crm_pipeline.extract.taobao import TaobaoConnector

    shop = ShopConfig("tmall_flagship", "taobao", options={"decrypt_pii": True, "decrypt_parallel": workers})
    conn = TaobaoConnector(shop)
    state = {"now": 0, "peak": 0, "calls": 0}
    lock = threading.Lock()

    def call(method, params, what):
        import json

        assert method == "taobao.top.oaid.decrypt"
        query = json.loads(params["query_list"])
        assert len(query) <= 20  # the API's limit per call (reference §3)
        with lock:
            state["now"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(random.uniform(0.005, 0.03))  # batches finish out of order
        with lock:
            state["now"] -= 1
        if any(q["oaid"] == fail_oaid for q in query):
            raise ExtractError("taobao", "tmall_flagship", "oaid decrypt: gave up after 6 attempts")
        return {"receiver_list": {"receiver": [
            {"oaid": q["oaid"], "tid": q["tid"], "mobile": f"1390000{int(q['tid']):04d}", "name": "n"} for q in query]}}

    conn.call = call
    return conn, state


def test_decrypt_batches_run_in_parallel_and_attach_to_their_own_orders():
    conn, state = _decrypting_connector(workers=3)
    page = [{"tid": i, "oaid": f"o{i}", "receiver_mobile": "139****0000"} for i in range(95)]
    page.append({"tid": 999, "oaid": "plain", "receiver_mobile": "13912345678"})  # not masked: not sent
    out = conn.enrich(page)
    assert state["calls"] == 5 and 2 <= state["peak"] <= 3
    for r in out[:95]:
        assert r["__enrichment__"]["receiver"]["mobile"] == f"1390000{r['tid']:04d}"
    assert "__enrichment__" not in out[95]


def test_a_failed_decrypt_batch_fails_the_page():
    conn, _ = _decrypting_connector(workers=4, fail_oaid="o57")
    page = [{"tid": i, "oaid": f"o{i}", "receiver_mobile": "139****0000"} for i in range(100)]
    with pytest.raises(ExtractError, match=r"\[taobao/tmall_flagship\] oaid decrypt"):
        conn.enrich(page)


def test_in_parallel_keeps_call_order_and_bounds_concurrency():
    import threading
    import time

    from crm_pipeline.extract.base import in_parallel

    running, peak, lock = [0], [0], threading.Lock()

    def job(i):
        def run():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02 * (5 - i % 5))
            with lock:
                running[0] -= 1
            return i
        return run

    assert in_parallel([job(i) for i in range(10)], workers=2) == list(range(10))
    assert peak[0] == 2
    assert in_parallel([job(i) for i in range(3)], workers=1) == [0, 1, 2]


def test_in_parallel_reuses_the_process_pool_and_raises_the_first_error_after_all_ran():
    import threading

    from crm_pipeline.extract.base import POOL_THREADS, in_parallel

    seen = []  # Thread objects stay referenced, so a new thread is never mistaken for an old one
    for _ in range(50):  # a Tmall night: a decrypt fan-out per page (D49)
        in_parallel([lambda: seen.append(threading.current_thread())] * 5, workers=4)
    assert len(seen) == 250 and len({id(t) for t in seen}) <= POOL_THREADS

    ran = []

    def call(i):
        def run():
            ran.append(i)
            if i in (2, 4):
                raise ValueError(f"batch {i}")
            return i
        return run

    with pytest.raises(ValueError, match="batch 2"):
        in_parallel([call(i) for i in range(6)], workers=3)
    assert sorted(ran) == list(range(6)), "every call ran before the error was raised"


def test_months_before_counts_calendar_months_and_clamps_to_the_month_end():
    from crm_pipeline.extract.base import months_before

    assert months_before(date(2026, 11, 21), 3) == date(2026, 8, 21)
    assert months_before(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert months_before(date(2026, 2, 15), 3) == date(2025, 11, 15)


def test_shopify_history_check_trusts_a_declared_scope_and_asks_otherwise():
    from crm_pipeline.extract.shopify import ShopifyConnector

    class NoHttp:
        def get(self, *args, **kwargs):
            raise AssertionError("no call expected")

    now = datetime(2026, 11, 21, tzinfo=CN)
    base = dict(platform="shopify", base_url="https://s.myshopify.com/admin/api/2025-10",
                credentials={"access_token": "literal:x"})
    old, recent = now - timedelta(days=61), now - timedelta(days=59)
    declared_no = ShopifyConnector(ShopConfig("s", options={"read_all_orders": False}, **base), session=NoHttp())
    declared_no.check_history(recent, "nightly", now)  # inside the 60 days: nothing to ask
    with pytest.raises(ExtractError, match="lacks the read_all_orders scope"):
        declared_no.check_history(old, "backfill", now)
    ShopifyConnector(ShopConfig("s", options={"read_all_orders": True}, **base), session=NoHttp()).check_history(
        old, "nightly", now)
    with pytest.raises(AssertionError, match="no call expected"):  # undeclared: the token's scopes are asked for
        ShopifyConnector(ShopConfig("s", **base), session=NoHttp()).check_history(old, "nightly", now)
