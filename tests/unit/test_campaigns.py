"""Campaign files (R15, R21) and measuring results against a hold-out (R22)."""

from pathlib import Path

import pytest
from crm_pipeline.outreach.campaigns import CampaignError, is_holdout, load_campaign, two_proportion_ci

ROOT = Path(__file__).resolve().parents[2]


def test_holdout_is_deterministic_and_close_to_the_fraction():
    ids = [f"C{i:05d}" for i in range(20000)]
    first = [is_holdout("vip", i, 0.1) for i in ids]
    assert first == [is_holdout("vip", i, 0.1) for i in ids]
    assert 0.09 < sum(first) / len(ids) < 0.11
    # another campaign draws another group
    assert first != [is_holdout("other", i, 0.1) for i in ids]


def test_lift_and_confidence_interval():
    lift, lo, hi = two_proportion_ci(300, 1000, 200, 1000)
    assert lift == pytest.approx(0.1)
    assert lo == pytest.approx(0.1 - 1.96 * ((0.3 * 0.7 + 0.2 * 0.8) / 1000) ** 0.5)
    assert lo < lift < hi
    assert two_proportion_ci(1, 10, 0, 0) == (0.0, 0.0, 0.0)


def test_the_shipped_campaign_file_is_valid():
    c = load_campaign(ROOT / "config" / "campaigns" / "vip_thanks.yml")
    assert c.audience and c.channels["sms"]["budget"] > 0 and 0 < c.holdout < 1


def test_a_campaign_without_a_target_group_is_refused(tmp_path):
    path = tmp_path / "blast.yml"
    path.write_text("name: blast\ngoal: sell\nstart_date: 2026-11-01\nend_date: 2026-11-02\n"
                    "channels: {sms: {budget: 10, template: x}}\n", encoding="utf-8")
    with pytest.raises(CampaignError, match="audience"):
        load_campaign(path)
    path.write_text("name: b\ngoal: g\nstart_date: 2026-11-01\nend_date: 2026-11-02\naudience: {colour: [red]}\n"
                    "channels: {sms: {budget: 10, template: x}}\n", encoding="utf-8")
    with pytest.raises(CampaignError, match="unknown audience filter"):
        load_campaign(path)
