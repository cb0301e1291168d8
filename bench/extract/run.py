"""bench/extract: parse and land orders per second per process, sandbox throttling off.

Reads every API shop's full history (Taobao/Tmall TOP, JD, Shopify, WooCommerce, Youzan)
from a sandbox running in its own process into a fresh warehouse database, and
reports orders landed per wall-clock second of this process, the client-side
CPU seconds per 10k orders (parse + land, without the sandbox's rendering), and
peak memory for a small and a 4x larger world (flat = independent of pages).

Env: BENCH_EXTRACT_PERSONS (default 12000). Prints `extract_orders_per_s=N` last.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import fresh_database, peak_rss_mb, reset_peak_rss, sandbox_process  # noqa: E402

AS_OF = date(2026, 11, 20)
PAGE = {"taobao": 100, "jd": 100, "shopify": 250, "woocommerce": 100, "youzan": 100}


def machine_busy_seconds() -> float:
    """CPU seconds every core of this machine spent busy (sandbox and PostgreSQL included)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_world(persons: int) -> tuple[int, float, float, float, int, float]:
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.run import connector_for, run_extract
    from crm_pipeline.pipeline import api_shop_ids

    with sandbox_process(persons):
        url = fresh_database("crm_bench_extract")
        reset_peak_rss()
        rss0 = peak_rss_mb()
        orders = pages = 0
        wall0, cpu0, busy0 = time.perf_counter(), time.process_time(), machine_busy_seconds()
        for shop_id in api_shop_ids():
            shop = get_shop(shop_id)
            shop = dataclasses.replace(shop, options={**shop.options, "page_size": PAGE[shop.platform]})
            result = run_extract(shop, "nightly", AS_OF, url=url, connector=connector_for(shop),
                                 verify_counts=False)
            orders += result.counts.received
            pages += result.pages
            print(f"  {result.summary()}", flush=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return orders, wall, cpu, peak_rss_mb() - rss0, pages, machine_busy_seconds() - busy0


def main() -> int:
    persons = int(os.environ.get("BENCH_EXTRACT_PERSONS", "12000"))
    small = run_world(max(500, persons // 4))
    big = run_world(persons)
    for label, (orders, wall, cpu, rss, pages, busy) in (("small", small), ("large", big)):
        print(f"{label}: {orders} orders, {pages} pages in {wall:.1f}s wall, {cpu:.1f}s CPU here; "
              f"{orders / wall:,.0f} orders/s; {cpu / orders * 10000:.2f} CPU-s per 10k orders; "
              f"peak memory growth {rss:.1f} MB; machine busy {busy:.1f} of {wall * (os.cpu_count() or 1):.1f} "
              f"core-seconds (this process + sandbox + PostgreSQL)")
    orders, wall, cpu, _, pages, _ = big
    print(f"client_cpu_orders_per_s={orders / cpu:.0f}")
    print(f"memory_growth_ratio_large_over_small={(big[3] + 1) / (small[3] + 1):.2f}")
    print(f"extract_orders_per_s={orders / wall:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
