"""Shopify Admin REST ``orders.json`` (reference §1).

``status=any`` (the default ``open`` hides closed orders), ``updated_at_min`` /
``updated_at_max`` on the first request only, ``limit=250``, then the
``Link: <...page_info=...>; rel="next"`` cursor exactly as given. 429 waits for
``Retry-After``; the ``X-Shopify-Shop-Api-Call-Limit`` header slows us down
before the bucket is full.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

from crm_pipeline.extract.base import Connector, Retryable, Window

_LINK_RE = re.compile(r'<([^>]+)>;\s*rel="([^"]+)"')
PAGE_LIMIT = 250


def parse_link_header(value: str | None) -> dict[str, str]:
    """``{"next": url, "previous": url}`` from a Link header (as the Shopify SDK parses it)."""
    links: dict[str, str] = {}
    for part in (value or "").split(","):
        match = _LINK_RE.search(part)
        if match:
            links[match.group(2)] = match.group(1)
    return links


class ShopifyConnector(Connector):
    platform = "shopify"
    max_window = timedelta(days=31)
    max_backfill_window = timedelta(days=92)

    @property
    def page_size(self) -> int:
        return int(self.shop.options.get("page_size", PAGE_LIMIT))

    @property
    def _headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.shop.credential("access_token"), "Accept": "application/json"}

    def _filters(self, window: Window) -> dict[str, str]:
        return {
            "status": "any",
            "updated_at_min": window.start.isoformat(),
            "updated_at_max": window.end.isoformat(),
        }

    def _pace(self, response) -> None:
        """Stay under the leaky bucket: slow down when it is 80% full."""
        used, _, size = (response.headers.get("X-Shopify-Shop-Api-Call-Limit") or "").partition("/")
        if used.isdigit() and size.isdigit() and int(used) >= 0.8 * int(size):
            self.sleep(float(self.shop.options.get("leak_interval", 0.5)))

    def fetch(self, window: Window, mode: str = "nightly") -> Iterator[list[dict]]:
        base = self.shop.base_url.rstrip("/")
        url: str | None = f"{base}/orders.json"
        params: dict | None = {**self._filters(window), "limit": self.page_size}
        page = 0
        while url:
            page += 1
            what = f"orders.json page {page} of window {window}"

            def send(url=url, params=params):
                return self.session.get(url, params=params, headers=self._headers, timeout=self.retry.timeout)

            def check(response, what=what):
                body = self.parse_json(response, what)
                if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
                    raise Retryable("response has no 'orders' list")
                return response, body

            response, body = self.request(what, send, check)
            self._pace(response)
            yield body["orders"]
            url = parse_link_header(response.headers.get("Link")).get("next")
            params = None  # page_info URLs must be used exactly as given

    def count(self, window: Window, mode: str = "nightly") -> int | None:
        url = self.shop.base_url.rstrip("/") + "/orders/count.json"
        what = f"orders/count.json for window {window}"

        def send():
            return self.session.get(url, params=self._filters(window), headers=self._headers, timeout=self.retry.timeout)

        def check(response):
            body = self.parse_json(response, what)
            if not isinstance(body, dict) or "count" not in body:
                raise Retryable("count response without 'count'")
            return int(body["count"])

        return self.request(what, send, check)
