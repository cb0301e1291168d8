"""Failure callbacks POST a JSON alert (PII masked) and never raise."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alert", got
    server.shutdown()


def context(exc):
    ti = SimpleNamespace(dag_id="crm_nightly", task_id="extract.extract_jd", map_index=0, run_id="r1", try_number=2)
    return {"ti": ti, "exception": exc, "logical_date": "2026-11-20T02:30:00+08:00"}


def test_webhook_alert_names_the_task_and_masks_pii(receiver, monkeypatch):
    from crm_pipeline.orchestration.callbacks import notify_failure
    from crm_pipeline.settings import reload_settings

    url, got = receiver
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", url)
    reload_settings()
    notify_failure(context(RuntimeError("jd/jd_pop: bad phone 13912345678 for wang@example.com")))
    reload_settings()
    assert len(got) == 1
    alert = got[0]
    assert alert["dag_id"] == "crm_nightly" and alert["task_id"] == "extract.extract_jd"
    assert "jd_pop" in alert["error"]
    assert "13912345678" not in alert["error"] and "wang@example.com" not in alert["error"]


def test_an_unreachable_webhook_never_masks_the_failure(monkeypatch):
    from crm_pipeline.orchestration.callbacks import notify_failure
    from crm_pipeline.settings import reload_settings

    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nowhere")
    reload_settings()
    notify_failure(context(ValueError("boom")))  # must not raise
    reload_settings()
