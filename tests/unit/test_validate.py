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


def _youzan_sample() -> dict:
    world = World(datetime(2026, 11, 20).date(), 60)
    as_of = datetime(2026, 11, 20, 23, 59, tzinfo=TZ)
    order = next(o for o in world.orders if o.shop.platform == "youzan" and o.paid and o.paid < as_of)
    return formats.youzan_order(order, as_of)["full_order_info"], order


def test_youzan_record_keeps_its_id_nested_and_its_faults_are_named():
    rec, order = _youzan_sample()
    ok = inspect("youzan", rec, NOW)
    assert ok.reason is None and ok.order_id == order.order_id and ok.updated_at is not None

    def bad(section: str, **changes):
        copy = {**rec, section: {**rec[section], **changes}}
        return inspect("youzan", copy, NOW)

    missing = bad("order_info", tid="")
    assert missing.reason == "no order id"
    assert bad("order_info", status="TRADE_SOMETHING").reason.startswith("unknown status")
    assert bad("order_info", created="2026-13-40 00:00:00").reason.startswith("impossible date")
    assert bad("order_info", update_time="2026-02-30 10:00:00").reason.startswith("impossible date")
    never_updated = bad("order_info", update_time="")  # Youzan sends "" for a time it has not set
    assert never_updated.reason is None
    assert never_updated.updated_at == datetime.fromisoformat(rec["order_info"]["created"]).replace(tzinfo=TZ)
    assert bad("pay_info", payment="-1.00").reason.startswith("negative amount")
    # a quarantined record is named by its nested tid
    assert bad("order_info", status="X").order_id == order.order_id
    assert inspect("youzan", {"full_order_info": rec}, NOW).reason.startswith("unparseable")


def test_youzan_ciphertext_is_not_a_phone_but_its_decrypted_value_is():
    """R3: an encrypted phone (no decrypt permission) neither merges customers nor
    quarantines the order; the decrypted one is normalized; a bad one is quarantined."""
    rec, order = _youzan_sample()
    assert rec["address_info"]["receiver_tel"].startswith("$")
    plain = inspect("youzan", rec, NOW)
    assert plain.reason is None and "phones" not in plain.derived
    decrypted = inspect("youzan", {**rec, "__enrichment__": {"receiver": {"mobile": order.phone}}}, NOW)
    assert decrypted.derived["phones"] == ["+86" + order.phone]
    nonsense = inspect("youzan", {**rec, "__enrichment__": {"receiver": {"mobile": "12345"}}}, NOW)
    assert nonsense.reason.startswith("bad phone") and "12345" not in nonsense.reason
    # a shop whose app receives plain phones: read as sent
    unencrypted = {**rec, "address_info": {**rec["address_info"], "receiver_tel": order.phone}}
    assert inspect("youzan", unencrypted, NOW).derived["phones"] == ["+86" + order.phone]
