"""The pusher: send due ledger rows in gateway-sized batches, exactly once.

State machine of a ledger row::

    pending --claim--> sending --accepted--> accepted
                          |--rejected----> failed
                          |--ambiguous---> unknown --reconcile--> accepted | pending
                          '--throttled (retries exhausted)--> pending
    pending --past expires_at--> cancelled (+ suppression 'expired')

A claim is committed before the HTTP call, so a crash mid-push leaves rows in
``sending``; the next run turns stale ``sending`` rows into ``unknown`` and
reconciles them with the gateway instead of sending again. The batch id (the
Aliyun ``OutId``) is derived from the keys in the batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crm_pipeline.outreach.gateways import Ambiguous, Gateway, OutMessage, Rejected, Retryable
from crm_pipeline.outreach.policy import Policy, in_quiet_hours
from crm_pipeline.pii import get_logger

log = get_logger(__name__)
STALE_SENDING = timedelta(minutes=10)


@dataclass
class PushStats:
    batches: int = 0
    accepted: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    expired: int = 0
    opted_out: int = 0
    reconciled_accepted: int = 0
    reconciled_resend: int = 0
    retries: int = 0
    seconds: float = 0.0
    errors: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "errors"} | {"errors": self.errors[:10]}


def batch_id_for(keys: list[str]) -> str:
    return "b" + hashlib.blake2b("\n".join(sorted(keys)).encode(), digest_size=12).hexdigest()


def _messages(rows) -> list[OutMessage]:
    out = []
    for key, customer, recipient, template, params, body in rows:
        subject, text = (body.split("\n", 1) + [""])[:2] if body and "\n" in body else (None, body or "")
        params = params if isinstance(params, dict) else json.loads(params or "{}")
        out.append(OutMessage(key, customer, recipient, template,
                              {k: v for k, v in params.items() if k != "shop_name"} | {"shop_name": params.get("shop_name", "")},
                              subject, text))
    return out


def expire(conn, now: datetime) -> int:
    rows = conn.execute(
        "update outreach.message_ledger set status = 'cancelled', error = 'expired before it could be sent',"
        " updated_at = now() where status = 'pending' and expires_at <= %s"
        " returning idempotency_key, as_of_date, message_type, channel, customer_id, campaign",
        (now,),
    ).fetchall()
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into outreach.suppressions (idempotency_key, as_of_date, message_type, channel, customer_id,"
                " campaign, rule, detail) values (%s, %s, %s, %s, %s, %s, 'expired', 'not sent within its window')"
                " on conflict do nothing", rows)
    return len(rows)


class OptOutWatch:
    """Cancels pending messages whose customer opted out after they were planned (R13).

    The planner leaves opted-out customers out, but a message can wait in the ledger
    for hours (quiet hours, a later send time, a long throttled campaign) while a TD
    reply or `crm optout add` arrives. Before each batch the pusher asks whether the
    opt-out list changed (a count, cheap) and only then re-checks the pending rows, so
    nothing is sent to a customer who opted out before their batch was claimed.
    Which pending rows are opted out is the outbound check's own rule (the view
    ``outreach.v_outbound_pending``, column ``opted_out``), so the pusher and the GX
    check cannot disagree.
    """

    def __init__(self) -> None:
        self.seen: int | None = None

    def cancel_new(self, conn) -> int:
        count = conn.execute("select count(*) from outreach.optouts").fetchone()[0]
        if count == self.seen:
            return 0
        rows = conn.execute(
            "update outreach.message_ledger set status = 'cancelled',"
            " error = 'opted out after it was planned', updated_at = now()"
            " where status = 'pending' and idempotency_key in ("
            "  select idempotency_key from outreach.v_outbound_pending where opted_out)"
            " returning idempotency_key, as_of_date, message_type, channel, customer_id, campaign"
        ).fetchall()
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into outreach.suppressions (idempotency_key, as_of_date, message_type, channel,"
                    " customer_id, campaign, rule, detail) values (%s, %s, %s, %s, %s, %s, 'opted_out',"
                    " 'opted out after it was planned; cancelled before sending') on conflict do nothing", rows)
            log.info("cancelled %d pending message(s): the customer opted out after planning", len(rows))
        self.seen = count
        return len(rows)


def reconcile(conn, gateways: dict[str, Gateway], now: datetime, stats: PushStats) -> None:
    """Stale 'sending' -> 'unknown'; ask the gateway about every 'unknown' batch."""
    conn.execute(
        "update outreach.message_ledger set status = 'unknown', error = 'push interrupted (stale sending)',"
        " updated_at = now() where status = 'sending' and updated_at < now() - %s",
        (STALE_SENDING,),
    )
    conn.commit()
    batches = conn.execute(
        "select channel, gateway_batch, array_agg(idempotency_key order by idempotency_key), min(updated_at)"
        " from outreach.message_ledger where status = 'unknown' group by channel, gateway_batch"
    ).fetchall()
    for channel, batch, keys, at in batches:
        gateway = gateways.get(channel)
        if gateway is None:
            continue
        rows = conn.execute(
            "select idempotency_key, customer_id, recipient, template, params, body from outreach.message_ledger"
            " where idempotency_key = any(%s) order by idempotency_key", (keys,)).fetchall()
        answer = gateway.reconcile(batch or "", _messages(rows), at or now)
        have = [k for k, v in answer.items() if v is True]
        resend = [k for k, v in answer.items() if v is False]
        if have:
            conn.execute("update outreach.message_ledger set status = 'accepted', sent_at = coalesce(sent_at, %s),"
                         " error = null, updated_at = now() where idempotency_key = any(%s)", (now, have))
            stats.reconciled_accepted += len(have)
        if resend:
            conn.execute("update outreach.message_ledger set status = 'pending', error = 'reconciled: not received',"
                         " updated_at = now() where idempotency_key = any(%s)", (resend,))
            stats.reconciled_resend += len(resend)
        conn.commit()


def push(conn, gateways: dict[str, Gateway], policy: Policy, now: datetime, limit: int | None = None,
         max_attempts: int = 5, sleep: Callable[[float], None] = time.sleep,
         message_types: tuple[str, ...] | None = None) -> PushStats:
    """Send every due pending message (optionally only some types). Commits as it goes."""
    t0 = time.monotonic()
    stats = PushStats()
    stats.expired = expire(conn, now)
    conn.commit()
    reconcile(conn, gateways, now, stats)
    if in_quiet_hours(now, policy):
        stats.deferred = conn.execute(
            "select count(*) from outreach.message_ledger where status = 'pending' and send_after <= %s", (now,)
        ).fetchone()[0]
        log.info("quiet hours: %d due message(s) wait until they end", stats.deferred)
        stats.seconds = time.monotonic() - t0
        return stats
    sent = 0
    type_filter = " and message_type = any(%(types)s)" if message_types else ""
    optouts = OptOutWatch()
    while limit is None or sent < limit:
        stats.opted_out += optouts.cancel_new(conn)
        # the (channel, template) group of the earliest due message (index scan, first row)
        group = conn.execute(
            "select channel, template from outreach.message_ledger where status = 'pending' and send_after <= %(now)s"
            + type_filter + " order by send_after limit 1",
            {"now": now, "types": list(message_types or ())},
        ).fetchone()
        if group is None:
            break
        channel, template = group
        gateway = gateways.get(channel)
        if gateway is None:
            raise RuntimeError(f"no gateway configured for channel {channel!r} (config/gateways.yml)")
        size = gateway.batch_size if limit is None else min(gateway.batch_size, limit - sent)
        rows = conn.execute(
            "select idempotency_key, customer_id, recipient, template, params, body from outreach.message_ledger"
            " where status = 'pending' and send_after <= %(now)s and channel = %(channel)s and template = %(template)s"
            + type_filter + " order by send_after, idempotency_key limit %(size)s for update skip locked",
            {"now": now, "channel": channel, "template": template, "size": size, "types": list(message_types or ())},
        ).fetchall()
        if not rows:
            break
        keys = [r[0] for r in rows]
        batch = batch_id_for(keys)
        # the claim must reach the WAL before the HTTP call whatever the server's
        # synchronous_commit (a DBA may set it off; D31): an asynchronously committed
        # claim lost in a database crash would leave the rows 'pending' after the
        # gateway took them, and the next run would send them again
        conn.execute("set local synchronous_commit = on")
        conn.execute(
            "update outreach.message_ledger set status = 'sending', attempts = attempts + 1, gateway = %s,"
            " gateway_batch = %s, updated_at = now() where idempotency_key = any(%s)",
            (gateway.name, batch, keys),
        )
        conn.commit()  # the claim is durable before the HTTP call
        stats.batches += 1
        outcome = _send_with_retries(gateway, batch, _messages(rows), max_attempts, sleep, stats)
        if isinstance(outcome, str):
            status, error = outcome.split(":", 1)
            conn.execute(
                "update outreach.message_ledger set status = %s, error = %s, updated_at = now()"
                " where idempotency_key = any(%s)", (status, error.strip(), keys))
            if status == "failed":
                stats.failed += len(keys)
            elif status == "unknown":
                stats.unknown += len(keys)
            stats.errors.append(error.strip())
            if status == "pending":
                conn.commit()
                break  # the gateway keeps throttling: stop, the next run continues
        else:
            conn.execute(
                "update outreach.message_ledger set status = 'accepted', gateway_ref = %s, sent_at = %s,"
                " error = null, updated_at = now() where idempotency_key = any(%s)", (outcome.reference, now, keys))
            stats.accepted += len(keys)
        conn.commit()
        sent += len(keys)
    conn.commit()  # cancellations found after the last batch
    stats.seconds = time.monotonic() - t0
    return stats


def _send_with_retries(gateway: Gateway, batch: str, messages: list[OutMessage], max_attempts: int,
                       sleep: Callable[[float], None], stats: PushStats):
    for attempt in range(1, max_attempts + 1):
        try:
            return gateway.send(batch, messages)
        except Retryable as exc:
            if attempt == max_attempts:
                return f"pending: {exc} (will retry on the next push)"
            wait = exc.wait if exc.wait is not None else min(8.0, 0.25 * 2 ** (attempt - 1))
            stats.retries += 1
            log.warning("%s batch %s: %s; retry %d/%d in %.2fs", gateway.name, batch, exc, attempt,
                        max_attempts - 1, wait)
            sleep(wait)
        except Rejected as exc:
            return f"failed: {exc}"
        except Ambiguous as exc:
            return f"unknown: {exc}"
    return "pending: not attempted"
