"""The pusher: send due ledger rows in gateway-sized batches, exactly once.

State machine of a ledger row::

    pending --claim--> sending --accepted--> accepted
                          |--rejected----> failed
                          |--ambiguous---> unknown --reconcile--> accepted | pending
                          '--throttled (retries exhausted)--> pending
    pending --past expires_at--> cancelled (+ suppression 'expired')
    pending --opted out / reason gone before the claim--> cancelled (+ suppression)

A row is due when its ``send_after`` has passed and it is outside quiet hours in the
recipient's own time zone (the ledger's ``timezone``); a due row in quiet hours waits.

A claim is committed before the HTTP call, so a crash mid-push leaves rows in
``sending``; the next run turns stale ``sending`` rows into ``unknown`` and
reconciles them with the gateway, about the day of the claim (``claimed_at``),
instead of sending again. The batch id (the Aliyun ``OutId``) is derived from the
keys in the batch.

Fencing: every claim carries a token (``claim_token``). Before its HTTP call the
pusher locks its rows and checks that they are still ``sending`` under its token,
holds that lock through the call and its retries, and writes the outcome only to
rows that still carry the token. Reconciliation skips locked rows. So a pusher that
froze after claiming (an Airflow retry started while the old task still runs) and
lost its claim to another push that reconciled and resent the rows can neither send
them again nor mark them when it resumes; and a pusher frozen mid-call keeps its
claim, because nobody can reconcile rows it has locked.

Times are the pipeline clock's (``crm_pipeline.clock``), passed in as ``now``: what
is due, what is stale and what day a claim was taken all follow the clock a test
drives; in production it is the real time.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crm_pipeline.outreach.gateways import Ambiguous, Gateway, OutMessage, Rejected, Retryable
from crm_pipeline.outreach.policy import Policy
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
    reason_gone: int = 0
    fenced: int = 0  # rows this pusher had claimed and found taken over by another push
    held_stale_orders: int = 0  # due, but their shop's orders were not read recently enough (fresh_orders_minutes)
    in_flight: int = 0  # 'sending' rows left: another push is on them, or one stopped < STALE_SENDING ago
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




def quiet_now_sql(policy: Policy) -> str:
    """SQL: the row's recipient is in quiet hours at %(now)s, in their own zone (default: the policy's)."""
    local = "(%(now)s::timestamptz at time zone coalesce(timezone, %(policy_tz)s))::time"
    if policy.quiet_start <= policy.quiet_end:
        return f"({local} >= %(quiet_start)s and {local} < %(quiet_end)s)"
    return f"({local} >= %(quiet_start)s or {local} < %(quiet_end)s)"


def _due_params(policy: Policy, now: datetime) -> dict:
    from crm_pipeline.platforms import PLATFORMS

    fresh = {name: rule.fresh_orders_minutes for name, rule in policy.types.items() if rule.fresh_orders_minutes}
    api = [name for name, spec in PLATFORMS.items() if spec.kind == "api"]
    return {"now": now, "api_platforms": api, "policy_tz": policy.timezone, "quiet_start": policy.quiet_start,
            "quiet_end": policy.quiet_end, "fresh_types": list(fresh), "fresh_minutes": list(fresh.values())}


# A message about an order's state (policy: fresh_orders_minutes) waits while its shop's orders
# were last read longer ago than that: the send-time re-check (recheck.py) can only see a payment
# or a refund the warehouse has. The nightly closes the day at midnight; a push hours later (a
# late or rerun night, `crm push` by hand) would otherwise tell a buyer who paid at 00:09 to pay.
# The intraday run reads the shops just before it pushes these types. A spreadsheet shop's
# orders (an offline store's) are read once a night from its files; there is nothing fresher
# to wait for, so they are not held.
STALE_ORDERS_SQL = """exists (
    select 1 from unnest(%(fresh_types)s::text[], %(fresh_minutes)s::int[]) as f(message_type, minutes)
    where f.message_type = split_part(outreach.message_ledger.message_type, ':', 1)
      and split_part(outreach.message_ledger.order_key, ':', 1) = any(%(api_platforms)s::text[])
      and not exists (
          select 1 from ops.watermarks w
          where w.platform = split_part(outreach.message_ledger.order_key, ':', 1)
            and w.shop_id = split_part(outreach.message_ledger.order_key, ':', 2)
            and w.watermark >= %(now)s - make_interval(mins => f.minutes)))"""


def reconcile(conn, gateways: dict[str, Gateway], now: datetime, stats: PushStats) -> None:
    """Stale 'sending' -> 'unknown'; ask the gateway about every 'unknown' batch, for the claim's day.

    Rows a live pusher holds locked (it is mid-call) are skipped, so they are never reconciled
    from under it; rows a pusher claimed and then lost (killed, or frozen before its call) are."""
    conn.execute(
        "update outreach.message_ledger set status = 'unknown', error = 'push interrupted (stale sending)',"
        " claim_token = null, updated_at = now() where idempotency_key in ("
        "  select idempotency_key from outreach.message_ledger where status = 'sending'"
        "  and coalesce(claimed_at, updated_at) <= %s for update skip locked)",
        (now - STALE_SENDING,),
    )
    conn.commit()
    batches = conn.execute(
        "select distinct channel, gateway_batch from outreach.message_ledger where status = 'unknown'").fetchall()
    for channel, batch in batches:
        gateway = gateways.get(channel)
        if gateway is None:
            continue
        # one reconciler per batch: another push reconciling it at the same time skips it
        rows = conn.execute(
            "select idempotency_key, customer_id, recipient, template, params, body,"
            " coalesce(claimed_at, updated_at) from outreach.message_ledger"
            " where status = 'unknown' and channel = %s and gateway_batch is not distinct from %s"
            " order by idempotency_key for update skip locked", (channel, batch)).fetchall()
        if not rows:
            conn.commit()
            continue
        claimed = min(r[6] for r in rows)
        answer = gateway.reconcile(batch or "", _messages([r[:6] for r in rows]), claimed)
        have = [k for k, v in answer.items() if v is True]
        resend = [k for k, v in answer.items() if v is False]
        if have:
            conn.execute("update outreach.message_ledger set status = 'accepted', sent_at = coalesce(sent_at, %s),"
                         " error = null, updated_at = now() where status = 'unknown' and idempotency_key = any(%s)",
                         (claimed, have))
            stats.reconciled_accepted += len(have)
        if resend:
            conn.execute("update outreach.message_ledger set status = 'pending', error = 'reconciled: not received',"
                         " updated_at = now() where status = 'unknown' and idempotency_key = any(%s)", (resend,))
            stats.reconciled_resend += len(resend)
        conn.commit()


def _cancel_reasons_gone(conn, rows: list[tuple], stats: PushStats) -> set[str]:
    """Send-time re-checks of one selected batch: the trigger's reason (recheck.py) and
    marketing consent (consent.py). Returns the keys cancelled."""
    from crm_pipeline.outreach import recheck
    from crm_pipeline.outreach.consent import gone_at_send

    by_type: dict[str, list[str]] = {}
    for r in rows:
        by_type.setdefault(r[6], []).append(r[0])
    gone = recheck.reasons_gone(conn, by_type)
    if gone:
        stats.reason_gone += recheck.cancel(conn, gone)
        log.info("cancelled %d pending message(s) whose reason is gone: %s", len(gone),
                 sorted(set(gone.values()))[:5])
    consent = gone_at_send(conn, [(r[0], r[1], r[8], r[9], r[7], r[2]) for r in rows if r[0] not in gone])
    for rule in ("no_consent", "opted_out"):
        keys = {k: detail for k, (r, detail) in consent.items() if r == rule}
        if keys:
            n = recheck.cancel(conn, keys, rule)
            stats.reason_gone += n if rule == "no_consent" else 0
            stats.opted_out += n if rule == "opted_out" else 0
    return set(gone) | set(consent)


def push(conn, gateways: dict[str, Gateway], policy: Policy, now: datetime, limit: int | None = None,
         max_attempts: int = 5, sleep: Callable[[float], None] = time.sleep,
         message_types: tuple[str, ...] | None = None, skip_types: tuple[str, ...] = ()) -> PushStats:
    """Send every due pending message (optionally only ``message_types``, never ``skip_types``).
    Commits as it goes."""
    t0 = time.monotonic()
    stats = PushStats()
    stats.expired = expire(conn, now)
    conn.commit()
    reconcile(conn, gateways, now, stats)
    sent = 0
    typed = ((" and message_type = any(%(types)s)" if message_types else "")
             + (" and message_type <> all(%(skip)s)" if skip_types else ""))
    due = ("status = 'pending' and send_after <= %(now)s and not " + quiet_now_sql(policy) + typed
           + " and not " + STALE_ORDERS_SQL)
    base = _due_params(policy, now) | {"types": list(message_types or ()), "skip": list(skip_types)}
    optouts = OptOutWatch()
    while limit is None or sent < limit:
        stats.opted_out += optouts.cancel_new(conn)
        # the (channel, template) group of the earliest due message (index scan, first row)
        group = conn.execute(
            f"select channel, template from outreach.message_ledger where {due} order by send_after limit 1",
            base).fetchone()
        if group is None:
            break
        channel, template = group
        gateway = gateways.get(channel)
        if gateway is None:
            raise RuntimeError(f"no gateway configured for channel {channel!r} (config/gateways.yml)")
        size = gateway.batch_size if limit is None else min(gateway.batch_size, limit - sent)
        rows = conn.execute(
            "select idempotency_key, customer_id, recipient, template, params, body, message_type, message_class,"
            " channel, order_key"
            f" from outreach.message_ledger where {due} and channel = %(channel)s and template = %(template)s"
            " order by send_after, idempotency_key limit %(size)s for update skip locked",
            base | {"channel": channel, "template": template, "size": size},
        ).fetchall()
        if not rows:
            break
        gone = _cancel_reasons_gone(conn, rows, stats)
        rows = [r for r in rows if r[0] not in gone]
        if not rows:
            conn.commit()
            continue
        keys = [r[0] for r in rows]
        batch = batch_id_for(keys)
        token = uuid.uuid4().hex
        # the claim must reach the WAL before the HTTP call whatever the server's
        # synchronous_commit (a DBA may set it off; D31): an asynchronously committed
        # claim lost in a database crash would leave the rows 'pending' after the
        # gateway took them, and the next run would send them again
        conn.execute("set local synchronous_commit = on")
        conn.execute(
            "update outreach.message_ledger set status = 'sending', attempts = attempts + 1, gateway = %s,"
            " gateway_batch = %s, claim_token = %s, claimed_at = %s, updated_at = now()"
            " where idempotency_key = any(%s)",
            (gateway.name, batch, token, now, keys),
        )
        conn.commit()  # the claim is durable before the HTTP call
        stats.batches += 1
        outcome = _send_fenced(conn, gateway, batch, token, keys, _messages([r[:6] for r in rows]), max_attempts,
                               sleep, stats)
        if outcome is None:  # the claim was taken over while this pusher was away: nothing sent, nothing marked
            conn.commit()
            continue
        if isinstance(outcome, str):
            status, error = outcome.split(":", 1)
            marked = _finish(conn, token, keys, "status = %s, error = %s", (status, error.strip()))
            if status == "failed":
                stats.failed += marked
            elif status == "unknown":
                stats.unknown += marked
            stats.errors.append(error.strip())
            if status == "pending":
                conn.commit()
                break  # the gateway keeps throttling: stop, the next run continues
        else:
            stats.accepted += _finish(conn, token, keys,
                                      "status = 'accepted', gateway_ref = %s, sent_at = %s, error = null",
                                      (outcome.reference, now))
        conn.commit()
        sent += len(keys)
    stats.deferred = conn.execute(
        "select count(*) from outreach.message_ledger where status = 'pending' and send_after <= %(now)s" + typed,
        base).fetchone()[0]
    if stats.deferred:
        log.info("%d due message(s) wait: their recipients are in quiet hours, or their send is throttled",
                 stats.deferred)
    stats.held_stale_orders = conn.execute(
        "select count(*) from outreach.message_ledger where status = 'pending' and send_after <= %(now)s"
        + typed + " and " + STALE_ORDERS_SQL, base).fetchone()[0]
    if stats.held_stale_orders:
        log.info("%d payment reminder(s) or shipment notice(s) wait for their shop's orders to be read again"
                 " (the intraday run reads them; fresh_orders_minutes in policy.yml)", stats.held_stale_orders)
    stats.in_flight = conn.execute("select count(*) from outreach.message_ledger where status = 'sending'"
                                   ).fetchone()[0]
    if stats.in_flight:
        log.info("%d message(s) are being sent by another push, or by one that stopped less than %d minutes"
                 " ago; a push after that asks the gateway what became of them", stats.in_flight,
                 STALE_SENDING.seconds // 60)
    conn.commit()  # cancellations found after the last batch
    stats.seconds = time.monotonic() - t0
    return stats


def _finish(conn, token: str, keys: list[str], assignments: str, args: tuple) -> int:
    """Write a batch's outcome to the rows that still carry this pusher's claim token."""
    return conn.execute(
        f"update outreach.message_ledger set {assignments}, claim_token = null, updated_at = now()"
        " where idempotency_key = any(%s) and claim_token = %s and status = 'sending'",
        (*args, keys, token)).rowcount


def _still_claimed(conn, token: str, keys: list[str]) -> bool:
    """Lock this pusher's claimed rows (held through the HTTP call) and check they are still its own."""
    held = conn.execute(
        "select count(*) from (select 1 from outreach.message_ledger where idempotency_key = any(%s)"
        " and claim_token = %s and status = 'sending' for update) mine", (keys, token)).fetchone()[0]
    return held == len(keys)


def _send_fenced(conn, gateway: Gateway, batch: str, token: str, keys: list[str], messages: list[OutMessage],
                 max_attempts: int, sleep: Callable[[float], None], stats: PushStats):
    """The HTTP attempts of one claimed batch, under the lock of its rows; None when the claim
    was lost before the first attempt (another push reconciled the rows)."""
    if not _still_claimed(conn, token, keys):
        conn.rollback()
        stats.fenced += len(keys)
        log.warning("%s batch %s: its rows were reconciled by another push while this one was away; not sent",
                    gateway.name, batch)
        return None
    return _send_with_retries(gateway, batch, messages, max_attempts, sleep, stats)


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
