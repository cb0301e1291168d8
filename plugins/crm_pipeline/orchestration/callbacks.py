"""Failure notifications: a configurable webhook (JSON) and/or e-mail."""

from __future__ import annotations

import json

from crm_pipeline.pii import get_logger, redact
from crm_pipeline.settings import get_settings

log = get_logger(__name__)


def failure_message(context) -> dict:
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    return {
        "event": "task_failed",
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": str(context.get("logical_date")),
        "error": redact(f"{exc.__class__.__name__}: {exc}" if exc else "unknown error")[:2000],
    }


def notify_failure(context) -> None:
    """on_failure_callback: never raises (a broken alert must not mask the failure)."""
    settings = get_settings()
    message = failure_message(context)
    if settings.alert_webhook_url:
        try:
            import requests

            requests.post(settings.alert_webhook_url, data=json.dumps(message, ensure_ascii=False).encode("utf-8"),
                          headers={"Content-Type": "application/json"}, timeout=10)
        except Exception as exc:  # pragma: no cover - network trouble
            log.warning("failure webhook could not be delivered: %s", exc)
    if settings.alert_email:
        try:
            from airflow.utils.email import send_email

            send_email(settings.alert_email, f"[crm] {message['dag_id']}.{message['task_id']} failed",
                       f"<pre>{json.dumps(message, indent=2, ensure_ascii=False)}</pre>")
        except Exception as exc:  # pragma: no cover - SMTP not configured
            log.warning("failure e-mail could not be sent: %s", exc)
