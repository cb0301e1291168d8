"""What a long run is doing, as it does it: `crm demo` prints each step of the nightly DAG
as Airflow finishes it, with the shop, pages and orders of every extraction.

The watcher reads what Airflow and the steps record anyway (the task instances in
Airflow's metadata database, the facts in ``ops.run_log``); it changes nothing and a
failure to read is skipped, never fatal.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from datetime import date, datetime
from pathlib import Path

DONE = {"success": "✓", "failed": "✗ failed", "upstream_failed": "✗ not run (an earlier step failed)",
        "skipped": "skipped", "up_for_retry": "✗ failed, will retry", "removed": "removed"}


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _seconds(start: str | None, end: str | None) -> str:
    try:
        return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.0f}s"
    except (TypeError, ValueError):
        return ""


class DagRunWatcher(threading.Thread):
    """Polls the newest run of ``dag_id`` in Airflow's SQLite metadata database (one started after
    this object was made) and reports every task as it ends; dbt's many steps as a running count."""

    def __init__(self, airflow_db: Path, dag_id: str, as_of: date, warehouse_url: str | None = None,
                 every: float = 2.0, out=say):
        super().__init__(daemon=True)
        self.db, self.dag_id, self.as_of, self.url = airflow_db, dag_id, as_of, warehouse_url
        self.every, self.out = every, out
        self.stopped = threading.Event()
        self.reported: set[tuple[str, int]] = set()
        self.after_id = self._max_run_id()
        self.dbt_done = 0
        self.dbt_total = 0
        self.dbt_said_at = 0.0
        self.dbt_last = ""

    def _connect(self):
        return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)

    def _max_run_id(self) -> int:
        try:
            with self._connect() as conn:
                return conn.execute("select coalesce(max(id), 0) from dag_run where dag_id = ?",
                                    (self.dag_id,)).fetchone()[0]
        except sqlite3.Error:
            return 0

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.poll()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
        self.poll(final=True)

    def _facts(self) -> dict[str, dict]:
        if not self.url:
            return {}
        try:
            import psycopg

            with psycopg.connect(self.url, connect_timeout=3) as conn:
                return {step: facts for step, facts in conn.execute(
                    "select step, facts from ops.run_log where as_of_date = %s", (self.as_of,))}
        except Exception:
            return {}

    def poll(self, final: bool = False) -> None:
        try:
            with self._connect() as conn:
                run = conn.execute("select run_id from dag_run where dag_id = ? and id > ? order by id desc limit 1",
                                   (self.dag_id, self.after_id)).fetchone()
                if not run:
                    return
                tis = conn.execute(
                    "select task_id, map_index, rendered_map_index, state, start_date, end_date from task_instance"
                    " where dag_id = ? and run_id = ? order by end_date", (self.dag_id, run[0])).fetchall()
        except sqlite3.Error:
            return
        facts = None
        self.dbt_total = sum(1 for t in tis if t[0].startswith("transform."))
        for task_id, map_index, shop, state, start, end in tis:
            key = (task_id, map_index)
            if state not in DONE or key in self.reported:
                continue
            self.reported.add(key)
            if task_id.startswith("transform.") and state == "success":
                self.dbt_done += 1
                self.dbt_last = task_id.split(".", 1)[1].removesuffix("_model_build").removesuffix("_run")
                continue
            if task_id.startswith("extract.extract_") and map_index >= 0:
                facts = self._facts() if facts is None else facts
                self.out(self._extract_line(task_id, shop or str(map_index), state, start, end, facts))
                continue
            self.out(f"{task_id} {DONE[state]} {_seconds(start, end)}".rstrip())
        now = time.monotonic()
        if self.dbt_done and (final or now - self.dbt_said_at >= 10 or self.dbt_done == self.dbt_total):
            if (self.dbt_done, self.dbt_total) != getattr(self, "_dbt_said", None):
                self._dbt_said = (self.dbt_done, self.dbt_total)
                self.dbt_said_at = now
                self.out(f"transform (dbt): {self.dbt_done} of {self.dbt_total} models and tests done"
                         f" (last: {self.dbt_last})")

    def _extract_line(self, task_id: str, shop: str, state: str, start, end, facts: dict) -> str:
        platform = task_id.removeprefix("extract.extract_")
        f = facts.get(f"extract:{shop}:nightly") or facts.get(f"intake:{shop}") or {}
        what = ""
        if state == "success" and f:
            if platform == "intake":
                what = (f"{len(f.get('files') or [])} file(s), {f.get('landed', 0):,} order versions landed, "
                        f"{f.get('quarantined', 0):,} quarantined")
            else:
                what = (f"{f.get('landed', 0):,} order versions landed, {f.get('quarantined', 0):,} quarantined, "
                        f"{f.get('pages', 0):,} pages")
        return f"extract {platform}/{shop} {DONE[state]} {_seconds(start, end)}" + (f": {what}" if what else "")
