"""Each connector against recorded wire exchanges (tests/fixtures/recorded/, made by
tests/recorded.py): paging, throttling headers and parsing work offline, request
for request, and yield exactly the recorded orders."""

from __future__ import annotations

import json

import pytest
from recorded import FIXTURES, SHOPS, ReplaySession, order_ids, run_pages, shop_for


@pytest.mark.parametrize("shop_id", SHOPS)
def test_connector_replays_its_recording(shop_id):
    from crm_pipeline.extract.run import connector_for

    fixture = json.loads((FIXTURES / f"{shop_id}.json").read_text(encoding="utf-8"))
    shop = shop_for(shop_id)
    session = ReplaySession(fixture["exchanges"], shop.base_url)
    connector = connector_for(shop, session=session, sleep=lambda _s: None)
    pages = run_pages(connector)
    assert session.exchanges == [], "the connector made fewer requests than recorded"
    assert order_ids(shop.platform, pages) == fixture["order_ids"]
    assert len(pages) >= 2, "the recording spans several pages"


def test_a_truncated_recorded_body_is_retried_not_parsed():
    """The same recording with its first body cut in half: the connector asks again
    (a retry the recording cannot answer) instead of landing a partial page."""
    import base64

    from crm_pipeline.extract.base import RetryPolicy
    from crm_pipeline.extract.run import connector_for

    fixture = json.loads((FIXTURES / "shopify_global.json").read_text(encoding="utf-8"))
    body = base64.b64decode(fixture["exchanges"][0]["body_b64"])
    fixture["exchanges"][0]["body_b64"] = base64.b64encode(body[: len(body) // 2]).decode()
    shop = shop_for("shopify_global")
    connector = connector_for(shop, session=ReplaySession(fixture["exchanges"][:1], shop.base_url),
                              sleep=lambda _s: None, retry=RetryPolicy(attempts=2))
    with pytest.raises(AssertionError, match="unexpected extra request"):
        run_pages(connector)
