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


def intake_shop_config(directory, shop_id: str, name: str, start_date: str):
    """A copy of the project's config whose only shop is spreadsheet shop `shop_id`; its path."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "config"
    config = Path(directory) / "config"
    config.mkdir()
    for item in root.iterdir():
        if item.is_file() and item.name != "shops.yml":
            (config / item.name).write_bytes(item.read_bytes())
    (config / "shops.yml").write_text(
        f"shops:\n  - shop_id: {shop_id}\n    platform: intake\n    name: {name}\n    start_date: {start_date}\n",
        encoding="utf-8")
    return config


def crm_intake(url: str, config, sheet, shop_id: str) -> str:
    """`crm intake SHEET --shop SHOP` into warehouse `url` with `config`, as a user runs it; its stdout."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "CRM_WAREHOUSE_URL": url, "CRM_CONFIG_DIR": str(config)}
    done = subprocess.run([str(Path(sys.executable).parent / "crm"), "intake", str(sheet), "--shop", shop_id],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout
