"""Record the HTTP exchanges of a connector run, and replay them offline.

Fixtures in tests/fixtures/recorded/<shop_id>.json hold every response (status,
headers, body) in request order plus the order ids the run produced. Re-record
with `python tests/recorded.py [SHOP_ID ...]` (starts its own sandbox; default: all).
The sandbox's world changes when its shops do, so record only the shops you add
or change: the others' recordings stay valid as they are."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.structures import CaseInsensitiveDict

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "recorded"
TZ = ZoneInfo("Asia/Shanghai")
WINDOW = (datetime(2026, 10, 25, tzinfo=TZ), datetime(2026, 11, 12, tzinfo=TZ))
SHOPS = ("tmall_flagship", "jd_pop", "shopify_global", "woo_site", "youzan_wx")
KEEP_HEADERS = ("Link", "X-WP-Total", "X-WP-TotalPages", "X-Shopify-Shop-Api-Call-Limit", "Retry-After",
                "Content-Type")


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[dict] = []

    def request(self, method, url, *args, **kwargs):  # noqa: D401 - requests API
        response = super().request(method, url, *args, **kwargs)
        self.exchanges.append({
            "method": method.upper(), "path": urlsplit(url).path, "status": response.status_code,
            "headers": {k: v for k, v in response.headers.items() if k in KEEP_HEADERS},
            "body_b64": base64.b64encode(response.content).decode(),
        })
        return response


class ReplaySession:
    """Serves recorded responses in order; a request for another path is an error."""

    def __init__(self, exchanges: list[dict], base_url: str) -> None:
        self.exchanges = list(exchanges)
        self.base = urlsplit(base_url)

    def _serve(self, method: str, url: str, **_kwargs):
        if not self.exchanges:
            raise AssertionError(f"unexpected extra request {method} {url}")
        ex = self.exchanges.pop(0)
        path = urlsplit(url).path
        assert (ex["method"], ex["path"]) == (method, path), f"recorded {ex['method']} {ex['path']}, got {method} {path}"
        r = requests.Response()
        r.status_code = ex["status"]
        r.headers = CaseInsensitiveDict(ex["headers"])
        r._content = base64.b64decode(ex["body_b64"])
        r.encoding = "utf-8"
        r.url = url
        return r

    def get(self, url, **kwargs):
        return self._serve("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self._serve("POST", url, **kwargs)


def shop_for(shop_id: str, base: str | None = None):
    from crm_pipeline.config import get_shop

    shop = get_shop(shop_id)
    options = {**shop.options, "page_size": 4}
    return dataclasses.replace(shop, options=options,
                               base_url=shop.base_url if base is None else base + urlsplit(shop.base_url).path)


def run_pages(connector) -> list[list[dict]]:
    from crm_pipeline.extract.base import Window

    pages = []
    for window in connector.windows(*WINDOW):
        for page in connector.fetch(window):
            pages.append(page)
        connector.count(Window(window.start, window.end))
    return pages


def order_ids(platform: str, pages: list[list[dict]]) -> list[str]:
    """Order ids of records fit to land (what the landing's inspector accepts)."""
    from crm_pipeline.load.validate import inspect

    now = datetime(2026, 11, 21, tzinfo=TZ)
    return sorted({i.order_id for p in pages for r in p if (i := inspect(platform, r, now)).reason is None})


def record(shop_ids: list[str]) -> None:
    from datetime import date

    from crm_pipeline.config import load_env_defaults
    from crm_pipeline.extract.run import connector_for
    from crm_pipeline.sandbox.server import SandboxServer
    from crm_pipeline.settings import reload_settings

    root = Path(__file__).resolve().parents[1]
    load_env_defaults(root / "config" / "sandbox.env")
    reload_settings()
    server = SandboxServer(port=0, anchor=date(2026, 11, 20), persons=600, throttle=False).start()
    try:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for shop_id in shop_ids or SHOPS:
            shop = shop_for(shop_id, server.url)
            session = RecordingSession()
            connector = connector_for(shop, session=session)
            pages = run_pages(connector)
            ids = order_ids(shop.platform, pages)
            (FIXTURES / f"{shop_id}.json").write_text(json.dumps(
                {"shop_id": shop_id, "window": [w.isoformat() for w in WINDOW], "order_ids": ids,
                 "exchanges": session.exchanges}, indent=1, ensure_ascii=False))
            print(f"{shop_id}: {len(session.exchanges)} exchanges, {len(ids)} orders")
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(record(sys.argv[1:]))
