"""D45: which shops are current for a business day, and when the night goes on without one."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from crm_pipeline.extract.freshness import ShopFreshness, StaleShopsError, gate

SH = ZoneInfo("Asia/Shanghai")
DUE = datetime(2026, 11, 21, 0, 0, tzinfo=SH)  # end of business day 2026-11-20


def api(shop_id: str, read_to: datetime | None, error: str | None = None) -> ShopFreshness:
    return ShopFreshness(shop_id, "taobao", DUE, read_to, last_error=error)


def test_an_api_shop_is_current_once_its_watermark_reaches_the_end_of_the_day():
    assert not api("a", DUE).stale
    assert not api("a", DUE + timedelta(hours=9)).stale  # an intraday run read further
    assert api("a", DUE - timedelta(seconds=1)).stale
    assert api("a", None).stale  # never read


def test_an_intake_shop_is_stale_while_a_file_waits_in_its_inbox():
    assert not ShopFreshness("wechat", "intake", None, None).stale
    stale = ShopFreshness("wechat", "intake", None, None, ("a.xlsx", "b.xlsx", "c.csv", "d.csv"))
    assert stale.stale
    assert "4 file(s) not imported (a.xlsx, b.xlsx, c.csv, ...)" in stale.describe()


def test_describe_names_shop_times_and_error_in_the_shop_time_zone():
    text = api("tmall", datetime(2026, 11, 19, 16, 0, tzinfo=ZoneInfo("UTC")), "HTTP 401 invalid session").describe()
    assert text == ("taobao/tmall: read up to 2026-11-20 00:00 CST, needs 2026-11-21 00:00 CST;"
                    " last error: HTTP 401 invalid session")
    assert "never read" in api("tmall", None).describe()


def test_gate_continues_without_a_stale_shop_by_default():
    shops = [api("a", DUE), api("b", DUE - timedelta(days=1)), ShopFreshness("w", "intake", None, None)]
    assert [f.shop_id for f in gate(shops, "continue")] == ["b"]
    assert gate([api("a", DUE)], "stop") == []


def test_gate_stops_by_policy_or_when_no_api_shop_is_current():
    shops = [api("a", DUE), api("b", None, "HTTP 500")]
    with pytest.raises(StaleShopsError) as err:
        gate(shops, "stop")
    assert "(CRM_ON_SHOP_FAILURE=stop)" in str(err.value) and "taobao/b: never read" in str(err.value)
    assert [f.shop_id for f in err.value.stale] == ["b"]
    with pytest.raises(StaleShopsError, match="no API shop is current"):
        gate([api("a", None), api("b", DUE - timedelta(hours=1)), ShopFreshness("w", "intake", None, None)],
             "continue")
    # only spreadsheet shops configured, one waiting: nothing API-side to judge by, go on
    assert len(gate([ShopFreshness("w", "intake", None, None, ("x.csv",))], "continue")) == 1


def test_a_shop_can_stop_the_night_on_its_own(tmp_path):
    """shops.yml ``on_failure: stop`` on the shop that carries the business (the Tmall
    flagship, say) stops the night without it, while others may still be missing;
    ``continue`` on a minor shop lets the night go on under a global ``stop``."""
    import dataclasses

    from crm_pipeline.config import load_shops
    from crm_pipeline.extract.base import ConfigError

    main, minor = api("main", None, "HTTP 401"), api("minor", DUE - timedelta(hours=2))
    current = api("other", DUE)
    assert [f.shop_id for f in gate([current, minor], "continue")] == ["minor"]
    with pytest.raises(StaleShopsError) as err:
        gate([current, minor, dataclasses.replace(main, on_failure="stop")], "continue")
    assert str(err.value).startswith("1 shop(s) not current whose policy is to stop the night:")
    assert "taobao/main: never read, needs 2026-11-21 00:00 CST; last error: HTTP 401" in str(err.value)
    assert "(on_failure: stop in shops.yml)" in str(err.value) and "taobao/minor" not in str(err.value)
    assert [f.shop_id for f in gate([current, dataclasses.replace(minor, on_failure="continue")], "stop")] == ["minor"]

    path = tmp_path / "shops.yml"
    path.write_text("shops:\n  - {shop_id: m, platform: taobao, on_failure: stop}\n  - {shop_id: n, platform: jd}\n")
    assert [s.on_failure for s in load_shops(path)] == ["stop", None]
    path.write_text("shops:\n  - {shop_id: m, platform: taobao, on_failure: skip}\n")
    with pytest.raises(ConfigError, match=r"\[taobao/m\].*on_failure is 'skip'; expected stop or continue"):
        load_shops(path)


def test_the_policy_setting_is_checked(monkeypatch):
    from crm_pipeline.extract.base import ConfigError
    from crm_pipeline.extract.freshness import on_shop_failure
    from crm_pipeline.settings import reload_settings

    monkeypatch.setenv("CRM_ON_SHOP_FAILURE", "Stop")
    reload_settings()
    assert on_shop_failure() == "stop"
    monkeypatch.setenv("CRM_ON_SHOP_FAILURE", "skip")
    reload_settings()
    with pytest.raises(ConfigError, match="CRM_ON_SHOP_FAILURE='skip'"):
        on_shop_failure()
    monkeypatch.delenv("CRM_ON_SHOP_FAILURE")
    reload_settings()
    assert on_shop_failure() == "continue"


@pytest.mark.parametrize("argv", [["airflow", "--", "dags", "test", "crm_nightly", "2026-11-21"],
                                  ["airflow", "dags", "test", "crm_nightly", "2026-11-21"]])
def test_crm_airflow_passes_the_command_after_the_separator(argv):
    """The README's `crm airflow -- dags test ...` (how a partial night is rerun by hand)
    reached Airflow as `airflow -- dags ...`, which it rejects."""
    from crm_pipeline.cli import airflow_args, build_parser

    assert airflow_args(build_parser().parse_args(argv).rest) == ["dags", "test", "crm_nightly", "2026-11-21"]


@pytest.mark.parametrize("argv", [["push"], ["calls", "list"], ["campaign", "push", "vip_thanks"],
                                  ["quality", "raw_landing"]])
def test_a_defaulted_date_is_today_in_the_shops_time_zone_by_the_pipeline_clock(argv, monkeypatch):
    """07:30 in Beijing is still yesterday on a UTC server: `crm push` without --date sent
    for the server's date (and ignored CRM_NOW, which replays a morning)."""
    from datetime import date

    from crm_pipeline.cli import parse_args
    from crm_pipeline.settings import reload_settings

    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("CRM_NOW", "2026-11-20T23:30:00+00:00")  # 2026-11-21 07:30 in Beijing
    reload_settings()
    try:
        assert parse_args(argv).date == date(2026, 11, 21)
        assert parse_args([*argv, "--date", "2026-11-19"]).date == date(2026, 11, 19)
    finally:
        monkeypatch.undo()  # the environment back before the settings are read again
        reload_settings()
