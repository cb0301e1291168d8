"""Issue 6 §5: analysts read masked marts only; ops read full contact data."""

from __future__ import annotations

import psycopg
import pytest
from helpers import rows

pytestmark = pytest.mark.integration


def as_role(url: str, role: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


@pytest.fixture(scope="module")
def roles_db(modeled, clone_database):
    from crm_pipeline.warehouse.roles import setup_roles

    url = clone_database(modeled, "roles")
    lines = setup_roles(url)
    assert any("masked views" in line for line in lines)
    return url


def test_analyst_cannot_select_a_raw_phone(roles_db):
    analyst = as_role(roles_db, "crm_analyst")
    for table, column in (("marts.dim_customers", "phone_e164"), ("raw.taobao_trades", "payload"),
                          ("outreach.message_ledger", "recipient"), ("staging.stg_shopify__orders", "*")):
        with psycopg.connect(analyst) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select {column} from {table} limit 1")


def test_analyst_reads_marts_with_contacts_masked(roles_db):
    analyst = as_role(roles_db, "crm_analyst")
    real = {r[0]: r[1] for r in rows(roles_db, "select customer_id, phone_e164 from marts.dim_customers"
                                                " where phone_e164 is not null")}
    with psycopg.connect(analyst) as conn:
        seen = conn.execute("select customer_id, phone_e164, email from analyst.dim_customers").fetchall()
        ident = conn.execute("select identifier_value from analyst.customer_identities"
                             " where identifier_type = 'phone'").fetchall()
    assert len(seen) == rows(roles_db, "select count(*) from marts.dim_customers")[0][0]
    masked = [(c, p) for c, p, _ in seen if p]
    assert masked and all("****" in p and p != real[c] for c, p in masked)
    emails = [e for _, _, e in seen if e]
    assert emails and all(e.split("@")[0].endswith("***") and len(e.split("@")[0]) == 4 for e in emails)
    assert ident and all("****" in v for (v,) in ident)


def test_ops_reads_full_contacts(roles_db):
    ops = as_role(roles_db, "crm_ops")
    with psycopg.connect(ops) as conn:
        phone = conn.execute("select phone_e164 from marts.dim_customers where phone_e164 is not null limit 1").fetchone()
    assert phone and phone[0].startswith("+86") and "*" not in phone[0]


def test_views_survive_a_rebuild(roles_db):
    """dbt swaps tables (dropping dependent views); the transform step re-creates them."""
    from conftest import MODEL_AS_OF
    from crm_pipeline import pipeline

    pipeline.transform(MODEL_AS_OF, url=roles_db, select="dim_customers")
    with psycopg.connect(as_role(roles_db, "crm_analyst")) as conn:
        assert conn.execute("select count(*) from analyst.dim_customers").fetchone()[0] > 0


def test_crm_dbt_runs_dbt_as_the_pipeline_does_and_keeps_the_views(roles_db):
    """An analyst's own dbt command through `crm dbt`: this warehouse, the business day as
    a var, and the masked views a rebuilt mart drops are put back (a plain `dbt run`
    dropped analyst.dim_customers until the next night)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from conftest import MODEL_AS_OF

    env = {**os.environ, "CRM_WAREHOUSE_URL": roles_db}
    crm = str(Path(sys.executable).parent / "crm")
    done = subprocess.run([crm, "dbt", "--date", MODEL_AS_OF.isoformat(), "--", "run", "--select", "dim_customers"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(as_role(roles_db, "crm_analyst")) as conn:
        assert conn.execute("select count(*) from analyst.dim_customers").fetchone()[0] > 0
    bare = subprocess.run([crm, "dbt", "--date", MODEL_AS_OF.isoformat()], env=env, capture_output=True, text=True)
    assert bare.returncode == 2 and "name the dbt command" in bare.stderr
