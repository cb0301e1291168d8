"""Small helpers shared by tests (imported as a module; pytest puts tests/ on sys.path)."""

from __future__ import annotations

from datetime import date

import requests

ANCHOR = date(2026, 11, 20)


def shop(shop_id: str):
    from crm_pipeline.config import get_shop

    return get_shop(shop_id)


def fault(sandbox, **spec) -> None:
    requests.post(sandbox.url + "/_control/faults", json=spec, timeout=5).raise_for_status()


def reset(sandbox, throttle: bool = False, messages: bool = False, shopify_scopes: dict | None = None) -> None:
    requests.post(sandbox.url + "/_control/reset",
                  json={"throttle": throttle, "messages": messages, "shopify_scopes": shopify_scopes or {}},
                  timeout=5).raise_for_status()


def faults_fired(sandbox) -> dict[str, int]:
    """How often each injected fault took effect, by kind (before the next reset)."""
    fired: dict[str, int] = {}
    for f in requests.get(sandbox.url + "/_control/faults", timeout=5).json():
        fired[f["kind"]] = fired.get(f["kind"], 0) + f["fired"]
    return fired


def gateway_messages(sandbox) -> list[dict]:
    return requests.get(sandbox.url + "/_control/messages", timeout=5).json()["messages"]


def rows(url: str, sql: str, *args) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def table_digest(url: str, table: str, order_by: str, exclude: tuple[str, ...] = ()) -> str:
    """md5 over a table's rows (selected columns), to compare two runs."""
    import psycopg

    schema, name = table.split(".")
    with psycopg.connect(url) as conn:
        cols = [r[0] for r in conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
            " order by ordinal_position", (schema, name)) if r[0] not in exclude]
        select = ", ".join(f'"{c}"' for c in cols)
        row = conn.execute(f"select md5(string_agg(t::text, '|' order by {order_by})), count(*)"
                           f" from (select {select} from {table}) t").fetchone()
    return f"{row[0]}:{row[1]}"


def shops_read_at(url: str, moment) -> None:
    """The shops' orders were read up to ``moment`` (as the intraday run does just before it
    pushes): payment reminders and shipment notices may go out on these facts (policy.yml
    fresh_orders_minutes)."""
    rows(url, "update ops.watermarks set watermark = greatest(watermark, %s::timestamptz) returning 1", moment)
