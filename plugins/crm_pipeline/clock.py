"""The pipeline's notion of "now".

Real time, unless ``CRM_NOW`` pins it (ISO 8601 with offset). The demo and the
end-to-end tests replay a past business day "as if it were the next morning",
so what goes out (quiet hours, message windows) does not depend on when
someone happens to run them.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime


def now() -> datetime:
    pinned = os.environ.get("CRM_NOW")
    if pinned:
        value = datetime.fromisoformat(pinned)
        if value.tzinfo is None:
            raise ValueError("CRM_NOW must carry a UTC offset, e.g. 2026-11-21T10:30:00+08:00")
        return value
    return datetime.now(UTC)


def local_today() -> date:
    """Today in the shops' default time zone (``CRM_TIMEZONE``), by the pipeline clock.

    A server keeps UTC: at 07:30 in Beijing its own date is still yesterday's, and a
    ``crm push`` or ``crm campaign push`` run then would send for the wrong day.
    """
    from zoneinfo import ZoneInfo

    from crm_pipeline.settings import get_settings

    return now().astimezone(ZoneInfo(get_settings().timezone)).date()
