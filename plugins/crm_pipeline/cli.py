"""The ``crm`` command: every operation of the pipeline from a shell.

Exit codes: 0 success, 1 a step failed (the message says which and why),
2 bad usage or configuration (an option, a name, a range, a file argument that
does not exist), 3 a data-quality gate failed, 4 an input file was rejected
(nothing of it applied). ``exit_code`` maps the package's errors to them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_QUALITY, EXIT_REJECTED = 0, 1, 2, 3, 4


def _settings():
    from crm_pipeline.settings import get_settings

    return get_settings()


class _Today:
    """A --date default, resolved after parsing to clock.local_today() (CRM_TIMEZONE, CRM_NOW):
    not ``date.today()``, the server's date when the parser was built."""

    def __repr__(self) -> str:
        return "today"


TODAY = _Today()


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _input_file(value: str | None, what: str) -> Path:
    """A file argument that must exist (exit 2 otherwise: the command, not the file, is wrong)."""
    from crm_pipeline.errors import UsageError

    if not value:
        raise UsageError(f"{what} needs a file")
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"no such file: {value}")
    return path


def exit_code(exc: BaseException) -> int:
    """The README's exit code for an error raised by any step."""
    from crm_pipeline.errors import BadInputFile, UsageError
    from crm_pipeline.extract.base import ConfigError
    from crm_pipeline.outreach.campaigns import CampaignError
    from crm_pipeline.outreach.templates import TemplateError
    from crm_pipeline.platforms import UnknownPlatformError
    from crm_pipeline.quality.runner import QualityError

    if isinstance(exc, QualityError):
        return EXIT_QUALITY
    if isinstance(exc, BadInputFile):
        return EXIT_REJECTED
    if isinstance(exc, UsageError | ConfigError | CampaignError | TemplateError | UnknownPlatformError):
        return EXIT_USAGE
    return EXIT_FAILED


def _progress(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_environment(start_sandbox: bool = False) -> str:
    """Sandbox credentials, warehouse URL (embedded started if needed) and schemas."""
    from crm_pipeline.config import load_env_defaults
    from crm_pipeline.settings import reload_settings
    from crm_pipeline.warehouse import warehouse_url
    from crm_pipeline.warehouse.migrate import migrate

    settings = _settings()
    load_env_defaults(settings.config_dir / "sandbox.env")
    url = warehouse_url()
    os.environ["CRM_WAREHOUSE_URL"] = url
    reload_settings()
    migrate(url)
    if start_sandbox:
        ensure_sandbox()
    return url


# -- sandbox process ---------------------------------------------------------------------
def _sandbox_alive(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/_control/health", timeout=2).ok
    except requests.RequestException:
        return False


def ensure_sandbox() -> str:
    settings = _settings()
    if _sandbox_alive(settings.sandbox_url):
        return settings.sandbox_url
    log_dir = settings.home / "sandbox"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "server.log").open("a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "crm_pipeline.sandbox", "--port", str(settings.sandbox_port),
                                 "--log-dir", str(log_dir)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=os.environ.copy())
    (log_dir / "server.pid").write_text(str(proc.pid))
    deadline = time.time() + 60
    while not _sandbox_alive(settings.sandbox_url):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"sandbox did not start; see {log_dir / 'server.log'}")
        time.sleep(0.3)
    return settings.sandbox_url


def stop_sandbox() -> bool:
    import signal

    pid_file = _settings().home / "sandbox" / "server.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)
    return True


# -- airflow -----------------------------------------------------------------------------
def airflow_env() -> dict[str, str]:
    settings = _settings()
    home = settings.home / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)  # `airflow standalone` starts `airflow ...` children by name
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": settings.timezone,
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_dir),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.project_dir / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                                                              f"sqlite:///{home / 'airflow.db'}"),
        "GX_ANALYTICS_ENABLED": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def airflow(args: list[str], check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(exe), *args], env=airflow_env(), text=True, capture_output=capture)
    if check and proc.returncode != 0:
        tail = (proc.stdout or "")[-3000:] + (proc.stderr or "")[-3000:] if capture else ""
        raise RuntimeError(f"airflow {' '.join(args)} failed (exit {proc.returncode}){': ' + tail if tail else ''}")
    return proc


def airflow_db_migrate() -> None:
    marker = _settings().home / "airflow" / ".migrated"
    if marker.exists():
        return
    airflow(["db", "migrate"], capture=True)
    marker.write_text(datetime.now().isoformat())


def dag_run_state(dag_id: str, as_of: date) -> str | None:
    """State of the latest run of a DAG in the Airflow metadata DB."""
    import sqlite3

    db = _settings().home / "airflow" / "airflow.db"
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        row = conn.execute("select state from dag_run where dag_id = ? order by id desc limit 1", (dag_id,)).fetchone()
    return row[0] if row else None


def run_nightly_dag(as_of: date) -> None:
    """`airflow dags test crm_nightly <date>`: the real DAG, in-process, SQLite metadata."""
    ensure_manifest()
    airflow_db_migrate()
    from crm_pipeline.progress import DagRunWatcher

    logical = f"{as_of.isoformat()}T02:30:00+08:00"
    _progress(f"airflow dags test crm_nightly {logical}: each step is printed as it ends")
    watcher = DagRunWatcher(_settings().home / "airflow" / "airflow.db", "crm_nightly", as_of,
                            os.environ.get("CRM_WAREHOUSE_URL"))
    watcher.start()
    try:
        proc = airflow(["dags", "test", "crm_nightly", logical], check=False, capture=True)
    finally:
        watcher.stop()
    log_path = _settings().home / "airflow" / f"dags_test_{as_of.isoformat()}.log"
    log_path.write_text((proc.stdout or "") + "\n" + (proc.stderr or ""))
    state = dag_run_state("crm_nightly", as_of)
    if proc.returncode != 0 or state != "success":
        failed = [line for line in (proc.stdout or "").splitlines() + (proc.stderr or "").splitlines()
                  if "failed" in line.lower() and "task" in line.lower()]
        raise RuntimeError(f"crm_nightly for {as_of} ended in state {state!r} (exit {proc.returncode}); "
                           f"full log: {log_path}" + ("\n  " + "\n  ".join(failed[-8:]) if failed else ""))


def ensure_manifest(force: bool = False) -> Path:
    from crm_pipeline.transform.dbt import run_dbt

    manifest = _settings().dbt_project_dir / "target" / "manifest.json"
    if force or not manifest.exists():
        run_dbt(["parse"], capture=True)
    return manifest


# -- demo ---------------------------------------------------------------------------------
def write_demo_intake(as_of: date) -> Path:
    from crm_pipeline.sandbox.intake_files import write_intake_xlsx
    from crm_pipeline.sandbox.world import get_world

    settings = _settings()
    path = settings.intake_dir / "wechat_social" / f"wechat_orders_{as_of.isoformat()}.xlsx"
    if not path.exists():
        world = get_world(settings.sandbox_anchor, settings.sandbox_persons)
        write_intake_xlsx(world, "wechat_social", as_of, path)
    return path


def print_summary(s: dict) -> None:
    def line(label, value):
        print(f"  {label:<34} {value}")

    print(f"\nCRM nightly run for business day {s['as_of_date']} — read back from the warehouse\n")
    if s.get("stale_shops"):
        print("PARTIAL NIGHT: shops not read up to the end of the day (their data is as of their last good run):")
        for text in s["stale_shops"]:
            print(f"  {text}")
    print("Orders landed per platform (raw, current versions):")
    for k, v in s["raw_landed_by_platform"].items():
        line(k, v)
    line("quarantined (malformed records)", f"{sum(s['quarantined'].values())} ({s['quarantined_open']} still open:"
                                            " crm quarantine list)")
    print("Modelled:")
    line("orders in marts.fct_orders", sum(s["orders_by_platform"].values()))
    line("customers after unification", f"{s['customers']} (from {s['identity_nodes']} platform accounts/orders)")
    print(f"RFM segments (spend by {s['rfm_method']}):")
    for k, v in s["rfm_segments"].items():
        line(k, v)
    print("Lifecycle stages:")
    for k, v in s["lifecycle_stages"].items():
        line(k, v)
    print("Outreach:")
    line("call list", f"{s['call_list_path']} ({s['call_list_entries']} calls)")
    line("ledger", ", ".join(f"{k}={v}" for k, v in s["ledger"].items()) or "empty")
    line("not sent, by rule", ", ".join(f"{k}={v}" for k, v in s["suppressed"].items()) or "none")
    line("messages accepted by sandbox gateway", s["gateway_messages_received"])
    line("daily report", s["report_path"])


def demo_clock(as_of: date) -> str:
    """The CRM_NOW a demo of `as_of` runs at: the next morning, 10:30 Beijing time."""
    return f"{(as_of + timedelta(days=1)).isoformat()}T10:30:00+08:00"


def cmd_demo(args) -> int:
    settings = _settings()
    as_of = args.date or settings.demo_date
    os.environ.setdefault("CRM_NOW", demo_clock(as_of))
    _progress("warehouse, schemas and sandbox")
    ensure_environment(start_sandbox=True)
    write_demo_intake(as_of)
    try:
        run_nightly_dag(as_of)
        from crm_pipeline.pipeline import summary

        s = summary(as_of)
        print_summary(s)
        if args.json:
            Path(args.json).write_text(json.dumps(s, indent=2, ensure_ascii=False, default=str))
    finally:
        if not args.keep_sandbox:
            stop_sandbox()
    url = os.environ["CRM_WAREHOUSE_URL"]
    print(f"\nWarehouse: {url}  (psql \"{url}\"; stop it with `crm warehouse stop`)")
    return EXIT_OK


# -- individual operations ------------------------------------------------------------------
def cmd_run(args) -> int:
    """The nightly steps without Airflow (same functions the DAG calls)."""
    from crm_pipeline import pipeline as p
    from crm_pipeline.extract.base import ExtractError
    from crm_pipeline.extract.freshness import StaleShopsError

    ensure_environment(start_sandbox=args.sandbox)
    as_of = args.date
    # like the DAG (D45): a shop that fails does not stop the others; check_extraction decides
    for shop_id in p.api_shop_ids():
        _progress(f"extract {shop_id}")
        try:
            p.extract_shop(shop_id, as_of)
        except ExtractError as exc:
            print(f"extract {shop_id} failed: {exc}", file=sys.stderr)
    for shop_id in p.intake_shop_ids():
        try:
            p.intake_shop(shop_id, as_of)
        except ExtractError as exc:  # run_intake names the file and shop
            print(f"intake {shop_id} failed: {exc}", file=sys.stderr)
    p.check_extraction(as_of)
    _progress("quality raw_landing")
    p.quality("raw_landing", as_of)
    _progress("dbt build")
    p.transform(as_of)
    _progress("customer lifetime value")
    p.customer_clv(as_of)
    _progress("outreach")
    p.plan_outreach(as_of)
    p.call_list(as_of)
    p.quality("outbound", as_of)
    p.push_messages(as_of)
    from crm_pipeline.reporting.report import publish_docs, write_report

    print(write_report(as_of))
    print(publish_docs(as_of))
    if args.json:
        Path(args.json).write_text(json.dumps(p.summary(as_of), indent=2, ensure_ascii=False, default=str))
    try:
        p.finish_night(as_of)
    except StaleShopsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_extract(args) -> int:
    from crm_pipeline.pipeline import extract_shop

    ensure_environment()
    print(json.dumps(extract_shop(args.shop, args.date, "intraday" if args.intraday else "nightly"), indent=2))
    return EXIT_OK


def cmd_backfill(args) -> int:
    from crm_pipeline.config import get_shop
    from crm_pipeline.errors import UsageError
    from crm_pipeline.pipeline import extract_shop

    if args.date_from > args.date_to:
        raise UsageError(f"--from {args.date_from} is after --to {args.date_to}")
    ensure_environment()
    shop = get_shop(args.shop)
    if shop.platform != args.platform:
        raise UsageError(f"shop {args.shop} is a {shop.platform} shop, not {args.platform}")
    _progress(f"backfill {args.platform}/{args.shop} {args.date_from}..{args.date_to}")
    print(json.dumps(extract_shop(args.shop, args.date_to, "backfill", args.date_from, args.date_to), indent=2))
    return EXIT_OK


def cmd_intake(args) -> int:
    from crm_pipeline.config import get_shop
    from crm_pipeline.extract.intake import parse_mapping
    from crm_pipeline.extract.run import run_intake

    path = _input_file(args.file, "intake")
    mapping = parse_mapping(args.map)
    ensure_environment()
    result = run_intake(path, get_shop(args.shop), mapping)
    print(result.summary())
    if result.counts.quarantined:
        print(f"{result.counts.quarantined} row(s) quarantined: see raw.quarantine (batch {result.batch_id})")
        from crm_pipeline.pii import redact

        for order_id, reason in result.rejected:
            # read errors name file and row; checks after reading name the order. Redacted:
            # a column mapped wrongly can put a phone where the amount should be
            print(redact(f"  - {reason}" if " row " in reason else f"  - order {order_id}: {reason}"))
        if result.counts.quarantined > len(result.rejected):
            print(f"  ... and {result.counts.quarantined - len(result.rejected)} more")
        from crm_pipeline.quality.suites import QUARANTINE_CRITICAL_SHARE, QUARANTINE_MIN_RECEIVED

        received = result.counts.received
        if received >= QUARANTINE_MIN_RECEIVED and result.counts.quarantined > QUARANTINE_CRITICAL_SHARE * received:
            # the raw checkpoint judges a shop by its last batch: say now what the night will say
            print(f"{path.name}: {result.counts.quarantined} of {received} rows quarantined (over "
                  f"{QUARANTINE_CRITICAL_SHARE:.0%}): the next run stops at the raw_landing checkpoint until a "
                  f"corrected file for shop {args.shop} is imported (crm quarantine list --shop {args.shop})",
                  file=sys.stderr)
            return EXIT_QUALITY
    return EXIT_OK


def cmd_transform(args) -> int:
    from crm_pipeline.pipeline import transform

    ensure_environment()
    transform(args.date, select=args.select, full_refresh=args.full_refresh)
    return EXIT_OK


def cmd_dbt(args) -> int:
    """Any dbt command, run as the pipeline runs it: this warehouse (the embedded one's
    port), the business day and the shops' time zones as vars; masked analyst views
    put back after a command that may have rebuilt the marts."""
    from crm_pipeline.errors import UsageError
    from crm_pipeline.transform.dbt import run_dbt

    dbt_args = [a for a in args.dbt_args if a != "--"]
    if not dbt_args:
        raise UsageError("crm dbt: name the dbt command, e.g. crm dbt --date 2026-11-20 -- build --select +dim_customers")
    ensure_environment()
    from crm_pipeline.warehouse import connect
    from crm_pipeline.warehouse.roles import refresh_masked_views

    def views() -> None:  # dbt's table swaps drop the dependent analyst views
        if not {"run", "build", "seed", "snapshot", "retry"}.isdisjoint(dbt_args):
            with connect() as conn:
                refresh_masked_views(conn)

    try:
        run_dbt(dbt_args, args.date)
    except Exception:  # a failed build has rebuilt some marts too; its error is the one to see
        with contextlib.suppress(Exception):
            views()
        raise
    views()
    return EXIT_OK


def cmd_quality(args) -> int:
    if args.action == "scaffold":
        from crm_pipeline.quality.runner import _sqlalchemy_url
        from crm_pipeline.quality.suites import CONNECTION_ENV, scaffold

        os.environ[CONNECTION_ENV] = _sqlalchemy_url(ensure_environment())
        print("\n".join(scaffold(_settings().expectations_dir)))
        return EXIT_OK
    from crm_pipeline.errors import UsageError
    from crm_pipeline.pipeline import quality
    from crm_pipeline.quality.suites import CHECKPOINTS

    if args.action not in CHECKPOINTS:
        raise UsageError(f"no checkpoint {args.action!r}; use {' | '.join(CHECKPOINTS)} | scaffold")
    ensure_environment()
    print(json.dumps(quality(args.action, args.date), indent=2, ensure_ascii=False, default=str))
    return EXIT_OK


def cmd_identity(args) -> int:
    from crm_pipeline.errors import UsageError
    from crm_pipeline.warehouse import connect

    if args.action != "list" and not args.left:
        raise UsageError(f"{args.action} needs a node key or identifier: crm identity {args.action} NODE ...")
    if args.action == "link" and not args.right:
        raise UsageError("link needs two node keys: crm identity link NODE_A NODE_B")
    ensure_environment()
    with connect(durable=True) as conn:
        if args.action == "list":
            for row in conn.execute("select rule_id, action, left_ref, right_ref, reason, created_at, active"
                                    " from ops.identity_rules order by rule_id"):
                print(*row, sep="\t")
            return EXIT_OK
        if args.action == "undo":
            if not args.left.isdigit():
                raise UsageError("undo needs a rule id (crm identity list): crm identity undo RULE_ID")
            found = conn.execute("update ops.identity_rules set active = false, deactivated_at = now(),"
                                 " deactivation_reason = %s where rule_id = %s returning active",
                                 (args.reason or None, int(args.left))).fetchone()
            if found is None:
                raise UsageError(f"no identity rule {args.left} (crm identity list)")
            print(f"rule {args.left} deactivated; the next transform (crm transform / nightly run) undoes it")
            return EXIT_OK
        if conn.execute("select to_regclass('marts.customer_identities') is not null").fetchone()[0]:
            for ref in [r for r in (args.left, args.right) if r]:  # a rule that names nothing would do nothing
                kind, _, value = ref.partition(":")
                known = conn.execute(
                    "select 1 from marts.customer_identities where node_key = %s"
                    " or (identifier_type = %s and identifier_value = %s) limit 1", (ref, kind, value)).fetchone()
                if not known:
                    raise UsageError(f"{ref!r} is no identity node or identifier in the warehouse (node keys look"
                                     " like taobao:tmall_flagship:<buyer>, identifiers like phone:+8613800001234;"
                                     " see marts.customer_identities); nothing was recorded")
        rule = conn.execute("insert into ops.identity_rules (action, left_ref, right_ref, reason) values"
                            " (%s, %s, %s, %s) returning rule_id",
                            (args.action, args.left, args.right, args.reason)).fetchone()[0]
    print(f"rule {rule} recorded; it applies at the next transform (crm transform / nightly run)")
    return EXIT_OK


def print_table(headers: list[str], table: list[list[str]], right: tuple[int, ...] = ()) -> None:
    """Plain aligned columns (``right``: the numeric ones)."""
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    for row in [headers, *table]:
        cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(cells).rstrip())


def cmd_shops(args) -> int:
    """Each shop's freshness for a day (status), or one authenticated read per shop now (check)."""
    from crm_pipeline.extract import shops
    from crm_pipeline.warehouse import connect

    if args.action == "check":
        from crm_pipeline.clock import now
        from crm_pipeline.config import load_shops

        ensure_environment()
        ids = [s.shop_id for s in load_shops(resolve=False) if not args.shop or s.shop_id in args.shop]
        unknown = sorted(set(args.shop or ()) - set(ids))
        if unknown:
            print(f"no such shop in shops.yml: {', '.join(unknown)}", file=sys.stderr)
            return EXIT_USAGE
        from crm_pipeline.extract.run import read_watermark

        platform = {s.shop_id: s.platform for s in load_shops(resolve=False)}
        with connect() as conn:
            marks = {shop_id: read_watermark(conn, platform[shop_id], shop_id) for shop_id in ids}
        probes = [shops.probe(shop_id, now(), marks[shop_id]) for shop_id in ids]
        print_table(["shop", "platform", "result", "seconds", "what"],
                    [[p.shop_id, p.platform, "ok" if p.ok else "FAILED", f"{p.seconds:.1f}", p.message]
                     for p in probes], right=(3,))
        failed = [p.shop_id for p in probes if not p.ok]
        if failed:
            print(f"{len(failed)} shop(s) cannot be read now: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED if failed else EXIT_OK
    ensure_environment()
    if args.date is None:
        from crm_pipeline.clock import local_today

        args.date = local_today() - timedelta(days=1)
    with connect() as conn:
        rows = shops.status(conn, args.date)
    print_table(["shop", "platform", "current", "read up to", "last good run", "received", "landed", "quarantined"],
                [[r.shop_id, r.platform, "yes" if r.current else "NO",
                  f"{r.read_to:%Y-%m-%d %H:%M %Z}" if r.read_to else ("-" if r.platform == "intake" else "never"),
                  f"{r.last_good:%Y-%m-%d %H:%M %Z}" if r.last_good else "never",
                  *([str(n) for n in r.last_counts] if r.last_counts else ["-", "-", "-"])] for r in rows],
                right=(5, 6, 7))
    stale = [r for r in rows if not r.current]
    for r in stale:
        print(f"not current for {args.date}: {r.detail}")
    return EXIT_FAILED if stale else EXIT_OK


def cmd_quarantine(args) -> int:
    """What landed in raw.quarantine: a summary by kind of reason, or an export to fix the source."""
    from crm_pipeline.load import quarantine
    from crm_pipeline.warehouse import connect

    ensure_environment()
    with connect() as conn:
        if args.action == "export":
            if not args.file:
                print("export needs a file: crm quarantine export FILE.csv", file=sys.stderr)
                return EXIT_USAGE
            n = quarantine.export(conn, Path(args.file), shop=args.shop, since=args.since, open_only=args.open)
            print(f"wrote {n} quarantined record(s) to {args.file} (full reason and payload as received)")
            return EXIT_OK
        groups = quarantine.summarize(conn, shop=args.shop, since=args.since)
    if args.open:
        groups = [g for g in groups if g.open]
    if not groups:
        print("nothing quarantined" + (" and still open" if args.open else ""))
        return EXIT_OK
    print_table(["platform", "shop", "reason", "records", "open", "first", "last"],
                [[g.platform, g.shop_id, g.kind, str(g.records), str(g.open),
                  f"{g.first:%Y-%m-%d}", f"{g.last:%Y-%m-%d}"] for g in groups], right=(3, 4))
    total, still_open = sum(g.records for g in groups), sum(g.open for g in groups)
    print(f"{still_open} of {total} quarantined record(s) open (no valid version landed since); "
          "rows and payloads: crm quarantine export FILE.csv [--open]")
    return EXIT_OK


def cmd_optout(args) -> int:
    from crm_pipeline.errors import UsageError
    from crm_pipeline.load.normalize import normalize_email, normalize_phone
    from crm_pipeline.warehouse import connect

    ensure_environment()
    contact = None
    if args.phone:
        contact = normalize_phone(args.phone).e164
        if not contact:
            raise UsageError(f"--phone {args.phone!r} is not a valid phone number")
    elif args.email:
        contact = normalize_email(args.email)
        if not contact:
            raise UsageError(f"--email {args.email!r} is not a valid e-mail address")
    if not contact and not args.customer:
        raise UsageError("give --customer, --phone or --email")
    with connect(durable=True) as conn:
        if args.customer and conn.execute("select to_regclass('marts.customer_identities') is not null").fetchone()[0] \
                and not conn.execute("select 1 from outreach.customer_aliases() where alias_id = %s",
                                     (args.customer,)).fetchone():
            raise UsageError(f"no customer {args.customer} in the warehouse (marts.dim_customers, or an id a"
                             " customer had before a merge); nothing was recorded")
        if args.action == "add":
            conn.execute("insert into outreach.optouts (channel, customer_id, contact, source, reason)"
                         " values (%s, %s, %s, %s, %s) on conflict do nothing",
                         (args.channel, args.customer, contact, args.source, args.reason))
    print("opt-out recorded: messages already planned for this person are cancelled at send time, and no new"
          " ones are planned (R13)")
    return EXIT_OK


def cmd_erase(args) -> int:
    """Erase a person's personal data everywhere (PIPL / GDPR erasure, Shopify customers/redact)."""
    from crm_pipeline.errors import UsageError
    from crm_pipeline.load.normalize import normalize_email, normalize_phone
    from crm_pipeline.privacy import ErasureError, erase

    phones, emails = [], []
    for raw in args.phone or []:
        e164 = normalize_phone(raw).e164
        if not e164:
            raise UsageError(f"--phone {raw!r} is not a valid phone number")
        phones.append(e164)
    for raw in args.email or []:
        email = normalize_email(raw)
        if not email:
            raise UsageError(f"--email {raw!r} is not a valid e-mail address")
        emails.append(email)
    ensure_environment()
    settings = _settings()
    try:
        result = erase(None, phones, emails, args.customer or [], reason=args.reason,
                       file_roots=[settings.out_dir, settings.home, settings.intake_dir],
                       skip_files=[settings.home / "pg"], intake_dir=settings.intake_dir)
    except ErasureError as exc:
        raise UsageError(f"erase: {exc}") from exc
    if result.already_erased:
        print("already erased: nothing of this person is left in the warehouse")
    else:
        print(f"erased (tombstone {result.erasure_id}): {result.customers} customer id(s), {result.orders} order(s),"
              f" {result.phones} phone(s), {result.emails} e-mail(s); {len(result.tables)} table(s) and"
              f" {len(result.files)} file(s) rewritten. Order amounts, dates and items are kept.")
    return EXIT_OK


def cmd_optout_import(args) -> int:
    """'TD' replies exported from the SMS gateway: phone,content[,time] rows."""
    import csv

    from crm_pipeline.errors import BadInputFile
    from crm_pipeline.load.normalize import normalize_phone
    from crm_pipeline.warehouse import connect

    path = _input_file(args.file, "optout-import")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = path.read_bytes().decode("gb18030")
        except UnicodeDecodeError:
            raise BadInputFile(f"{path.name}: not a text CSV (neither UTF-8 nor GBK)") from None
    if "\x00" in text:
        raise BadInputFile(f"{path.name}: not a text CSV (it holds NUL bytes: a spreadsheet saved under a .csv name?)")
    ensure_environment()
    added = 0
    with connect(durable=True) as conn:
        for row in csv.reader(text.splitlines()):
            if len(row) < 2 or row[0].strip().lower() in ("phone", "phonenumber", "手机"):
                continue
            if row[1].strip().upper() in ("TD", "T", "N", "退订", "STOP", "UNSUBSCRIBE"):
                phone = normalize_phone(row[0]).e164
                if phone:
                    added += conn.execute("insert into outreach.optouts (channel, contact, source, reason) values"
                                          " ('sms', %s, 'td_reply', %s) on conflict do nothing",
                                          (phone, row[1].strip())).rowcount
    print(f"{added} new opt-out(s) from replies")
    return EXIT_OK


def cmd_calls(args) -> int:
    from crm_pipeline.errors import UsageError
    from crm_pipeline.warehouse import connect

    if args.action == "list":
        if args.file:
            raise UsageError("calls list takes no file (did you mean `crm calls import FILE`?)")
        ensure_environment()
        from crm_pipeline.pipeline import call_list

        facts = call_list(args.date, reissue=args.reissue)
        print(json.dumps(facts, indent=2, ensure_ascii=False))
        if not facts["issued_now"]:
            print(f"the call list for {facts['list_date']} was issued at {facts['issued_at']} and is kept as it is "
                  "(agents may be filling it in); missing files were written again. `--reissue` writes a new "
                  "version beside it.", file=sys.stderr)
        return EXIT_OK
    if args.reissue:
        raise UsageError("--reissue goes with `crm calls list`")
    path = _input_file(args.file, "calls import")
    ensure_environment()
    from crm_pipeline.outreach.calls import import_outcomes

    with connect(durable=True) as conn:
        print(json.dumps(import_outcomes(conn, path), ensure_ascii=False))
    return EXIT_OK


def cmd_campaign(args) -> int:
    from crm_pipeline.outreach import campaigns as camp
    from crm_pipeline.warehouse import connect

    ensure_environment()
    settings = _settings()
    campaign = camp.find_campaign(settings.config_dir / "campaigns", args.name)
    if args.action == "report":
        with connect() as conn:
            print(json.dumps(camp.report(conn, campaign), indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    from crm_pipeline.clock import now
    from crm_pipeline.outreach.ledger import plan, policy_screen
    from crm_pipeline.pipeline import _outreach_config, push_messages

    policy, gw = _outreach_config()
    send_day = args.date
    moment = now()  # one clock for the screen and the plan (a cap window must not move between them)
    with connect() as conn:
        proposals, counts = camp.plan_campaign(conn, campaign, send_day, settings.timezone,
                                               screen=policy_screen(conn, policy, moment, send_day - timedelta(days=1)))
        if args.action == "plan":
            from crm_pipeline.outreach.ledger import decide_proposals
            from crm_pipeline.outreach.templates import MissingPlaceholder, render, template_name

            decisions = decide_proposals(conn, proposals, policy, moment)
            by_rule: dict[str, int] = {}
            for d in decisions:
                if not d.sent:
                    by_rule[d.rule] = by_rule.get(d.rule, 0) + 1
            samples = []
            for p in proposals[:3]:
                try:
                    samples.append(render(settings.config_dir / "templates", template_name(p.template, p.candidate.channel),
                                          {"shop_name": gw.get("shop_name", ""), **p.params}).body)
                except MissingPlaceholder as exc:
                    samples.append(f"(not sendable: {exc})")
            conn.rollback()  # a dry run: assignments and budgets are not kept
            print(json.dumps({"campaign": campaign.name, "send_date": send_day.isoformat(), "audience": counts,
                              "after_policy": sum(1 for d in decisions if d.sent), "suppressed_by_rule": by_rule,
                              "samples": samples}, indent=2, ensure_ascii=False))
            return EXIT_OK
        stats = plan(conn, proposals, policy, moment, send_day - timedelta(days=1), settings.config_dir / "templates",
                     gw.get("shop_name", ""))
    print(json.dumps({"planned": stats.as_dict(), "push": push_messages(send_day - timedelta(days=1))},
                     indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_push(args) -> int:
    from crm_pipeline.pipeline import push_messages

    ensure_environment()
    print(json.dumps(push_messages(args.date), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_report(args) -> int:
    from crm_pipeline.reporting.report import write_report

    ensure_environment()
    print(write_report(args.date))
    return EXIT_OK


def cmd_clv(args) -> int:
    """Customer lifetime value for a day (issue 33): fit, score, backtest; prints the facts."""
    from crm_pipeline.pipeline import customer_clv

    ensure_environment()
    facts = customer_clv(args.date)  # a wrong config/clv.yml is a UsageError: exit 2
    print(json.dumps(facts, indent=2, ensure_ascii=False, default=str))
    return EXIT_OK


def cmd_summary(args) -> int:
    from crm_pipeline.pipeline import summary

    ensure_environment()
    print_summary(summary(args.date))
    return EXIT_OK


def cmd_warehouse(args) -> int:
    from crm_pipeline.warehouse.embedded import EmbeddedPostgres

    settings = _settings()
    embedded = EmbeddedPostgres(settings.home, settings.embedded_pg_port)
    if args.action == "start":
        print(ensure_environment())
    elif args.action == "stop":
        embedded.stop()
        print("embedded PostgreSQL stopped")
    elif args.action == "url":
        print(settings.warehouse_url or embedded.url())
    elif args.action == "migrate":
        ensure_environment()
        print("schemas up to date")
    return EXIT_OK


def cmd_sandbox(args) -> int:
    if args.action == "start":
        print(ensure_sandbox())
    elif args.action == "stop":
        print("stopped" if stop_sandbox() else "not running")
    else:
        from crm_pipeline.sandbox.__main__ import main

        return main([])
    return EXIT_OK


def cmd_airflow(args) -> int:
    ensure_environment()
    ensure_manifest()
    airflow_db_migrate()
    return airflow(airflow_args(args.rest), check=False).returncode


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ui_login(home: Path) -> tuple[str, str]:
    """The UI's user and password: Airflow's simple auth manager reads them from this file
    (written once with a random password, like `airflow standalone` would, but printed every time)."""
    import secrets

    path = home / "simple_auth_manager_passwords.json.generated"
    try:
        passwords = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        passwords = {}
    if not passwords.get("admin"):
        passwords["admin"] = secrets.token_urlsafe(12)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return "admin", passwords["admin"]


def airflow_ui_env(port: int) -> dict[str, str]:
    """`airflow standalone` for this project: the port and the execution API on it, parallelism for
    the machine's cores (each dbt model is a process), the login, the shops' time zone."""
    cores = max(2, os.cpu_count() or 2)
    base = f"http://localhost:{port}"
    return {
        **airflow_env(),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(cores),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(cores),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__API__INSTANCE_NAME": "crm-pipeline",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
    }


def cmd_airflow_ui(args) -> int:
    """The Airflow UI on this machine in one command (README "The Airflow UI")."""
    import requests

    from crm_pipeline.errors import UsageError

    if args.port is not None and not 1024 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: pick a port between 1024 and 65535")
    if args.port is not None and not _port_free(args.port):
        raise UsageError(f"port {args.port} is taken; pick another with --port, or leave it out for a free one")
    port = args.port or next(p for p in range(8080, 8200) if _port_free(p))
    _progress("warehouse, schemas and sandbox")
    ensure_environment(start_sandbox=True)
    ensure_manifest()
    _progress("Airflow metadata database")
    airflow_db_migrate()
    home = _settings().home / "airflow"
    user, password = ui_login(home)
    log_path = home / "standalone.log"
    env = airflow_ui_env(port)
    _progress(f"starting Airflow (scheduler, dag-processor, triggerer, api-server on port {port}); log: {log_path}")
    with log_path.open("a") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "standalone"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    import signal

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, interrupted)  # however it is stopped, Airflow and the sandbox stop with it
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow standalone exited ({proc.returncode}); the end of {log_path}:\n{tail}")
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"the Airflow UI did not answer on {url} within 5 minutes; see {log_path}")
            time.sleep(2)
        settings = _settings()
        print(f"""
The Airflow UI is up: {url}
  log in as   {user} / {password}   (kept in {home / 'simple_auth_manager_passwords.json.generated'})
  DAGs        crm_nightly (02:30 {settings.timezone}) and crm_intraday, paused: ▶ Trigger runs one now
              (crm_nightly closes the last business day that is over; set as_of_date in the form for another)
  time zone   the UI shows your browser's; pick {settings.timezone} under User > Timezone if it shows UTC
  sandbox     {settings.sandbox_url} (the platforms and gateways the shops point at)
  outputs     {settings.out_dir}/<date>/ (call lists, report)
Ctrl-C stops Airflow{'' if args.keep_sandbox else ' and the sandbox'}; the warehouse keeps running (`make stop`).
""", flush=True)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            _progress("stopping Airflow")
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if not args.keep_sandbox:
            stop_sandbox()
    return EXIT_OK


def airflow_args(rest: list[str]) -> list[str]:
    """What follows ``crm airflow``: argparse keeps the ``--`` of ``crm airflow -- dags test ...``."""
    return rest[1:] if rest[:1] == ["--"] else rest


def cmd_dbt_parse(args) -> int:
    print(ensure_manifest(force=True))
    return EXIT_OK


def cmd_setup_roles(args) -> int:
    from crm_pipeline.warehouse.roles import setup_roles

    ensure_environment()
    for line in setup_roles(analyst_password=args.analyst_password or os.environ.get("CRM_ANALYST_PASSWORD") or None,
                            ops_password=args.ops_password or os.environ.get("CRM_OPS_PASSWORD") or None):
        print(line)
    return EXIT_OK


def cmd_env_example(args) -> int:
    """Print .env.example from the settings tables (the single source of every variable)."""
    from crm_pipeline.settings import DEPLOY_ENV_VARS, ENV_VARS

    print("# Every environment variable the pipeline and docker-compose.yml read.")
    print("# Generated by `crm env-example > .env.example`; copy to .env and edit.")
    print("# Secrets of real shops/gateways: the env:NAME references in config/shops.yml")
    print("# and config/gateways.yml (e.g. CRM_SECRET_<SHOP_ID>_APP_SECRET), or Airflow connections.")
    print("# Pipeline variables are commented: the value shown is the default; uncomment to change.\n")
    for title, table in (("Pipeline (crm command, DAG tasks)", ENV_VARS), ("Deployment (docker-compose.yml)", DEPLOY_ENV_VARS)):
        print(f"# --- {title} ---")
        for name, (default, description) in table.items():
            print(f"# {description}")
            # pipeline variables stay commented (their defaults apply; compose sets its own
            # service URLs); deployment variables are live so compose interpolates them
            value = "" if default.startswith("(") or default.startswith("$") else default
            print(f"{'' if name in DEPLOY_ENV_VARS else '# '}{name}={value}")
        print()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    settings = _settings()
    p = argparse.ArgumentParser(prog="crm", description="CRM data pipeline for multi-platform online sellers.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        return sp

    sp = add("demo", cmd_demo, "run the real nightly DAG once on the embedded warehouse and sandbox; print a summary")
    sp.add_argument("--date", type=_day, help=f"business day (default {settings.demo_date})")
    sp.add_argument("--keep-sandbox", action="store_true", help="leave the sandbox server running")
    sp.add_argument("--json", help="also write the summary as JSON to this file")

    sp = add("run", cmd_run, "run the nightly steps without Airflow (same functions as the DAG)")
    sp.add_argument("--date", type=_day, required=True)
    sp.add_argument("--sandbox", action="store_true", help="start the sandbox if it is not running")
    sp.add_argument("--json", help="write the run's summary (as `crm demo --json`) to this file")

    sp = add("extract", cmd_extract, "extract one shop incrementally from its watermark")
    sp.add_argument("shop")
    sp.add_argument("--date", type=_day, required=True, help="business day to extract up to")
    sp.add_argument("--intraday", action="store_true", help="up to now instead of the end of the day (a nightly stops at now too when the day is not over)")

    sp = add("backfill", cmd_backfill, "re-extract a date range through the platform's backfill API")
    sp.add_argument("platform")
    sp.add_argument("--shop", required=True)
    sp.add_argument("--from", dest="date_from", type=_day, required=True)
    sp.add_argument("--to", dest="date_to", type=_day, required=True)

    sp = add("intake", cmd_intake, "import a spreadsheet (.xlsx/.csv, UTF-8 or GBK) for a social/offline shop")
    sp.add_argument("file")
    sp.add_argument("--shop", required=True)
    sp.add_argument("--map", action="append", metavar="SOURCE_COLUMN=FIELD", help="extra header mapping")

    sp = add("transform", cmd_transform, "dbt seed + build for a business day")
    sp.add_argument("--date", type=_day, required=True)
    sp.add_argument("--select")
    sp.add_argument("--full-refresh", action="store_true")

    sp = add("dbt", cmd_dbt, "any dbt command against this warehouse for a business day (as the pipeline"
                             " runs it): crm dbt --date D -- build --select +dim_customers")
    sp.add_argument("--date", type=_day, required=True)
    sp.add_argument("dbt_args", nargs=argparse.REMAINDER)

    sp = add("quality", cmd_quality, "run a GX checkpoint (raw_landing, outbound) or 'scaffold' the suites")
    sp.add_argument("action", help="raw_landing | outbound | scaffold")
    sp.add_argument("--date", type=_day, default=TODAY)

    sp = add("identity", cmd_identity, "manual identity rules: link two nodes, split a node or identifier, list,"
                                       " undo a rule")
    sp.add_argument("action", choices=["link", "split", "list", "undo"])
    sp.add_argument("left", nargs="?", help="node key (platform:shop:buyer) or identifier (phone:+86...);"
                                            " undo: the rule id")
    sp.add_argument("right", nargs="?", help="second node key (link)")
    sp.add_argument("--reason", default="")

    sp = add("quarantine", cmd_quarantine, "malformed records: 'list' by kind of reason (open = not landed since),"
                                           " or 'export' them with their payloads to a CSV")
    sp.add_argument("action", choices=["list", "export"])
    sp.add_argument("file", nargs="?", help="CSV to write (export)")
    sp.add_argument("--shop")
    sp.add_argument("--since", type=_day, help="quarantined on or after this day")
    sp.add_argument("--open", action="store_true", help="only records no later batch has landed")

    sp = add("shops", cmd_shops, "'status': how far each shop is read and whether that covers a day (exit 1 if"
                                 " not); 'check': one authenticated read per shop now, nothing landed")
    sp.add_argument("action", choices=["status", "check"])
    sp.add_argument("--date", type=_day, help="status: the business day to judge (default: yesterday, local)")
    sp.add_argument("--shop", action="append", help="check: only this shop (repeatable)")

    sp = add("erase", cmd_erase, "erase a person's personal data everywhere, on request (PIPL / GDPR /"
                                 " Shopify customers/redact); keeps order amounts, dates and items")
    sp.add_argument("--phone", action="append", help="a phone of the person (repeatable)")
    sp.add_argument("--email", action="append", help="an e-mail of the person (repeatable)")
    sp.add_argument("--customer", action="append", help="a customer id (repeatable)")
    sp.add_argument("--reason", default="", help="why (kept in the tombstone, ops.erasures)")

    sp = add("optout", cmd_optout, "record an opt-out (R13)")
    sp.add_argument("action", choices=["add"])
    sp.add_argument("--channel", choices=["sms", "email", "webhook", "phone", "all"], default="all")
    sp.add_argument("--customer")
    sp.add_argument("--phone")
    sp.add_argument("--email")
    sp.add_argument("--source", default="cli")
    sp.add_argument("--reason", default="")

    sp = add("optout-import", cmd_optout_import, "import 'TD' replies (CSV phone,content) from the SMS gateway")
    sp.add_argument("file")

    sp = add("calls", cmd_calls, "'list': the call list for the morning after a business day (issued once, then"
                                 " kept); 'import FILE': record a filled sheet (all rows or none)")
    sp.add_argument("action", choices=["list", "import"])
    sp.add_argument("file", nargs="?", help="import: the filled .xlsx (or the list's .csv)")
    sp.add_argument("--date", type=_day, default=TODAY, help="business day (the list is for the next day)")
    sp.add_argument("--reissue", action="store_true",
                    help="list: build the list again and write it as a new version beside the issued one")

    sp = add("campaign", cmd_campaign, "plan (dry run), push or report a campaign in config/campaigns/")
    sp.add_argument("action", choices=["plan", "push", "report"])
    sp.add_argument("name")
    sp.add_argument("--date", type=_day, default=TODAY, help="send date")

    sp = add("push", cmd_push, "send due messages from the ledger")
    sp.add_argument("--date", type=_day, default=TODAY)

    sp = add("report", cmd_report, "write out/<date>/report.html")
    sp.add_argument("--date", type=_day, required=True)

    sp = add("clv", cmd_clv, "customer lifetime value for a day: fit BG/NBD + Gamma-Gamma, score, backtest")
    sp.add_argument("--date", type=_day, required=True)

    sp = add("summary", cmd_summary, "print the run summary for a day from the warehouse")
    sp.add_argument("--date", type=_day, required=True)

    sp = add("warehouse", cmd_warehouse, "embedded PostgreSQL: start | stop | url | migrate")
    sp.add_argument("action", choices=["start", "stop", "url", "migrate"])

    sp = add("sandbox", cmd_sandbox, "sandbox platforms and gateways: start (background) | stop | serve")
    sp.add_argument("action", choices=["start", "stop", "serve"])

    sp = add("airflow", cmd_airflow, "run an airflow command with this project's environment (after --)")
    sp.add_argument("rest", nargs=argparse.REMAINDER)

    sp = add("airflow-ui", cmd_airflow_ui, "the Airflow UI for this project on this machine (airflow standalone):"
                                           " warehouse and sandbox started, a free port, the login printed")
    sp.add_argument("--port", type=int, help="port of the UI (default: 8080, or the next free one)")
    sp.add_argument("--keep-sandbox", action="store_true", help="leave the sandbox running when Airflow stops")

    add("dbt-parse", cmd_dbt_parse, "build dbt_project/target/manifest.json (what Cosmos renders)")

    add("env-example", cmd_env_example, "print .env.example (every environment variable, with defaults)")
    sp = add("setup-roles", cmd_setup_roles, "create crm_analyst (masked marts) and crm_ops (full contact) roles")
    sp.add_argument("--analyst-password")
    sp.add_argument("--ops-password")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with a defaulted ``--date`` resolved to today in CRM_TIMEZONE."""
    args = build_parser().parse_args(argv)
    if getattr(args, "date", None) is TODAY:
        from crm_pipeline.clock import local_today

        args.date = local_today()
    return args


def main(argv: list[str] | None = None) -> int:
    import logging

    from crm_pipeline.pii import install_log_masking

    settings = _settings()
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "urllib3", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_masking()
    args = parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # one clear message, the README's exit code
        from crm_pipeline.pii import redact

        code = exit_code(exc)
        print(f"crm {args.command}: {redact(str(exc))}", file=sys.stderr)
        if os.environ.get("CRM_DEBUG"):
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
