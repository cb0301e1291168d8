"""Templates (sandboxed, every placeholder checked) and PII masking in logs."""

import logging
from pathlib import Path

import pytest
from crm_pipeline.outreach.templates import MissingPlaceholder, render
from crm_pipeline.pii import PiiFilter, mask_email, mask_phone, redact
from jinja2.exceptions import SecurityError

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"


def test_shipment_notice_renders_the_seed_wording():
    r = render(TEMPLATES, "shipment_notice.sms.j2", {"shop_name": "店", "carrier": "顺丰速运", "tracking_no": "SF1"})
    assert "顺丰速运的大叔带走啦" in r.body and "SF1" in r.body and r.subject is None


def test_a_missing_tracking_number_means_no_message():
    with pytest.raises(MissingPlaceholder) as exc:
        render(TEMPLATES, "shipment_notice.sms.j2", {"shop_name": "店", "carrier": "顺丰速运", "tracking_no": ""})
    assert exc.value.missing == ["tracking_no"]


def test_email_templates_carry_a_subject():
    r = render(TEMPLATES, "campaign_vip_thanks.email.j2", {"shop_name": "店", "name": "王芳", "tier_name": "金卡"})
    assert r.subject.startswith("王芳") and "金卡" in r.body


def test_templates_are_sandboxed(tmp_path):
    (tmp_path / "evil.sms.j2").write_text("{{ name.__class__.__mro__ }}", encoding="utf-8")
    with pytest.raises(SecurityError):
        render(tmp_path, "evil.sms.j2", {"name": "x"})


def test_redact_masks_phones_and_emails_in_any_text():
    text = "call 13812345678 or +86 139 1234 5678, mail Alice.W@example.com, order 2024123456789012"
    out = redact(text)
    assert "13812345678" not in out and "1234 5678" not in out and "Alice.W" not in out
    assert "2024123456789012" in out  # order ids are not phones
    # Chinese text runs straight into numbers: 手 and 元 are word characters to \w
    for text in ("手机13812345678联系", "金额13812345678元", "电话+8613812345678，"):
        assert "12345678" not in redact(text), text
    # a WeChat id is often letters glued to the number; an id's inner digits are not
    assert redact("微信 wx13812345678, amy_13912345678") == "微信 wx138******78, amy_139******78"
    for text in ("SO13812345678X1", "ab1381234567812", "T2024123456789"):
        assert redact(text) == text
    assert mask_phone("+8613812345678") == "861********78"
    assert mask_email("alice@example.com") == "a***@example.com"


def test_log_records_are_masked(caplog):
    logger = logging.getLogger("crm_pipeline.test_pii")
    logger.addFilter(PiiFilter())
    with caplog.at_level(logging.INFO):
        logger.info("sending to %s", "13812345678")
    assert "13812345678" not in caplog.text and "138" in caplog.text


def test_line_chart_keeps_x_order_of_the_data():
    """Labels like 10% / 100% / 20% must not be sorted as text (the Pareto curve is monotone)."""
    import re

    from crm_pipeline.reporting.charts import lines

    pts = [(f"{p}%", float(p)) for p in (0, 10, 20, 50, 100)]
    svg = lines({"s": pts})
    coords = re.search(r"<polyline points='([^']+)'", svg).group(1).split()
    xs = [float(c.split(",")[0]) for c in coords]
    ys = [float(c.split(",")[1]) for c in coords]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)


def test_aliyun_send_dates_count_days_in_beijing_time():
    """The gateway stamps SendDate in China time: a batch claimed at 16:30 UTC was sent
    on the next Beijing day (reconcile asked the UTC day and re-sent what had arrived)."""
    from datetime import UTC, datetime

    from crm_pipeline.outreach.gateways import aliyun_send_dates

    assert aliyun_send_dates(datetime(2026, 11, 22, 16, 30, tzinfo=UTC)) == ["20261123"]
    assert aliyun_send_dates(datetime(2026, 11, 22, 15, 50, tzinfo=UTC)) == ["20261122", "20261123"]
    assert aliyun_send_dates(datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == ["20261122"]


def test_a_dbt_failure_message_is_redacted():
    """D28: a database error can quote a row; the DbtError text must not carry its contact data."""
    from types import SimpleNamespace

    from crm_pipeline.transform.dbt import _failure_detail

    node = SimpleNamespace(unique_id="model.crm.dim_customers")
    failed = SimpleNamespace(status="error", node=node,
                             message='duplicate key value (phone)=(+8613912345678) for ada@example.com')
    passed = SimpleNamespace(status="success", node=SimpleNamespace(unique_id="model.crm.fct_orders"), message="OK")
    detail = _failure_detail(SimpleNamespace(exception=None, result=SimpleNamespace(results=[passed, failed])))
    assert "model.crm.dim_customers" in detail and "fct_orders" not in detail
    assert "13912345678" not in detail and "ada@example.com" not in detail
    crashed = _failure_detail(SimpleNamespace(exception=RuntimeError("lost row for 13912345678"), result=None))
    assert "RuntimeError" in crashed and "13912345678" not in crashed
