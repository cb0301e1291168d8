"""Shared helpers for the benchmarks (run by `make bench`; each prints name=value last)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_url() -> str:
    """The PostgreSQL server benchmarks create their database on (CRM_WAREHOUSE_URL or embedded)."""
    from crm_pipeline.settings import reload_settings
    from crm_pipeline.warehouse import maintenance_url

    reload_settings()
    return maintenance_url()


def fresh_database(name: str, migrated: bool = True) -> str:
    import psycopg
    from crm_pipeline.warehouse.migrate import migrate

    base = server_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    if migrated:
        migrate(url)
    return url


def database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None


def copy_database(source: str, name: str) -> str:
    """A copy of database `source` (no session may be connected to it) as `name`; its URL."""
    import psycopg

    base = server_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}" template "{source}"')
    return base.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def sandbox_process(persons: int, throttle: bool = False, log_dir: Path | None = None, clean: bool = True):
    """The sandbox in its own process (so its JSON rendering does not share our GIL)."""
    import requests
    from crm_pipeline.config import load_env_defaults
    from crm_pipeline.settings import reload_settings

    load_env_defaults(ROOT / "config" / "sandbox.env")
    port = free_port()
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"crm_bench_sandbox_{port}"
    cmd = [sys.executable, "-m", "crm_pipeline.sandbox", "--port", str(port), "--persons", str(persons),
           "--log-dir", str(log_dir)] + (["--no-throttle"] if not throttle else []) + (["--clean"] if clean else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        try:
            if requests.get(url + "/_control/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("sandbox did not start")
        time.sleep(0.3)
    old = os.environ.get("CRM_SANDBOX_URL")
    os.environ["CRM_SANDBOX_URL"] = url
    reload_settings()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if old is None:
            os.environ.pop("CRM_SANDBOX_URL", None)
        else:
            os.environ["CRM_SANDBOX_URL"] = old
        reload_settings()


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
