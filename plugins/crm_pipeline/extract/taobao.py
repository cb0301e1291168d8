"""Taobao/Tmall Open Platform (TOP) trades (reference §3).

Nightly: ``taobao.trades.sold.increment.get`` over windows of at most one day
(the API's limit). Backfill: ``taobao.trades.sold.get`` by creation time.
Signed requests (md5, hmac or hmac-sha256), ``use_has_next`` paging, and
throttling: error code 7 says in ``sub_msg`` how long the ban lasts; we wait
that long and resume. Receiver phones arrive masked; with ``decrypt_pii`` the
connector asks ``taobao.top.oaid.decrypt`` (20 per call) for the real ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from crm_pipeline.extract.base import Connector, Retryable, Window, in_parallel, local_day_bounds, months_before
from crm_pipeline.extract.signing import top_sign

CN = ZoneInfo("Asia/Shanghai")
TRADE_FIELDS = (
    "tid,tid_str,status,type,trade_from,created,modified,pay_time,consign_time,end_time,buyer_nick,buyer_open_uid,"
    "receiver_name,receiver_mobile,receiver_phone,receiver_state,receiver_city,receiver_district,receiver_address,"
    "receiver_zip,oaid,payment,total_fee,post_fee,discount_fee,buyer_rate,seller_rate,seller_memo,orders"
)
_BAN_RE = re.compile(r"(\d+)\s*more seconds")
# error codes worth retrying: throttles and platform-side trouble (isp.*)
_RETRY_CODES = {4, 5, 6, 7, 8, 10}
PAGE_SIZE = 100
DECRYPT_BATCH = 20  # oaid.decrypt takes at most 20 per call (reference §3)
DECRYPT_PARALLEL = 4  # a 100-order page needs 5 decrypt calls; they are independent


def top_time(dt: datetime) -> str:
    return dt.astimezone(CN).strftime("%Y-%m-%d %H:%M:%S")


BACKFILL_MONTHS = 3  # how far back taobao.trades.sold.get reaches (reference §3)


class TaobaoConnector(Connector):
    platform = "taobao"
    max_window = timedelta(days=1)  # increment.get: start..end at most one day
    max_backfill_window = timedelta(days=31)

    @property
    def page_size(self) -> int:
        return int(self.shop.options.get("page_size", PAGE_SIZE))

    def call(self, method: str, params: dict[str, object], what: str) -> dict:
        """One signed TOP call with retries; returns the ``*_response`` object."""
        sign_method = str(self.shop.options.get("sign_method", "md5"))
        secret = self.shop.credential("app_secret")
        app_key = self.shop.credential("app_key")
        session_key = self.shop.credential("session")

        def send():
            full = {
                "method": method,
                "app_key": app_key,
                "session": session_key,
                "timestamp": top_time(datetime.now(CN)),
                "v": "2.0",
                "sign_method": sign_method,
                "format": "json",
                **{k: str(v) for k, v in params.items() if v is not None},
            }
            full["sign"] = top_sign(full, secret, sign_method)
            return self.post_form(full)

        def check(response):
            body = self.parse_json(response, what)
            if "error_response" in body:
                err = body["error_response"]
                code = int(err.get("code", 0) or 0)
                sub_code, sub_msg = str(err.get("sub_code", "")), str(err.get("sub_msg", ""))
                if code == 7 or code in _RETRY_CODES or sub_code.startswith("isp."):
                    ban = _BAN_RE.search(sub_msg)
                    raise Retryable(f"TOP error {code} {err.get('msg')} {sub_code}",
                                    float(ban.group(1)) if ban else None)
                hint = " (check app_key/app_secret/session for this shop)" if code in (25, 26, 27, 28, 29) else ""
                raise self.fail(f"{what}: TOP error {code} {err.get('msg')} {sub_code} {sub_msg}{hint}")
            key = method.replace("taobao.", "", 1).replace(".", "_") + "_response"
            if key not in body:
                raise Retryable(f"response without {key}")
            return body[key]

        return self.request(what, send, check)

    def check_history(self, start: datetime, mode: str, now: datetime) -> None:
        # trades.sold.get: "only the last 3 months are queryable" (reference §3, T4); the
        # nightly API (increment.get) has no documented limit
        if mode != "backfill":
            return
        first = local_day_bounds(months_before(now.astimezone(CN).date(), BACKFILL_MONTHS), CN)[0]
        if start < first:
            raise self.fail(
                f"taobao.trades.sold.get serves only orders created in the last {BACKFILL_MONTHS} months "
                f"(from {first.date()}), and this backfill starts {start.astimezone(CN).date()}: older orders "
                f"cannot be read through the API. Back-fill from {first.date()} or later."
            )

    def _query(self, window: Window, mode: str) -> tuple[str, dict]:
        if mode == "backfill":
            return "taobao.trades.sold.get", {
                "fields": TRADE_FIELDS,
                "start_created": top_time(window.start),
                "end_created": top_time(window.end),
            }
        return "taobao.trades.sold.increment.get", {
            "fields": TRADE_FIELDS,
            "start_modified": top_time(window.start),
            "end_modified": top_time(window.end),
        }

    def fetch(self, window: Window, mode: str = "nightly") -> Iterator[list[dict]]:
        method, params = self._query(window, mode)
        page_no, has_next = 1, True
        while has_next:
            resp = self.call(method, {**params, "page_no": page_no, "page_size": self.page_size, "use_has_next": "true"},
                             f"{method} page {page_no} of window {window}")
            trades = (resp.get("trades") or {}).get("trade") or []
            if not isinstance(trades, list):
                raise self.fail(f"{method} page {page_no}: 'trades.trade' is not a list")
            has_next = bool(resp.get("has_next"))
            yield self.enrich(trades)
            page_no += 1

    def count(self, window: Window, mode: str = "nightly") -> int | None:
        method, params = self._query(window, mode)
        resp = self.call(method, {**params, "page_no": 1, "page_size": 1}, f"{method} count for window {window}")
        return int(resp.get("total_results", 0))

    def enrich(self, records: list[dict]) -> list[dict]:
        """Attach decrypted receiver data (oaid decrypt) under ``__enrichment__``.

        A page's decrypt batches go out ``decrypt_parallel`` (shop option, default 4)
        at a time: each is a full round trip, and sequentially they took longer than
        the page itself. Any batch failing fails the page, as before.
        """
        if not self.shop.options.get("decrypt_pii"):
            return records
        wanted = [r for r in records if isinstance(r, dict) and r.get("oaid") and "*" in str(r.get("receiver_mobile", ""))]
        chunks = [wanted[i: i + DECRYPT_BATCH] for i in range(0, len(wanted), DECRYPT_BATCH)]
        workers = int(self.shop.options.get("decrypt_parallel", DECRYPT_PARALLEL))
        for chunk, receivers in zip(chunks, in_parallel([lambda c=c: self._decrypt(c) for c in chunks], workers),
                                    strict=True):
            found = {(x.get("oaid"), str(x.get("tid"))): x for x in receivers}
            for r in chunk:
                hit = found.get((r["oaid"], _tid(r)))
                if hit:
                    r["__enrichment__"] = {"receiver": {k: hit.get(k) for k in ("name", "mobile", "state", "city",
                                                                                  "district", "address_detail")}}
        return records

    def _decrypt(self, chunk: list[dict]) -> list[dict]:
        query = [{"oaid": r["oaid"], "tid": _tid(r), "scene": "1001"} for r in chunk]
        resp = self.call("taobao.top.oaid.decrypt", {"query_list": json.dumps(query)}, "oaid decrypt")
        return (resp.get("receiver_list") or {}).get("receiver", [])


def _tid(record: dict) -> str:
    return str(record.get("tid_str") or record.get("tid"))
