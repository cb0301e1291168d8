"""The committed GX files (expectations/gx) are what suites.py declares: a suite changed in
Python and not re-scaffolded (`crm quality scaffold`) would silently not run."""

import json
from pathlib import Path

from crm_pipeline.quality.suites import CHECKPOINTS, all_suites

GX = Path(__file__).resolve().parents[2] / "expectations" / "gx"


def test_every_declared_suite_is_committed_as_declared():
    for suite in all_suites():
        path = GX / "expectations" / f"{suite.name}.json"
        assert path.exists(), f"{suite.name}: run `crm quality scaffold`"
        committed = [(e["type"], e["kwargs"], e["severity"], e.get("description") or "")
                     for e in json.loads(path.read_text(encoding="utf-8"))["expectations"]]
        declared = [(c.type, c.kwargs, c.severity, c.description) for c in suite.checks]
        assert committed == declared, f"{suite.name}: run `crm quality scaffold`"


def test_checkpoints_run_every_declared_suite():
    for name, suites in CHECKPOINTS.items():
        checkpoint = json.loads((GX / "checkpoints" / f"{name}.json").read_text(encoding="utf-8"))
        assert [v["name"] for v in checkpoint["validation_definitions"]] == suites
    assert "raw_quarantine_share" in CHECKPOINTS["raw_landing"]
