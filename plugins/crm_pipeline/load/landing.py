"""Landing raw records: COPY into a temp table, then upsert, in one transaction.

* every version of every order goes to ``raw.<table>_versions`` (status history; R2: history is never thrown away);
* the latest version per order is upserted into ``raw.<table>``; an unchanged
  record changes nothing (no new ``loaded_at``), so reruns are idempotent;
* malformed records go to ``raw.quarantine`` with their reason.

Pages are streamed into the temp table as they arrive, so memory stays flat
however many pages a run reads. Nothing is visible to anyone until the caller
commits; a failure rolls all of it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import psycopg

from crm_pipeline.load.validate import MAX_AMOUNT, StartDateRule, inspect
from crm_pipeline.platforms import platform_spec
from crm_pipeline.warehouse.migrate import RAW_STORAGE

# valid rows carry `payload` as jsonb (parsed once, by COPY); quarantined rows keep
# the text as received in `bad_payload` (it may not even be JSON)
TEMP_BUFFERS = "128MB"  # the staged run stays in memory (the default 8MB spills to disk)
WORK_MEM = "64MB"
SAMPLE_REJECTED = 10  # quarantine reasons a run keeps to show (all are in raw.quarantine)
_COLUMNS = "pass_no, order_id, valid, reason, source_updated_at, payload, bad_payload, derived, payload_hash"


@dataclass
class LandingCounts:
    received: int = 0
    landed: int = 0
    new_versions: int = 0
    changed_current: int = 0
    quarantined: int = 0
    duplicates: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def canonical(record: object) -> bytes:
    """Stable JSON text of a record (sorted keys): what we store and hash."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def payload_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Lander:
    """Stage pages for one (platform, shop, batch), then finalize into raw.*."""

    def __init__(self, conn, platform: str, shop_id: str, batch_id: str, now: datetime | None = None,
                 max_amount: Decimal = MAX_AMOUNT, start_rule: StartDateRule | None = None):
        self.conn = conn
        self.platform = platform
        self.table = platform_spec(platform).raw_table
        self.shop_id = shop_id
        self.batch_id = batch_id
        self.now = now or datetime.now(UTC)
        self.max_amount = max_amount
        self.start_rule = start_rule  # orders dated before the shop's start_date (validate.StartDateRule)
        self.staged = 0
        self.rejected: list[tuple[str | None, str]] = []  # (order id, reason) of the first SAMPLE_REJECTED
        # temp buffers must be set before the session's first temp table; a
        # connection that already used one keeps its setting
        try:
            with conn.transaction():
                conn.execute(f"set temp_buffers = '{TEMP_BUFFERS}'")
        except psycopg.Error:
            pass
        # staged payloads stay uncompressed, as raw.* keeps them (D122): an insert copies
        # a compressed value as it is
        conn.execute(
            "create temp table if not exists _land ("
            " seq bigserial, pass_no int not null, order_id text, valid boolean not null, reason text,"
            " source_updated_at timestamptz, payload jsonb, bad_payload text, derived jsonb,"
            " payload_hash text not null"
            f") with ({RAW_STORAGE}) on commit drop"
        )
        conn.execute("truncate _land")
        # orders of erased persons (crm erase): masked before they are stored, hashed as sent,
        # so an unchanged re-read lands nothing and a changed one lands without the person
        self.erased: dict[str, str] = {}
        if conn.execute("select to_regclass('ops.erased_orders') is not null").fetchone()[0]:
            self.erased = dict(conn.execute(
                "select o.order_id, e.salt from ops.erased_orders o join ops.erasures e using (erasure_id)"
                " where o.platform = %s and o.shop_id = %s", (self.platform, shop_id)).fetchall())

    def stage(self, records: list, pass_no: int, extra_reason: str | None = None) -> tuple[int, int]:
        """Inspect and COPY one page; returns (valid, invalid)."""
        valid = invalid = 0
        with self.conn.cursor() as cur:
            with cur.copy(f"copy _land ({_COLUMNS}) from stdin") as copy:
                for record in records:
                    # inspect sees second-call enrichment (decrypted receiver); the payload
                    # stored is what the platform sent, the enrichment goes to `derived`
                    result = inspect(self.platform, record, self.now, self.max_amount, self.start_rule)
                    enrichment = None
                    if isinstance(record, dict) and ("__enrichment__" in record or "__error__" in record):
                        enrichment = record.get("__enrichment__")
                        record = {k: v for k, v in record.items() if k not in ("__enrichment__", "__error__")}
                    data = canonical(record)
                    derived = dict(result.derived)
                    if enrichment:
                        derived["enrichment"] = enrichment
                    reason = result.reason
                    if reason is None and b"\\u0000" in data:
                        # jsonb cannot hold NUL: the whole run would fail at COPY
                        reason = "unparseable: text contains a NUL character (\\u0000) the warehouse cannot store"
                    stored = data
                    if result.order_id in self.erased:
                        from crm_pipeline.privacy import erased_record

                        stored, derived = erased_record(record, derived, self.erased[result.order_id], self.platform)
                    if reason is None:
                        valid += 1
                        copy.write_row((pass_no, result.order_id, True, None, result.updated_at,
                                        stored.decode("utf-8"), None, orjson.dumps(derived).decode("utf-8"),
                                        payload_hash(data)))
                    else:
                        invalid += 1
                        reason = f"{extra_reason}: {reason}" if extra_reason else reason
                        if len(self.rejected) < SAMPLE_REJECTED:
                            self.rejected.append((result.order_id, reason))
                        copy.write_row((pass_no, result.order_id, False, reason, None, None,
                                        stored.decode("utf-8"), None, payload_hash(data)))
        self.staged += valid + invalid
        return valid, invalid

    def stage_unparseable(self, text: str, pass_no: int, reason: str) -> None:
        """A page or row that is not even JSON: quarantine its text."""
        data = text.encode("utf-8", "replace")
        with self.conn.cursor() as cur:
            with cur.copy(f"copy _land ({_COLUMNS}) from stdin") as copy:
                copy.write_row((pass_no, None, False, f"unparseable: {reason}", None, None, text, None,
                                payload_hash(data)))

    def pass_stats(self, pass_no: int) -> tuple[int, int]:
        """(rows staged, distinct orders) for one pass over a window."""
        row = self.conn.execute(
            "select count(*), count(distinct coalesce(order_id, payload_hash)) from _land where pass_no = %s",
            (pass_no,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def discard_pass(self, pass_no: int) -> None:
        self.conn.execute("delete from _land where pass_no = %s", (pass_no,))

    def finalize(self) -> LandingCounts:
        """Move staged rows into raw.* (caller commits)."""
        counts = LandingCounts()
        self.conn.execute(f"set local work_mem = '{WORK_MEM}'")  # the distinct-on sorts stay in memory
        params = {"shop": self.shop_id, "batch": self.batch_id, "now": self.now, "platform": self.platform}
        row = self.conn.execute(
            "select count(*),"
            " count(distinct (order_id, payload_hash)) filter (where valid),"
            " count(distinct payload_hash) filter (where not valid)"
            " from _land"
        ).fetchone()
        total_rows, counts.landed, counts.quarantined = int(row[0]), int(row[1]), int(row[2])
        counts.received = counts.landed + counts.quarantined
        counts.duplicates = total_rows - counts.received
        self.conn.execute(
            "insert into raw.quarantine (platform, shop_id, batch_id, record_ref, reason, payload, payload_hash)"
            " select %(platform)s, %(shop)s, %(batch)s, order_id, reason, bad_payload, payload_hash from ("
            "  select distinct on (payload_hash, reason) * from _land where not valid"
            "  order by payload_hash, reason, seq) q"
            " on conflict (platform, shop_id, payload_hash, reason) do nothing",
            params,
        )
        cur = self.conn.execute(
            f"insert into raw.{self.table}_versions"
            " (shop_id, order_id, source_updated_at, payload, derived, payload_hash, batch_id, loaded_at)"
            " select %(shop)s, order_id, source_updated_at, payload, derived, payload_hash,"
            "  %(batch)s, %(now)s from ("
            "  select distinct on (order_id, payload_hash) * from _land where valid"
            "  order by order_id, payload_hash, seq) v"
            " on conflict do nothing",
            params,
        )
        counts.new_versions = max(cur.rowcount, 0)
        cur = self.conn.execute(
            f"insert into raw.{self.table} as t"
            " (shop_id, order_id, source_updated_at, payload, derived, payload_hash, batch_id, loaded_at)"
            " select %(shop)s, order_id, source_updated_at, payload, derived, payload_hash,"
            "  %(batch)s, %(now)s from ("
            "  select distinct on (order_id) * from _land where valid"
            "  order by order_id, source_updated_at desc, seq desc) c"
            " on conflict (shop_id, order_id) do update set"
            "  source_updated_at = excluded.source_updated_at, payload = excluded.payload,"
            "  derived = excluded.derived, payload_hash = excluded.payload_hash,"
            "  batch_id = excluded.batch_id, loaded_at = excluded.loaded_at"
            " where excluded.payload_hash <> t.payload_hash"
            "  and excluded.source_updated_at >= t.source_updated_at",
            params,
        )
        counts.changed_current = max(cur.rowcount, 0)
        self.conn.execute("truncate _land")
        return counts
