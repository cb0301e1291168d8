"""Record inspection: malformed records get a reason (they go to quarantine)."""

from datetime import UTC, datetime, timedelta

import pytest
from crm_pipeline.load.quarantine import reason_kind
from crm_pipeline.load.validate import StartDateRule, inspect
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
           "shopify": ("created_at", "not a date"), "woocommerce": ("date_created_gmt", "2999-01-01T00:00:00")}


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


OLD = {"taobao": ("created", "1997-01-01 10:00:00"), "jd": ("orderStartTime", "1997-01-01 10:00:00"),
       "shopify": ("created_at", "1997-01-01T10:00:00+08:00"), "woocommerce": ("date_created_gmt", "1997-01-01T02:00:00")}


@pytest.mark.parametrize("platform", ["taobao", "jd", "shopify", "woocommerce"])
def test_old_orders_land_and_future_ones_are_impossible(samples, platform):
    """No calendar floor (issue 29 item 5): a 1997 order exists; one dated next year does not yet."""
    field, old = OLD[platform]
    assert inspect(platform, {**samples[platform], field: old}, NOW).reason is None
    future = old.replace("1997", str(NOW.year + 1))
    reason = inspect(platform, {**samples[platform], field: future}, NOW).reason
    assert reason.startswith(f"impossible date in {field}") and "future" in reason
    # a day ahead is time zones and clock skew, not the future
    tomorrow = (NOW + timedelta(days=1)).strftime("%Y-%m-%d") + old[10:]
    assert inspect(platform, {**samples[platform], field: tomorrow}, NOW).reason is None


@pytest.mark.parametrize("platform", ["taobao", "jd", "shopify", "woocommerce"])
def test_an_order_before_the_shop_start_date_has_its_own_reason(samples, platform):
    field, old = OLD[platform]
    rule = StartDateRule("some_shop", datetime(2024, 6, 1, tzinfo=TZ))
    result = inspect(platform, {**samples[platform], field: old}, NOW, start_rule=rule)
    assert result.reason.startswith(f"before the shop start_date in {field}: 1997-01-01 is before start_date 2024-06-01")
    assert "some_shop" in result.reason and "impossible" not in result.reason
    assert reason_kind(result.reason) == f"before the shop start_date in {field}"
    assert result.order_id  # quarantined under its order id
    # the same rule lets the shop's own orders through
    assert inspect(platform, samples[platform], NOW, start_rule=rule).reason is None


def test_the_start_date_rule_is_a_per_shop_option_with_kind_dependent_defaults(tmp_path):
    """Spreadsheet shops quarantine orders before start_date unless told to land them;
    API shops land them unless told otherwise; anything else is a config error."""
    from crm_pipeline.config import load_shops
    from crm_pipeline.extract.base import ConfigError
    from crm_pipeline.extract.run import start_date_rule

    path = tmp_path / "shops.yml"
    path.write_text("""shops:
  - {shop_id: sheet, platform: intake, start_date: 2024-06-01}
  - {shop_id: ledger, platform: intake, start_date: 2024-06-01, options: {before_start_date: land}}
  - {shop_id: tmall, platform: taobao, start_date: 2024-06-01}
  - {shop_id: strict, platform: taobao, start_date: 2024-06-01, options: {before_start_date: quarantine}}
""", encoding="utf-8")
    rules = {s.shop_id: start_date_rule(s) for s in load_shops(path, resolve=False)}
    assert rules["sheet"] == StartDateRule("sheet", datetime(2024, 6, 1, tzinfo=TZ))
    assert rules["ledger"] is None and rules["tmall"] is None
    assert rules["strict"].start == datetime(2024, 6, 1, tzinfo=TZ)
    path.write_text("shops:\n  - {shop_id: x, platform: intake, options: {before_start_date: drop}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="before_start_date"):
        load_shops(path, resolve=False)


def test_an_intake_row_from_the_nineties_lands_unless_before_start_date():
    row = {"order_id": "A1", "status": "paid", "amount": "29.33", "paid_at": "1997-01-01T00:00:00+08:00",
           "buyer_id": "b1"}
    assert inspect("intake", row, NOW).reason is None
    rule = StartDateRule("wechat_social", datetime(2024, 6, 1, tzinfo=TZ))
    assert inspect("intake", row, NOW, start_rule=rule).reason.startswith("before the shop start_date in paid_at")
    assert inspect("intake", {**row, "paid_at": f"{NOW.year + 1}-01-01T00:00:00+08:00"}, NOW).reason.startswith(
        "impossible date in paid_at")
