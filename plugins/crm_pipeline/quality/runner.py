"""Run a Great Expectations checkpoint from the file context in expectations/.

A failed ``critical`` expectation raises :class:`QualityError` (the task fails
and nothing downstream runs: no message goes out); ``warning`` failures are
returned and recorded for the daily report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

from crm_pipeline.pii import get_logger
from crm_pipeline.quality.suites import CONNECTION_ENV
from crm_pipeline.settings import get_settings

log = get_logger(__name__)


class QualityError(RuntimeError):
    pass


@dataclass
class QualityResult:
    checkpoint: str
    success: bool
    evaluated: int = 0
    failures: list[dict] = field(default_factory=list)

    @property
    def critical(self) -> list[dict]:
        return [f for f in self.failures if f["severity"] == "critical"]

    @property
    def warnings(self) -> list[dict]:
        return [f for f in self.failures if f["severity"] != "critical"]

    def as_facts(self) -> dict:
        return {"checkpoint": self.checkpoint, "success": self.success, "evaluated": self.evaluated,
                "critical": self.critical, "warnings": self.warnings}


def _sqlalchemy_url(url: str) -> str:
    from crm_pipeline.warehouse import url_parts

    p = url_parts(url)
    auth = p["user"] + (f":{p['password']}" if p["password"] else "")
    return f"postgresql+psycopg2://{auth}@{p['host']}:{p['port']}/{p['dbname']}"


def run_checkpoint(name: str, url: str | None = None, as_of: date | None = None, raise_on_critical: bool = True,
                   record: bool = True) -> QualityResult:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    from crm_pipeline.warehouse import warehouse_url

    url = url or warehouse_url()
    os.environ[CONNECTION_ENV] = _sqlalchemy_url(url)
    ctx = gx.get_context(mode="file", project_root_dir=str(get_settings().expectations_dir))
    checkpoint = ctx.checkpoints.get(name)
    outcome = checkpoint.run()
    result = QualityResult(checkpoint=name, success=bool(outcome.success))
    for vr in outcome.run_results.values():
        suite = vr.suite_name
        for er in vr.results:
            result.evaluated += 1
            if er.success:
                continue
            cfg = er.expectation_config
            result.failures.append({
                "suite": suite,
                "expectation": cfg.type,
                "description": getattr(cfg, "description", None) or "",
                "kwargs": {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)},
                "severity": str(getattr(cfg, "severity", "critical")).split(".")[-1].lower(),
                "unexpected_count": (er.result or {}).get("unexpected_count")
                                    or (er.result or {}).get("observed_value"),
            })
    if record and as_of is not None:
        _record(url, as_of, result)
    for f in result.warnings:
        log.warning("quality warning in %s: %s %s", f["suite"], f["expectation"], f["description"])
    if result.critical and raise_on_critical:
        for f in result.critical:
            f["where"] = _where(url, f["suite"])
        lines = "; ".join(f"{f['suite']}: {f['description'] or f['expectation']} ({f['unexpected_count']}"
                          + (f": {f['where']}" if f.get("where") else "") + ")" for f in result.critical)
        raise QualityError(f"checkpoint {name}: {len(result.critical)} critical expectation(s) failed: {lines}. "
                           "Nothing downstream runs; see out/docs/gx for the Data Docs")
    return result


def _where(url: str, suite: str) -> str:
    """The shops a failed suite is about (suites.FAILURE_WHERE), for its error message."""
    from crm_pipeline.quality.suites import FAILURE_WHERE
    from crm_pipeline.warehouse import connect

    if suite not in FAILURE_WHERE:
        return ""
    with connect(url) as conn:
        return ", ".join(r[0] for r in conn.execute(FAILURE_WHERE[suite]).fetchall()[:10])


def _record(url: str, as_of: date, result: QualityResult) -> None:
    import json

    from crm_pipeline.warehouse import connect

    with connect(url) as conn:
        conn.execute(
            "insert into ops.run_log (as_of_date, step, facts) values (%s, %s, %s)"
            " on conflict (as_of_date, step) do update set facts = excluded.facts, recorded_at = now()",
            (as_of, f"quality:{result.checkpoint}", json.dumps(result.as_facts(), default=str)),
        )
