"""The sandbox world's partial refunds and failed fulfilments (issue 29), and how each
platform's wire format carries them: what the models read must add up to what the world
gave back."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from crm_pipeline.sandbox import formats
from crm_pipeline.sandbox.world import TZ, World

AS_OF = datetime(2026, 11, 20, 23, 59, 59, tzinfo=TZ)


@pytest.fixture(scope="module")
def world() -> World:
    return World(date(2026, 11, 20), 1500)


def test_a_few_percent_of_delivered_orders_are_refunded_in_part(world):
    delivered = [o for o in world.orders if o.finished and not o.refunded and o.shop.platform not in ("jd", "intake")]
    partial = [o for o in delivered if o.refunds]
    assert 0.02 <= len(partial) / len(delivered) <= 0.07
    for o in partial:
        assert all(r.at > o.finished for r in o.refunds)
        assert 0 < sum(r.amount for r in o.refunds) < o.total, "a partial refund never gives back the whole order"
        assert o.status(AS_OF) != "refunded"
    assert not [o for o in world.orders if o.refunds and o.shop.platform in ("jd", "intake")]


def test_about_one_percent_of_shopify_shipments_fail_first(world):
    shipped = [o for o in world.orders if o.shop.platform == "shopify" and o.shipped]
    failed = [o for o in shipped if o.failed_fulfilment]
    assert failed and len(failed) / len(shipped) <= 0.04
    for o in failed:
        assert o.failed_fulfilment < o.shipped < o.finished
        fulfillments = formats.shopify_order(o, AS_OF)["fulfillments"]
        assert [f["status"] for f in fulfillments] == [o.failed_fulfilment_status, "success"]


def _usd(cny: float) -> Decimal:
    return Decimal(f"{cny * formats.USD_PER_CNY:.2f}")


@pytest.mark.parametrize("platform", ["shopify", "taobao", "woocommerce", "youzan"])
def test_each_wire_format_carries_the_partial_refunds(world, platform):
    orders = [o for o in world.orders if o.shop.platform == platform and o.refunds_as_of(AS_OF)]
    assert orders
    for o in orders:
        refunds = o.refunds_as_of(AS_OF)
        returned = {line for r in refunds for line in r.lines}
        if platform == "shopify":
            d = formats.shopify_order(o, AS_OF)
            assert d["financial_status"] == "partially_refunded"
            money = [Decimal(t["amount"]) for r in d["refunds"] for t in r["transactions"]
                     if t["kind"] == "refund" and t["status"] == "success"]
            assert sum(money) == sum(_usd(r.amount) for r in refunds)
            assert {li["line_item_id"] for r in d["refunds"] for li in r["refund_line_items"]} == returned
        elif platform == "taobao":
            d = formats.taobao_trade(o, AS_OF)
            subs = d["orders"]["order"]
            refunded = [s for s in subs if s["refund_status"] == "SUCCESS"]
            assert sum(Decimal(s["payment"]) for s in refunded) == Decimal(f"{sum(r.amount for r in refunds):.2f}")
            assert len(refunded) == len(returned) < len(subs), "Taobao refunds whole sub-orders, never all of them"
            assert d["status"] != "TRADE_CLOSED"
        elif platform == "woocommerce":
            d = formats.woo_order(o, AS_OF)
            assert all(Decimal(r["total"]) < 0 for r in d["refunds"])
            assert -sum(Decimal(r["total"]) for r in d["refunds"]) == Decimal(f"{sum(r.amount for r in refunds):.2f}")
            assert d["status"] in ("processing", "completed")
        else:
            info = formats.youzan_order(o, AS_OF)["full_order_info"]
            done = [r for r in info["refund_order"] if r["refund_state"] == formats.YOUZAN_REFUND_DONE]
            assert sum(Decimal(r["refunded_fee"]) for r in done) == Decimal(f"{sum(r.amount for r in refunds):.2f}")
            assert info["order_info"]["refund_state"] == formats.YOUZAN_REFUND_PARTIAL
            assert {r["oid"] for r in done} <= {i["oid"] for i in info["orders"]}
