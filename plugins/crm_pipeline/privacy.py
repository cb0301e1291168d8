"""Erasure on request (PIPL art. 47, GDPR art. 17, Shopify's ``customers/redact``): ``crm erase``.

A seller asked to delete a customer's personal data runs
``crm erase --phone P | --email E | --customer ID [--reason ...]``. The person is found
through the identity marts (every customer who holds the phone or e-mail, or the
customer id and the ids it has had) and through the raw layer (orders that carry the
phone or e-mail but are not modelled yet). Then, in one transaction:

* **raw payloads and their version history**: every value under a personal key (names,
  phones, e-mails, street addresses, postcodes, nicknames) is replaced by ``[erased]``,
  platform buyer ids by a pseudonym (``erased-…``, the same for the same id, so the
  person's orders stay one anonymous buyer), ``derived`` phones, e-mails and decrypted
  fields are emptied. Amounts, dates, statuses and items stay: the shop's accounts need
  them. The payload hash stays the one of what the platform sent, so re-reading an
  unchanged order lands nothing; a changed one is masked on landing (the tombstone);
* **every other table** (intermediate, marts, snapshots, quarantine, outreach ledger,
  call outcomes, ...): the person's phones and e-mails in any stored form (E.164, domestic,
  with separators) are replaced wherever they appear, and the rows of the person's
  customer ids, orders and identity nodes lose their names, addresses and enrichment;
  node keys carrying the buyer id get the pseudonym;
* **opt-outs** the person gave are kept as a hash of the contact (a suppression list:
  erased is not the same as "message me again");
* a **tombstone** in ``ops.erasures`` / ``ops.erased_orders``: a hash of each identifier,
  the date, the reason and the (shop, order id) pairs, so later extractions of the same
  orders are masked when they land.

After the commit, the files the pipeline wrote (call lists, reports, alert lists, logs,
spreadsheets in the inbox) are rewritten without the phones and e-mails (and, in call
sheets, without the person's name), and the touched tables are rewritten with
``VACUUM FULL`` (old row versions and their statistics are gone from the data files; the
embedded warehouse also drops its old WAL). Idempotent: erasing again finds nothing new
and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crm_pipeline.pii import get_logger

log = get_logger(__name__)
MASK = "[erased]"

# keys whose values are personal wherever they appear in a platform payload (lower case)
PERSONAL_KEYS = frozenset("""
    name nick nickname fullname first_name last_name company buyer_nick receiver_name fans_nickname
    buyer_name consignee contact_name
    phone mobile telephone tel email buyer_phone buyer_email receiver_mobile receiver_phone receiver_tel
    contact_email contact_phone
    address address1 address2 address_1 address_2 address_detail fulladdress street receiver_address
    delivery_address zip postcode receiver_zip delivery_postal_code
    wechat wechat_id note buyer_message buyer_memo customer_note
""".split())
# name-like keys that, inside these containers, name a product, a shipping method or a fulfilment,
# not a person (Shopify and WooCommerce line items have a "name")
NAME_KEYS = frozenset("name nick nickname fullname first_name last_name company".split())
ITEM_CONTAINERS = frozenset("""
    line_items items orders order iteminfolist shipping_lines tax_lines discount_codes
    discount_applications fulfillments refunds refund_line_items coupon_lines fee_lines meta_data
    note_attributes properties
""".split())
# keys holding a platform's buyer id: pseudonymised, not blanked (the orders stay one buyer)
BUYER_ID_KEYS = frozenset("buyer_open_uid open_id_buyer pin yz_open_id fans_id outer_user_id buyer_id"
                          " customer_id open_id union_id".split())
# columns of modelled tables that hold a person's data, by name (rows of the person only)
PERSONAL_COLUMNS = frozenset("""
    name receiver_name buyer_nick address phone_e164 masked_phone email recipient body notes preferences tags
    gender phones emails buyer_platform_id params name_norm address_norm holder context
""".split())
SCHEMAS_SKIPPED = ("pg_catalog", "information_schema", "pg_toast")
TEXT_SUFFIXES = {".csv", ".txt", ".log", ".json", ".jsonl", ".html", ".htm", ".md", ".yml", ".yaml", ".xml",
                 ".sql", ".out", ".err", ".tsv", ""}


class ErasureError(ValueError):
    """Nothing to erase by (no identifier given, or it names nobody)."""


@dataclass
class Person:
    customer_ids: set[str] = field(default_factory=set)  # current ids and the ids the person had before
    phones: set[str] = field(default_factory=set)  # E.164
    emails: set[str] = field(default_factory=set)  # lower case
    buyer_ids: set[str] = field(default_factory=set)  # platform buyer ids, as text
    node_keys: set[str] = field(default_factory=set)
    orders: set[tuple[str, str, str]] = field(default_factory=set)  # (platform, shop_id, order_id)
    names: set[str] = field(default_factory=set)  # names and nicknames the orders carry
    addresses: set[str] = field(default_factory=set)  # full addresses the orders carry

    @property
    def order_keys(self) -> list[str]:
        return sorted(f"{p}:{s}:{o}" for p, s, o in self.orders)

    def identifier_hashes(self) -> list[str]:
        return sorted(sha256(v) for v in self.phones | self.emails)

    def keys(self) -> set[str]:
        """Values that tie a record to the person: their ids, order keys, node keys, buyer ids."""
        return self.customer_ids | set(self.order_keys) | self.node_keys | self.buyer_ids


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def pseudonym(salt: str, value: object) -> str:
    return "erased-" + hashlib.sha256(f"{salt}|{value}".encode()).hexdigest()[:16]


def _plain(value: str | None) -> bool:
    """A value worth erasing (not empty, not already a mask)."""
    return bool(value) and not str(value).startswith((MASK, "erased-", "sha256:")) and len(str(value).strip()) >= 2


# -- patterns: every form a phone or e-mail is stored in ------------------------------------
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
SEPARATORS = r"[\s.()（）\-]{0,2}"


def phone_pattern(e164: str) -> str:
    """A regex (Python and PostgreSQL alike) for a phone in E.164, domestic, with separators
    (spaces, dashes, dots, brackets) or in full-width digits, as people type them."""
    national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    digits = SEPARATORS.join(f"[{d}{FULLWIDTH[d]}]" for d in national)
    if e164.startswith("+86"):
        return rf"(?:(?:\+|00|＋)?[8８][6６]{SEPARATORS})?" + digits
    return r"\+?" + digits


def contact_pattern(person: Person) -> str | None:
    parts = [phone_pattern(p) for p in sorted(person.phones) if _plain(p)] \
        + [re.escape(e) for e in sorted(person.emails) if _plain(e)]
    return "|".join(parts) or None


def scrub_text(text: str, pattern: re.Pattern | None) -> str:
    return pattern.sub(MASK, text) if pattern else text


def mask_payload(value, salt: str, pattern: re.Pattern | None, parent: str = "", in_items: bool = False,
                 platform: str = ""):
    """A platform payload with the personal values masked and buyer ids pseudonymised."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = str(k).lower()
            # Shopify's top-level "name" is the order number (#1001), not a person
            order_number = platform == "shopify" and parent == "" and key == "name"
            personal = key in PERSONAL_KEYS and not (in_items and key in NAME_KEYS) and not order_number
            if personal and isinstance(v, (str, int, float)) and v != "":
                out[k] = MASK
            elif (key in BUYER_ID_KEYS or (key == "id" and parent == "customer")) and isinstance(v, (str, int)) \
                    and str(v) not in ("", "0") and not in_items:
                out[k] = pseudonym(salt, v)
            else:
                out[k] = mask_payload(v, salt, pattern, key, in_items or key in ITEM_CONTAINERS, platform)
        return out
    if isinstance(value, list):
        return [mask_payload(v, salt, pattern, parent, in_items, platform) for v in value]
    if isinstance(value, str):
        return scrub_text(value, pattern)
    return value


# any mainland mobile or e-mail in free text, for orders landing after an erasure (the tombstone
# keeps no contact to look for)
ANY_CONTACT = re.compile(r"(?:(?:\+|00)?86[\s-]?)?1[3-9](?:[\s.()-]{0,2}\d){9}|[^@\s\"']+@[^@\s\"']+\.[A-Za-z]{2,}")


def erased_record(record, derived: dict | None, salt: str, platform: str = "") -> tuple[bytes, dict]:
    """A landing record of an erased person's order, masked as ``crm erase`` masks (landing.py)."""
    from crm_pipeline.load.landing import canonical

    return canonical(mask_payload(record, salt, ANY_CONTACT, platform=platform)), mask_derived(derived)


def mask_derived(derived: dict | None) -> dict:
    """The landing's derived fields without the phones, e-mails and decrypted values."""
    out = dict(derived or {})
    for key in ("phones", "masked_phones", "emails"):
        if key in out:
            out[key] = []
    if "enrichment" in out:
        out["enrichment"] = {}
    return out


def mask_records(value, person: Person, pattern: re.Pattern | None):
    """A JSON value (a call list's rows, a message's params, a run's facts) with the records that
    belong to the person stripped of their personal fields, and their contacts masked anywhere."""
    if isinstance(value, dict):
        mine = any(isinstance(v, str) and v in person.keys() for v in value.values())
        return {k: (MASK if mine and (str(k).lower() in PERSONAL_KEYS | PERSONAL_COLUMNS | CONTEXT_KEYS)
                    and isinstance(v, str) and v else mask_records(v, person, pattern))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_records(v, person, pattern) for v in value]
    if isinstance(value, str):
        new = scrub_text(value, pattern)
        return MASK if new in person.names or new in person.addresses else new
    return value


# a call list's free text about the customer (what the agent wrote, the reason for the call)
CONTEXT_KEYS = frozenset("context notes preferences tags remark".split())


# -- who ----------------------------------------------------------------------------------
def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def find_person(conn, phones: Iterable[str] = (), emails: Iterable[str] = (),
                customers: Iterable[str] = ()) -> Person:
    """Everyone the identifiers name, with every identifier, node, order and earlier id of theirs."""
    from crm_pipeline.platforms import PLATFORMS

    person = Person(phones=set(phones), emails={e.lower() for e in emails})
    given = set(customers)
    current: set[str] = set()
    if _exists(conn, "marts.customer_identities"):
        contacts = sorted(person.phones | person.emails)
        current |= {r[0] for r in conn.execute(
            "select distinct customer_id from marts.customer_identities"
            " where identifier_type in ('phone', 'email') and identifier_value = any(%s)", (contacts,))}
        # a given id: the customers it is now (itself, the one it merged into, the halves of a split)
        current |= {r[0] for r in conn.execute(
            "select customer_id from outreach.customer_aliases() where alias_id = any(%s)", (sorted(given),))}
        for node, kind, value in conn.execute(
                "select node_key, identifier_type, identifier_value from marts.customer_identities"
                " where customer_id = any(%s)", (sorted(current),)):
            person.node_keys.add(node)
            if kind == "phone" and _plain(value):
                person.phones.add(value)
            elif kind == "email" and _plain(value):
                person.emails.add(value)
        # and every id they had before: what was recorded under it (call outcomes, the ledger)
        earlier = {r[0] for r in conn.execute(
            "select alias_id from outreach.customer_aliases() where customer_id = any(%s)", (sorted(current),))}
        person.customer_ids = current | earlier | (given & earlier)
    if _exists(conn, "marts.fct_orders"):
        found = conn.execute(
            "select platform, shop_id, order_id, buyer_platform_id, receiver_name, null::text, address"
            " from marts.fct_orders where customer_id = any(%s)", (sorted(current),)).fetchall()
        # the same platform accounts' other orders: those that carry only a masked phone
        # (a shop not allowed to decrypt) were never linked to the person by their phone
        buyers = sorted({(r[0], str(r[3])) for r in found if r[3] and _plain(str(r[3]))})
        if buyers:
            found += conn.execute(
                "select platform, shop_id, order_id, buyer_platform_id, receiver_name, null::text, address"
                " from marts.fct_orders where (platform, buyer_platform_id) in"
                " (select * from unnest(%s::text[], %s::text[]))",
                ([b[0] for b in buyers], [b[1] for b in buyers])).fetchall()
        for platform, shop, order_id, buyer, receiver, nick, address in found:
            person.orders.add((platform, shop, order_id))
            if buyer and _plain(str(buyer)):
                person.buyer_ids.add(str(buyer))
            person.names |= {v for v in (receiver, nick) if _plain(v)}
            if _plain(address):
                person.addresses.add(address)
    if _exists(conn, "marts.dim_customers") and current:
        person.names |= {r[0] for r in conn.execute(
            "select name from marts.dim_customers where customer_id = any(%s)", (sorted(current),)) if _plain(r[0])}
    # orders that carry the phone or e-mail in the raw layer (not modelled yet, or modelled
    # under someone the identity rules keep apart): they are the person's too
    contacts = sorted(person.phones | person.emails)
    for spec in PLATFORMS.values():
        for shop, order_id, derived in conn.execute(
                f"select shop_id, order_id, derived from raw.{spec.raw_table}"
                " where derived -> 'phones' ?| %s or derived -> 'emails' ?| %s", (contacts, contacts)):
            person.orders.add((spec.name, shop, order_id))
            person.phones |= {v for v in (derived or {}).get("phones") or [] if _plain(v)}
            person.emails |= {v for v in (derived or {}).get("emails") or [] if _plain(v)}
    return person


# -- the warehouse ----------------------------------------------------------------------------
def _tombstone(conn, person: Person, reason: str) -> tuple[int, str, bool]:
    """(erasure id, salt, new): the person's earlier tombstone when their orders have one (the same
    pseudonyms again), else a new one."""
    earlier = conn.execute(
        "select e.erasure_id, e.salt from ops.erased_orders o join ops.erasures e using (erasure_id)"
        " where (o.platform, o.shop_id, o.order_id) in (select * from unnest(%s::text[], %s::text[], %s::text[]))"
        " order by e.erasure_id limit 1",
        ([p for p, _, _ in person.orders], [s for _, s, _ in person.orders], [o for _, _, o in person.orders]),
    ).fetchone() if person.orders else None
    if earlier:
        erasure_id, salt = earlier
        conn.execute("update ops.erasures set identifier_hashes = (select array_agg(distinct h) from"
                     " unnest(identifier_hashes || %s::text[]) h) where erasure_id = %s",
                     (person.identifier_hashes(), erasure_id))
        new = False
    else:
        erasure_id, salt = conn.execute(
            "insert into ops.erasures (identifier_hashes, customer_ids, orders, reason, salt)"
            " values (%s, %s, %s, %s, %s) returning erasure_id, salt",
            (person.identifier_hashes(), sorted(person.customer_ids), len(person.orders), reason,
             secrets.token_hex(16))).fetchone()
        new = True
    with conn.cursor() as cur:
        cur.executemany("insert into ops.erased_orders (platform, shop_id, order_id, erasure_id) values"
                        " (%s, %s, %s, %s) on conflict (platform, shop_id, order_id) do nothing",
                        [(p, s, o, erasure_id) for p, s, o in sorted(person.orders)])
    return erasure_id, salt, new


def _mask_raw(conn, person: Person, salt: str, pattern: re.Pattern | None) -> dict[str, int]:
    from crm_pipeline.platforms import PLATFORMS

    counts: dict[str, int] = {}
    by_platform: dict[str, list[tuple[str, str]]] = {}
    for platform, shop, order_id in person.orders:
        by_platform.setdefault(platform, []).append((shop, order_id))
    for platform, keys in by_platform.items():
        table = PLATFORMS[platform].raw_table
        for relation in (f"raw.{table}", f"raw.{table}_versions"):
            rows = conn.execute(
                f"select ctid, payload, derived from {relation}"
                " where (shop_id, order_id) in (select * from unnest(%s::text[], %s::text[]))",
                ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
            changed = 0
            for ctid, payload, derived in rows:
                masked, masked_derived = mask_payload(payload, salt, pattern, platform=platform), mask_derived(derived)
                if masked == payload and masked_derived == (derived or {}):
                    continue
                conn.execute(f"update {relation} set payload = %s, derived = %s, loaded_at = now() where ctid = %s",
                             (json.dumps(masked, ensure_ascii=False),
                              json.dumps(masked_derived, ensure_ascii=False), ctid))
                changed += 1
            if changed:
                counts[relation] = changed
    # quarantined records of the person: by order id, or carrying one of their buyer ids
    order_ids = sorted({o for _, _, o in person.orders})
    quarantined = conn.execute(
        "select quarantine_id, platform, payload from raw.quarantine where record_ref = any(%s)"
        " or payload ~ any(%s)", (order_ids, [re.escape(b) for b in sorted(person.buyer_ids)] or ["^$"])).fetchall()
    changed = 0
    for qid, platform, payload in quarantined:
        try:
            masked = json.dumps(mask_payload(json.loads(payload), salt, pattern, platform=platform), ensure_ascii=False)
        except (TypeError, ValueError):
            masked = scrub_text(payload or "", pattern)
        if masked != payload:
            conn.execute("update raw.quarantine set payload = %s where quarantine_id = %s", (masked, qid))
            changed += 1
    if changed:
        counts["raw.quarantine"] = changed
    return counts


def _columns(conn) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> [(column, type)] of every base table's text, json and array columns."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, kind in conn.execute(
            "select c.table_schema, c.table_name, c.column_name, c.udt_name"
            " from information_schema.columns c join information_schema.tables t"
            " on t.table_schema = c.table_schema and t.table_name = c.table_name"
            " where t.table_type = 'BASE TABLE' and c.table_schema <> all(%s)"
            " and c.udt_name in ('text', 'varchar', 'bpchar', 'jsonb', 'json', '_text', 'date')"
            " order by 1, 2, c.ordinal_position", (list(SCHEMAS_SKIPPED),)):
        found.setdefault((schema, table), []).append((column, kind))
    return found


def _ident(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _scrub_tables(conn, person: Person, salt: str) -> list[str]:
    """Phones and e-mails out of every table; the person's rows and records out of the others."""
    touched: set[str] = set()
    pattern = contact_pattern(person)
    regex = re.compile(pattern, re.IGNORECASE) if pattern else None
    # each contact its own mask ("[erased]-<hash>"): two erased phones stay two values, so a
    # table keyed by identifier keeps its keys distinct
    masks = [(phone_pattern(p), f"{MASK}-{pseudonym(salt, p)[7:15]}") for p in sorted(person.phones) if _plain(p)] \
        + [(re.escape(e), f"{MASK}-{pseudonym(salt, e)[7:15]}") for e in sorted(person.emails) if _plain(e)]
    nodes = {n: _node_pseudonym(n, salt) for n in person.node_keys if _plain(n)}
    marks = sorted(v for v in person.keys() if _plain(v))
    for (schema, table), cols in _columns(conn).items():
        if (schema, table) in (("ops", "erasures"), ("ops", "erased_orders"), ("ops", "schema_migrations")):
            continue
        rel = _ident(schema, table)
        names = {c for c, _ in cols}
        texts = [(c, k) for c, k in cols if k != "date"]
        if pattern and texts:
            params = {"p": pattern} | {f"p{i}": p for i, (p, _) in enumerate(masks)} \
                | {f"m{i}": m for i, (_, m) in enumerate(masks)}

            def replaced(column: str) -> str:
                expr = f"{_ident(column)}::text"
                for i in range(len(masks)):
                    expr = f"regexp_replace({expr}, %(p{i})s, %(m{i})s, 'gi')"
                return expr

            sets = ", ".join(f"{_ident(c)} = case when {_ident(c)}::text ~* %(p)s then {replaced(c)}::{k}"
                             f" else {_ident(c)} end" for c, k in texts)
            where = " or ".join(f"{_ident(c)}::text ~* %(p)s" for c, _ in texts)
            if conn.execute(f"update {rel} set {sets} where {where}", params).rowcount:
                touched.add(rel)
        keys = [k for k in ("customer_id", "order_key", "node_key") if k in names]
        personal = [(c, k) for c, k in cols if c in PERSONAL_COLUMNS or c in ("birthday",)]
        if keys and personal and (person.customer_ids or person.orders or person.node_keys):
            sets = ", ".join(_blank(c, k) for c, k in personal)
            where = " or ".join({"customer_id": f"{_ident('customer_id')} = any(%(ids)s)",
                                 "order_key": f"{_ident('order_key')} = any(%(orders)s)",
                                 "node_key": f"{_ident('node_key')} = any(%(nodes)s)"}[k] for k in keys)
            pending = " or ".join(_not_blank(c, k) for c, k in personal)
            if conn.execute(f"update {rel} set {sets} where ({where}) and ({pending})",
                            {"ids": sorted(person.customer_ids), "orders": person.order_keys,
                             "nodes": sorted(person.node_keys)}).rowcount:
                touched.add(rel)
        if "identifier_value" in names and "identifier_type" in names and "node_key" in names:
            if conn.execute(f"update {rel} set identifier_value = %(mask)s || '-' || md5(identifier_value)"
                            " where node_key = any(%(nodes)s) and identifier_type in ('name_address', 'phone', 'email')"
                            " and identifier_value not like '[erased]%%'",
                            {"mask": MASK, "nodes": sorted(person.node_keys)}).rowcount:
                touched.add(rel)
        # JSON records that belong to the person (a call list's rows, a message's params)
        for column in [c for c, k in cols if k in ("jsonb", "json")]:
            if not marks:
                break
            found = conn.execute(f"select ctid, {_ident(column)} from {rel} where {_ident(column)}::text ~ %s",
                                 ("|".join(re.escape(m) for m in marks),)).fetchall()
            for ctid, value in found:
                masked = mask_records(value, person, regex)
                if masked != value:
                    conn.execute(f"update {rel} set {_ident(column)} = %s where ctid = %s",
                                 (json.dumps(masked, ensure_ascii=False), ctid))
                    touched.add(rel)
        # node keys carry the buyer id: the pseudonym instead, wherever a column holds one
        for column in [c for c, k in texts if "node" in c or c in ("identifier_value", "left_ref", "right_ref")]:
            for old, new in nodes.items():
                if conn.execute(f"update {rel} set {_ident(column)} = %s where {_ident(column)} = %s",
                                (new, old)).rowcount:
                    touched.add(rel)
    return sorted(touched)


def _node_pseudonym(node_key: str, salt: str) -> str:
    platform, shop, buyer = (node_key.split(":", 2) + ["", ""])[:3]
    if buyer.startswith(("order:", "erased-")) or not buyer:
        return node_key
    return f"{platform}:{shop}:{pseudonym(salt, buyer)}"


def _not_blank(column: str, kind: str) -> str:
    """SQL: the column still holds something _blank would blank."""
    c = _ident(column)
    if kind == "date":
        return f"{c} is not null"
    if kind == "jsonb" and column == "params":
        return f"coalesce({c} ->> 'name', '{MASK}') <> '{MASK}'"
    if kind in ("jsonb", "json"):
        return f"{c}::text not in ('[]', 'null')"
    if kind == "_text":
        return f"cardinality({c}) > 0"
    return f"{c} <> '{MASK}'"


def _blank(column: str, kind: str) -> str:
    c = _ident(column)
    if kind == "date":
        return f"{c} = null"
    if kind == "jsonb" and column == "params":
        return f"{c} = case when {c} ? 'name' then jsonb_set({c}, '{{name}}', to_jsonb('{MASK}'::text)) else {c} end"
    if kind in ("jsonb", "json"):
        return f"{c} = case when {c} is null then null else '[]'::{kind} end"
    if kind == "_text":
        return f"{c} = case when {c} is null then null else '{{}}'::text[] end"
    return f"{c} = case when {c} is null then null else '{MASK}' end"


def _keep_opt_outs(conn, person: Person) -> int:
    """The person's opt-outs stay in force (R13 outlives the data): an opt-out by contact becomes
    a hash of the contact, and one by customer id gets one on the same channel for each of the
    person's phones and e-mails, so a new order under a new id still meets it."""
    contacts = sorted(c for c in person.phones | person.emails if _plain(c))
    n = conn.execute(
        "insert into outreach.optouts (channel, contact, source, reason)"
        " select distinct o.channel, 'sha256:' || encode(sha256(convert_to(c, 'UTF8')), 'hex'), 'erasure',"
        "        'kept from opt-out ' || o.optout_id || ' of an erased person'"
        " from outreach.optouts o cross join unnest(%s::text[]) c"
        " where o.customer_id = any(%s) on conflict do nothing",
        (contacts, sorted(person.customer_ids))).rowcount
    return n + conn.execute(
        "update outreach.optouts set contact = 'sha256:' || encode(sha256(convert_to(contact, 'UTF8')), 'hex')"
        " where contact = any(%s)", (contacts,)).rowcount


def _cancel_pending(conn, person: Person) -> int:
    """Messages waiting for the person are not sent to an erased address."""
    rows = conn.execute(
        "update outreach.message_ledger set status = 'cancelled', error = 'the customer was erased',"
        " updated_at = now() where status = 'pending' and (customer_id = any(%s) or recipient = any(%s))"
        " returning idempotency_key, as_of_date, message_type, channel, customer_id, campaign",
        (sorted(person.customer_ids), sorted(person.phones | person.emails))).fetchall()
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into outreach.suppressions (idempotency_key, as_of_date, message_type, channel, customer_id,"
                " campaign, rule, detail) values (%s, %s, %s, %s, %s, %s, 'erased', 'the customer asked to be"
                " erased') on conflict do nothing", rows)
    return len(rows)


# -- files ----------------------------------------------------------------------------------
def scrub_files(roots: Iterable[Path], person: Person, skip: Iterable[Path] = ()) -> list[tuple[Path, str, str]]:
    """Rewrite the pipeline's text files and spreadsheets without the person's contacts (and, in
    rows of the person's — a call list, an alert list — without their name, address and notes).
    Returns (file, digest before, digest after) of each file rewritten."""
    from crm_pipeline.extract.intake import file_digest

    pattern = contact_pattern(person)
    regex = re.compile(pattern, re.IGNORECASE) if pattern else None
    skipped = [p.resolve() for p in skip]
    changed: list[tuple[Path, str, str]] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            resolved = path.resolve()
            if resolved in seen or any(resolved.is_relative_to(s) for s in skipped):
                continue
            seen.add(resolved)
            suffix = path.suffix.lower()
            before = file_digest(path)
            if suffix == ".xlsx":
                done = _scrub_xlsx(path, regex, person)
            elif suffix == ".csv":
                done = _scrub_csv(path, regex, person)
            elif suffix in TEXT_SUFFIXES and path.stat().st_size < 512 * 1024 * 1024:
                done = _scrub_text_file(path, regex)
            else:
                done = False
            if done:
                changed.append((path, before, file_digest(path)))
    return changed


def _decode(data: bytes) -> tuple[str, str] | None:
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None


def _scrub_text_file(path: Path, regex: re.Pattern | None) -> bool:
    if regex is None:
        return False
    decoded = _decode(path.read_bytes())
    if decoded is None:
        return False
    text, encoding = decoded
    new = regex.sub(MASK, text)
    if new == text:
        return False
    path.write_bytes(new.encode(encoding))
    return True


PERSONAL_HEADERS = ("姓名", "name", "地址", "address", "昵称", "nick", "备注", "notes", "context", "上次", "收货人",
                    "客户", "生日", "birthday", "偏好", "preferences", "标签", "tags")


def _personal_header(header: str) -> bool:
    h = header.lower()
    return any(k in h for k in PERSONAL_HEADERS) and "id" not in h and "编号" not in h


def _scrub_csv(path: Path, regex: re.Pattern | None, person: Person) -> bool:
    import csv
    import io

    decoded = _decode(path.read_bytes())
    if decoded is None:
        return False
    text, encoding = decoded
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return False
    header, keys, changed = rows[0], person.keys(), False
    out = [header]
    for row in rows[1:]:
        mine = bool(set(row) & keys)
        new = [MASK if (mine and i < len(header) and _personal_header(header[i]) and cell)
               or cell in person.names or cell in person.addresses
               else (regex.sub(MASK, cell) if regex else cell) for i, cell in enumerate(row)]
        changed |= new != row
        out.append(new)
    if not changed:
        return False
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(out)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig" if encoding == "utf-8-sig" else encoding))
    return True


def _scrub_xlsx(path: Path, regex: re.Pattern | None, person: Person) -> bool:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    keys = person.keys()
    changed = False
    for ws in wb.worksheets:
        headers: dict[int, str] = {}
        for row in ws.iter_rows(max_row=3):
            for cell in row:
                if isinstance(cell.value, str):
                    headers[cell.column] = headers.get(cell.column, "") + cell.value
        for row in ws.iter_rows():
            mine = bool({str(c.value) for c in row if c.value is not None} & keys)
            for cell in row:
                if not isinstance(cell.value, str):
                    continue
                new = regex.sub(MASK, cell.value) if regex else cell.value
                if (mine and _personal_header(headers.get(cell.column, ""))) or new in person.names \
                        or new in person.addresses:
                    new = MASK
                if new != cell.value:
                    cell.value = new
                    changed = True
    if changed:
        wb.save(path)
    return changed


# -- the whole request ----------------------------------------------------------------------
@dataclass
class ErasureResult:
    erasure_id: int | None
    customers: int
    orders: int
    phones: int
    emails: int
    tables: list[str]
    files: list[str]
    already_erased: bool = False

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def erase(url: str | None, phones: Iterable[str] = (), emails: Iterable[str] = (), customers: Iterable[str] = (),
          reason: str = "", file_roots: Iterable[Path] = (), skip_files: Iterable[Path] = (),
          intake_dir: Path | None = None) -> ErasureResult:
    """Erase a person everywhere (see the module docstring). Returns what was done."""
    import psycopg

    from crm_pipeline.warehouse import warehouse_url

    phones, emails, customers = list(phones), [e.lower() for e in emails], list(customers)
    if not (phones or emails or customers):
        raise ErasureError("give --phone, --email or --customer: whom to erase")
    url = url or warehouse_url()
    with psycopg.connect(url) as conn:
        person = find_person(conn, phones, emails, customers)
        unknown = [c for c in customers if c not in person.customer_ids]
        if unknown:
            raise ErasureError(f"no customer {', '.join(unknown)} in the warehouse (marts.dim_customers);"
                               " nothing was erased")
        if not person.customer_ids and not person.orders:
            hashes = [sha256(v) for v in phones + emails]
            if conn.execute("select count(*) from ops.erasures where identifier_hashes && %s",
                            (hashes,)).fetchone()[0]:
                return ErasureResult(None, 0, 0, 0, 0, [], [], already_erased=True)  # idempotent
            raise ErasureError("nobody in the warehouse has that phone, e-mail or customer id")
        erasure_id, salt, new = _tombstone(conn, person, reason)
        pattern_text = contact_pattern(person)
        pattern = re.compile(pattern_text, re.IGNORECASE) if pattern_text else None
        touched = set(_mask_raw(conn, person, salt, pattern))
        if _keep_opt_outs(conn, person):
            touched.add("outreach.optouts")
        if _cancel_pending(conn, person):
            touched.add("outreach.message_ledger")
        if conn.execute("update outreach.call_outcomes set birthday = null, gender = null, preferences = null,"
                        " tags = null, notes = null where customer_id = any(%s) and (birthday is not null"
                        " or gender is not null or preferences is not null or tags is not null or notes is not null)",
                        (sorted(person.customer_ids),)).rowcount:
            touched.add("outreach.call_outcomes")
        tables = sorted(touched | set(_scrub_tables(conn, person, salt)))
        conn.commit()
        files = scrub_files(file_roots, person, skip_files)
        if intake_dir is not None:  # a masked inbox sheet is the same import, not a new file
            for path, before, after in files:
                if path.resolve().is_relative_to(intake_dir.resolve()):
                    conn.execute(
                        "insert into ops.intake_files (shop_id, file_name, sha256, batch_id, received, landed,"
                        " quarantined) select shop_id, file_name, %s, batch_id, received, landed, quarantined"
                        " from ops.intake_files where sha256 = %s on conflict do nothing", (after, before))
            conn.commit()
    if not new and not tables and not files:
        return ErasureResult(erasure_id, len(person.customer_ids), len(person.orders), 0, 0, [], [],
                             already_erased=True)
    _rewrite_storage(url, tables)
    log.info("erasure %s: %d customer id(s), %d order(s), %d table(s), %d file(s)", erasure_id,
             len(person.customer_ids), len(person.orders), len(tables), len(files))
    return ErasureResult(erasure_id, len(person.customer_ids), len(person.orders), len(person.phones),
                         len(person.emails), tables, [str(f) for f, _, _ in files])


def _rewrite_storage(url: str, tables: list[str]) -> None:
    """Old row versions hold the data until their pages are rewritten: VACUUM FULL the touched
    tables (and the statistics catalog, whose samples may hold the values), then retire the
    WAL written before (the embedded warehouse runs without WAL recycling)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for rel in tables:
            conn.execute(f"analyze {rel}")
            conn.execute(f"vacuum full {rel}")
        try:
            conn.execute("vacuum full pg_catalog.pg_statistic")
            for _ in range(2):
                conn.execute("select pg_switch_wal()")
                conn.execute("checkpoint")
        except psycopg.errors.InsufficientPrivilege:
            log.warning("the warehouse role may not rewrite the statistics catalog or switch WAL segments;"
                        " the tables are rewritten, their old WAL expires with the server's own retention")
