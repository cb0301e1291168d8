"""An embedded PostgreSQL for the demo and the tests, listening on 127.0.0.1.

We drive the PostgreSQL binaries bundled in the ``pgserver`` wheel ourselves
rather than calling ``pgserver.get_server``: pgserver starts postgres with
``-h ""`` (Unix socket only), and both Cosmos (its Assets are built from the dbt
connection) and Great Expectations (``add_sql``) need a host:port URL.

PostgreSQL refuses to run as root, so when we are root the cluster is owned and
run by a dedicated system user, as pgserver itself does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

from crm_pipeline.pii import get_logger

log = get_logger(__name__)
# pgserver asks platformdirs for a runtime dir it never uses here; on servers and in
# containers without XDG_RUNTIME_DIR that printed a warning on every `crm` call
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

SYSTEM_USER = "pgserver"
DB_NAME = "crm"


class EmbeddedPostgresError(RuntimeError):
    pass


def _bin_dir() -> Path:
    try:
        import pgserver  # noqa: F401  (only for its bundled binaries)
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - bootstrap installs it
        raise EmbeddedPostgresError(
            "pgserver is not installed; run `make demo` or `make test` to bootstrap the venv, "
            "or set CRM_WAREHOUSE_URL to an existing PostgreSQL server"
        ) from exc
    return POSTGRES_BIN_PATH


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedPostgres:
    """One cluster under ``<home>/pg`` and its port file.

    ``ensure_running()`` is idempotent: a running cluster is reused, a stopped
    one is started, a missing one is initialised.
    """

    def __init__(self, home: Path, preferred_port: int = 55432) -> None:
        self.root = home / "pg"
        self.pgdata = self.root / "data"
        self.port_file = self.root / "port"
        self.logfile = self.root / "postgres.log"
        self.preferred_port = preferred_port

    # -- process helpers -------------------------------------------------
    def _run_as(self) -> dict:
        if os.name != "nt" and os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            ensure_user_exists(SYSTEM_USER)
            return {"user": SYSTEM_USER}
        return {}

    def _prepare_permissions(self) -> None:
        if os.name == "nt" or os.geteuid() != 0:
            return
        import pwd
        import stat

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        bins = _bin_dir()
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(bins)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bins, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bins.parent / "lib", read)
        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (self.root, self.pgdata):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)

    def _pg(self, exe: str, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(_bin_dir() / exe), *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd="/", **self._run_as()
        )
        if proc.returncode != 0:
            raise EmbeddedPostgresError(
                f"{exe} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                + (f"\nserver log: {self.logfile}" if self.logfile.exists() else "")
            )
        return proc

    # -- lifecycle ---------------------------------------------------------
    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self, database: str = DB_NAME) -> str:
        port = self.port
        if port is None:
            raise EmbeddedPostgresError("embedded PostgreSQL has not been started")
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def is_running(self) -> bool:
        port = self.port
        pid_file = self.pgdata / "postmaster.pid"
        return port is not None and pid_file.exists() and _accepting(port)

    def ensure_running(self) -> str:
        """Initialise and start if needed; returns the warehouse URL.

        Several processes may ask at once (two test workers on a fresh checkout, a CLI
        beside an Airflow task): the first to take ``<home>/pg/.lock`` initialises and
        starts the cluster, the others wait and then find it running. Without the lock
        two ``initdb`` runs in the same directory remove each other's files.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            self._ensure_database()
            return self.url()
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():  # started by whoever held the lock before us
                self._ensure_database()
                return self.url()
            return self._start()

    def _start(self) -> str:
        self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._pg(
                "initdb",
                ["-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
            )
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            # a crashed or killed server leaves its pid file; pg_ctl handles a
            # stale one itself, but an old port in our port file must not be trusted
            log.info("found postmaster.pid without a live server; starting afresh")
        port = self.port if self.port and _port_free(self.port) else None
        if port is None:
            port = self.preferred_port if _port_free(self.preferred_port) else self._free_port()
        self.port_file.write_text(str(port))
        # speed over durability against power loss (README, Deploying): no fsync, and
        # WAL for crash recovery only (wal_level=minimal: a table built in one
        # transaction, as dbt builds them, is written without WAL; a 1M-order full
        # refresh wrote 3.8 GB of WAL, now 22 MB). Commits stay synchronous: without
        # fsync that costs nothing measurable, and a committed opt-out, call outcome or
        # message claim survives a database crash (D31). WAL segments are removed, not
        # recycled, once a checkpoint no longer needs them: a recycled segment keeps the
        # old records' bytes, and `crm erase` must leave no copy of a person behind
        options = (
            f"-h 127.0.0.1 -p {port} -k {self.pgdata} "
            "-c fsync=off -c full_page_writes=off "
            "-c wal_level=minimal -c max_wal_senders=0 -c wal_recycle=off "
            "-c max_connections=200 -c shared_buffers=256MB -c work_mem=64MB "
            "-c maintenance_work_mem=256MB -c max_wal_size=4GB"
        )
        if self.logfile.exists() and os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.logfile, entry.pw_uid, entry.pw_gid)
        self._pg(
            "pg_ctl",
            ["-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.logfile), "-o", options, "start"],
        )
        deadline = time.time() + 30
        while not _accepting(port):
            if time.time() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL did not accept connections; see {self.logfile}")
            time.sleep(0.2)
        self._ensure_database()
        log.info("embedded PostgreSQL listening on 127.0.0.1:%s", port)
        return self.url()

    def stop(self, immediate: bool = False) -> None:
        """Stop the server; ``immediate`` aborts it as a crash would (no shutdown
        checkpoint, unwritten WAL lost; the next start recovers)."""
        if (self.pgdata / "postmaster.pid").exists():
            self._pg("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", "immediate" if immediate else "fast", "stop"])

    def restart(self) -> str:
        self.stop()
        return self.ensure_running()

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                try:
                    conn.execute(f'create database "{DB_NAME}"')
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass  # another process created it between our check and our create

    @staticmethod
    def _free_port() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
