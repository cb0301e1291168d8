"""WooCommerce REST v3 ``/wp-json/wc/v3/orders`` (reference §2).

``modified_after`` / ``modified_before`` with ``dates_are_gmt=true``,
``per_page=100`` (the WordPress cap), page numbers up to ``X-WP-TotalPages``,
HTTP Basic auth with the consumer key and secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

from crm_pipeline.extract.base import Connector, Retryable, Window

PER_PAGE = 100


def _gmt(dt) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class WooCommerceConnector(Connector):
    platform = "woocommerce"
    max_window = timedelta(days=31)
    max_backfill_window = timedelta(days=92)

    @property
    def page_size(self) -> int:
        return int(self.shop.options.get("page_size", PER_PAGE))

    def _get(self, window: Window, page: int, per_page: int | None = None):
        url = self.shop.base_url.rstrip("/") + "/orders"
        params = {
            "modified_after": _gmt(window.start),
            "modified_before": _gmt(window.end),
            "dates_are_gmt": "true",
            "per_page": per_page or self.page_size,
            "page": page,
            "orderby": "date",
            "order": "desc",
        }
        auth = (self.shop.credential("consumer_key"), self.shop.credential("consumer_secret"))
        what = f"orders page {page} of window {window}"

        def send():
            return self.session.get(url, params=params, auth=auth, timeout=self.retry.timeout)

        def check(response):
            body = self.parse_json(response, what)
            if not isinstance(body, list):
                raise Retryable("orders response is not a JSON list")
            try:
                total = int(response.headers["X-WP-Total"])
                pages = int(response.headers["X-WP-TotalPages"])
            except (KeyError, ValueError):
                raise Retryable("missing X-WP-Total / X-WP-TotalPages headers") from None
            return body, total, pages

        return self.request(what, send, check)

    def fetch(self, window: Window, mode: str = "nightly") -> Iterator[list[dict]]:
        page, pages = 1, 1
        while page <= pages:
            body, _total, pages = self._get(window, page)
            yield body
            page += 1

    def count(self, window: Window, mode: str = "nightly") -> int | None:
        _body, total, _pages = self._get(window, 1, per_page=1)
        return total
