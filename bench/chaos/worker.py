"""Steps the chaos benchmark runs in a child process (so it can be killed mid-way)."""

from __future__ import annotations

import dataclasses
import sys
from datetime import date

DAY = date(2026, 11, 18)
START = date(2026, 9, 1)
SHOPS = ("tmall_flagship", "jd_pop", "shopify_global", "woo_site", "youzan_wx")


def extract_all(url: str) -> None:
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.base import RetryPolicy
    from crm_pipeline.extract.run import connector_for, run_extract

    for shop_id in SHOPS:
        shop = get_shop(shop_id)
        shop = dataclasses.replace(shop, start_date=START, options={**shop.options, "page_size": 10, "timeout": 1})
        connector = connector_for(shop, retry=RetryPolicy(attempts=4, backoff=0.05, timeout=1))
        run_extract(shop, "nightly", DAY, url=url, connector=connector)


def push(url: str) -> None:
    from crm_pipeline.pipeline import push_messages

    push_messages(date(2026, 11, 20), url)


if __name__ == "__main__":
    {"extract": extract_all, "push": push}[sys.argv[1]](sys.argv[2])
