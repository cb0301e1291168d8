"""Roles and PII (never leak phones and e-mails to people who do not need them).

* ``crm_analyst`` reads the marts only through views in schema ``analyst``,
  where phones, e-mails and street addresses are masked; it has no access to
  raw, staging, intermediate, marts or outreach.
* ``crm_ops`` reads the outreach schema and the marts with full contact data
  (it has to call and message customers).

dbt rebuilds mart tables (drop + rename), which drops dependent views, so
``refresh_masked_views`` runs after every transform.
"""

from __future__ import annotations

from psycopg import sql

MASKS = {
    "phone_e164": "case when {c} is null then null else left({c}, 5) || '****' || right({c}, 2) end",
    "phone": "case when {c} is null then null else left({c}, 3) || '****' || right({c}, 2) end",
    "recipient": "case when {c} is null then null else left({c}, 3) || '****' || right({c}, 2) end",
    "masked_phone": "case when {c} is null then null else left({c}, 3) || '****' || right({c}, 2) end",
    "email": "case when {c} is null then null else left({c}, 1) || '***@' || split_part({c}, '@', 2) end",
    "address": "case when {c} is null then null else left({c}, 6) || '…' end",
}
IDENTIFIER_MASK = ("case when identifier_type in ('phone', 'email') then left(identifier_value, 3) || '****' "
                   "|| right(identifier_value, 2) else identifier_value end")


def _ident_list(conn, schema: str, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
        " order by ordinal_position", (schema, table))]


def refresh_masked_views(conn) -> list[str]:
    """(Re)create analyst.<mart> views with PII masked; grant them to crm_analyst if it exists."""
    conn.execute("create schema if not exists analyst")
    tables = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
    made = []
    for table in tables:
        exprs = []
        for col in _ident_list(conn, "marts", table):
            if col in MASKS:
                exprs.append(sql.SQL(MASKS[col].replace("{c}", "{}") + " as {}").format(
                    *([sql.Identifier(col)] * MASKS[col].count("{c}")), sql.Identifier(col)))
            elif table == "customer_identities" and col == "identifier_value":
                exprs.append(sql.SQL(IDENTIFIER_MASK + " as identifier_value"))
            else:
                exprs.append(sql.Identifier(col))
        conn.execute(sql.SQL("create or replace view analyst.{} as select {} from marts.{}").format(
            sql.Identifier(table), sql.SQL(", ").join(exprs), sql.Identifier(table)))
        made.append(table)
    if conn.execute("select 1 from pg_roles where rolname = 'crm_analyst'").fetchone():
        conn.execute("grant usage on schema analyst to crm_analyst")
        conn.execute("grant select on all tables in schema analyst to crm_analyst")
    if conn.execute("select 1 from pg_roles where rolname = 'crm_ops'").fetchone():
        conn.execute("grant usage on schema marts, outreach, reference to crm_ops")
        conn.execute("grant select on all tables in schema marts, outreach, reference to crm_ops")
    return made


def setup_roles(url: str | None = None, analyst_password: str | None = None,
                ops_password: str | None = None) -> list[str]:
    from crm_pipeline.warehouse import connect

    lines = []
    with connect(url) as conn:
        for role, password in (("crm_analyst", analyst_password), ("crm_ops", ops_password)):
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
                lines.append(f"created role {role}")
            if password:
                conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password)))
        db = conn.execute("select current_database()").fetchone()[0]
        conn.execute(sql.SQL("grant connect on database {} to crm_analyst, crm_ops").format(sql.Identifier(db)))
        for schema in ("raw", "ops", "staging", "intermediate", "marts", "outreach", "snapshots", "reference"):
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("revoke all on schema {} from crm_analyst").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("revoke all on all tables in schema {} from crm_analyst").format(sql.Identifier(schema)))
        conn.execute("revoke all on schema public from crm_analyst")
        made = refresh_masked_views(conn)
        lines.append(f"crm_analyst reads {len(made)} masked views in schema analyst")
        lines.append("crm_ops reads marts, outreach and reference with full contact data")
    return lines
