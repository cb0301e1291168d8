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
from datetime import datetime, timedelta

from crm_pipeline.extract.base import Connector, ExtractError, Retryable, Window

_LINK_RE = re.compile(r'<([^>]+)>;\s*rel="([^"]+)"')
PAGE_LIMIT = 250
DEFAULT_ORDER_DAYS = 60  # orders visible without the read_all_orders scope (reference §1)


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

    def check_history(self, start: datetime, mode: str, now: datetime) -> None:
        """Without ``read_all_orders`` Shopify shows only the last 60 days of orders (reference §1).

        Asked only when the run reaches further back (a first run, a backfill, a long
        outage): the nightly run of a shop within the window makes no extra call.
        """
        first = now - timedelta(days=DEFAULT_ORDER_DAYS)
        if start >= first:
            return
        declared = self.shop.options.get("read_all_orders")
        if declared is None:
            scopes = self.access_scopes()
            granted = "read_all_orders" in scopes
        else:
            granted = bool(declared)
        if not granted:
            raise self.fail(
                f"this run reads from {start.date()}, but the access token lacks the read_all_orders scope, so "
                f"Shopify shows only orders of the last {DEFAULT_ORDER_DAYS} days (from {first.date()}): the older "
                "orders would be missing without an error. Grant read_all_orders to the app, or set the shop's "
                f"start_date in shops.yml to {first.date()} or later."
            )

    def access_scopes(self) -> set[str]:
        """``GET /admin/oauth/access_scopes.json``: the scopes the token was granted."""
        root, sep, _ = self.shop.base_url.rstrip("/").partition("/admin/api/")
        if not sep:
            raise self.fail(f"base_url {self.shop.base_url!r} should end in /admin/api/<version>")
        url = f"{root}/admin/oauth/access_scopes.json"
        what = "admin/oauth/access_scopes.json"

        def send():
            return self.session.get(url, headers=self._headers, timeout=self.retry.timeout)

        def check(response):
            body = self.parse_json(response, what)
            if not isinstance(body, dict) or not isinstance(body.get("access_scopes"), list):
                raise Retryable("response has no 'access_scopes' list")
            return {str(s.get("handle")) for s in body["access_scopes"] if isinstance(s, dict)}

        try:
            return self.request(what, send, check)
        except ExtractError as exc:
            raise self.fail(f"{exc.message}; if the app has read_all_orders, say so with "
                            "`read_all_orders: true` in the shop's options (shops.yml)") from exc

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
