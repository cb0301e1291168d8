"""Record inspection: malformed records get a reason (they go to quarantine)."""

from datetime import UTC, datetime

import pytest
from crm_pipeline.load.validate import inspect
from crm_pipeline.sandbox import formats
from crm_pipeline.sandbox.world import TZ, World

NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture(scope="module")
def samples():
    world = World(datetime(2026, 11, 20).date(), 60)
    as_of = datetime(2026, 11, 20, 23, 59, tzinfo=TZ)
    by = {}
    for o in world.orders:
        if o.created < as_of and o.paid and o.paid < as_of:
            by.setdefault(o.shop.platform, o)
    return {
        "taobao": formats.taobao_trade(by["taobao"], as_of),
        "jd": formats.jd_order(by["jd"], as_of),
        "shopify": formats.shopify_order(by["shopify"], as_of),
        "woocommerce": formats.woo_order(by["woocommerce"], as_of),
    }


@pytest.mark.parametrize("platform", ["taobao", "jd", "shopify", "woocommerce"])
def test_a_clean_record_lands_with_its_key_and_version_time(samples, platform):
    result = inspect(platform, samples[platform], NOW)
    assert result.reason is None
    assert result.order_id and result.updated_at is not None


ID_FIELD = {"taobao": ("tid", "tid_str"), "jd": ("orderId",), "shopify": ("id",), "woocommerce": ("id",)}
AMOUNT = {"taobao": "payment", "jd": "orderPayment", "shopify": "total_price", "woocommerce": "total"}
STATUS = {"taobao": "status", "jd": "orderState", "shopify": "financial_status", "woocommerce": "status"}
CREATED = {"taobao": ("created", "0000-00-00 00:00:00"), "jd": ("orderStartTime", "2026-13-40 00:00:00"),
           "shopify": ("created_at", "not a date"), "woocommerce": ("date_created_gmt", "1999-01-01T00:00:00")}


@pytest.mark.parametrize("platform", ["taobao", "jd", "shopify", "woocommerce"])
def test_each_kind_of_malformed_record_is_named(samples, platform):
    def bad(**changes):
        rec = dict(samples[platform])
        for k, v in changes.items():
            if v is None:
                rec.pop(k, None)
            else:
                rec[k] = v
        return inspect(platform, rec, NOW).reason

    assert bad(**{k: None for k in ID_FIELD[platform]}) == "no order id"
    assert bad(**{AMOUNT[platform]: "-10.00"}).startswith("negative amount")
    assert bad(**{AMOUNT[platform]: "99999999"}).startswith("absurd amount")
    assert bad(**{AMOUNT[platform]: "abc"}).startswith("unparseable amount")
    assert bad(**{STATUS[platform]: "SOMETHING_ELSE"}).startswith("unknown status")
    field, value = CREATED[platform]
    assert bad(**{field: value}).startswith("impossible date")


def test_bad_phone_is_malformed_but_a_masked_one_is_not(samples):
    rec = dict(samples["shopify"])
    rec["phone"] = "12345"
    assert inspect("shopify", rec, NOW).reason.startswith("bad phone")
    assert "12345" not in inspect("shopify", rec, NOW).reason  # no PII in reasons
    jd = inspect("jd", samples["jd"], NOW)
    assert jd.reason is None and jd.derived.get("masked_phones") and "phones" not in jd.derived


def test_non_object_records_are_unparseable():
    assert inspect("taobao", "garbage", NOW).reason.startswith("unparseable")
    assert inspect("jd", ["list"], NOW).reason.startswith("unparseable")
