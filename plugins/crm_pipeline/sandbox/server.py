"""Local sandbox: fake platforms and gateways that speak the real wire formats.

One ``ThreadingHTTPServer`` on 127.0.0.1 serves:

* ``/shopify/<shop>/admin/api/<version>/orders.json`` and ``orders/count.json``;
  ``/shopify/<shop>/admin/oauth/access_scopes.json``
* ``/taobao/router/rest`` (TOP router: trades.sold.get, trades.sold.increment.get,
  traderates.get, top.oaid.decrypt)
* ``/jd/routerjson`` (jingdong.pop.order.search)
* ``/woocommerce/<shop>/wp-json/wc/v3/orders``
* ``/youzan/auth/token``, ``/youzan/api/<api>/<version>`` (youzan.trades.sold.get,
  youzan.cloud.secret.decrypt.batch)
* ``/aliyun/`` (dysmsapi SendBatchSms, QuerySendDetails), ``/sendgrid/v3/mail/send``,
  ``/webhook/<name>``
* ``/_control/...``: faults, received messages, health (for tests and the demo).

Authentication and signatures are verified, paging and throttling behave as
documented, and faults can be switched on per target (see :class:`Fault`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from crm_pipeline import clock
from crm_pipeline.config import load_env_file
from crm_pipeline.extract.base import months_before
from crm_pipeline.extract.shopify import DEFAULT_ORDER_DAYS
from crm_pipeline.extract.signing import aliyun_rpc_sign, constant_time_equal, top_sign, webhook_sign
from crm_pipeline.extract.taobao import BACKFILL_MONTHS
from crm_pipeline.extract.youzan import DECRYPT_API, DECRYPT_BATCH, ORDERS_API, THROTTLE_ERRORS
from crm_pipeline.sandbox import formats
from crm_pipeline.sandbox.world import SHOPS, TZ, World, get_world

SHOPIFY_API_VERSION = "2025-10"
DEFAULT_SHOPIFY_SCOPES = ["read_orders", "read_all_orders"]
REQUEST_FAULTS = ("throttle", "server_error", "timeout", "truncated")
YOUZAN_KDT_IDS = {"youzan_wx": "134529034"}  # the sandbox shops' kdt_id (their grant_id)


def secret_env(shop_or_service: str, field_name: str) -> str:
    return f"CRM_SECRET_{shop_or_service.upper()}_{field_name.upper()}"


@dataclass
class Fault:
    """A switchable fault.

    ``target``: a platform (taobao, jd, shopify, woocommerce, youzan) or gateway
    (aliyun, sendgrid, webhook). ``kind``: throttle | server_error | timeout |
    truncated | duplicate | update_while_paging | accept_then_timeout |
    malformed | token_expired (Youzan: the token in use stops working).
    ``times``: how many requests it affects (-1 = always); ``after``: matching
    requests to let through first. ``shop`` narrows it.
    """

    target: str
    kind: str
    times: int = 1
    after: int = 0
    shop: str | None = None
    params: dict = field(default_factory=dict)
    fired: int = 0

    def matches(self, target: str, shop: str | None) -> bool:
        return self.target == target and (self.shop is None or self.shop == shop)


class SandboxState:
    def __init__(self, anchor: date, persons: int, secrets: dict[str, str], log_dir: Path | None = None,
                 throttle: bool = True, dirty: bool = True):
        self.world: World = get_world(anchor, persons)
        self.secrets = secrets
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.throttle = throttle
        self.dirty = dirty
        self.buckets: dict[str, tuple[float, float]] = {}  # shopify token -> (level, last time)
        self.shopify_scopes: dict[str, list[str]] = {}  # shop -> granted scopes (default: DEFAULT_SHOPIFY_SCOPES)
        self.top_calls: list[float] = []
        self.youzan_tokens: dict[str, str] = {}  # live access token -> shop
        self.messages: list[dict] = []
        self.log_dir = log_dir
        self.requests = 0
        self._mutations: dict[tuple, int] = {}
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
            self._load_messages()

    # -- message log (the gateways' memory survives restarts) -----------------
    @property
    def message_log(self) -> Path | None:
        return self.log_dir / "gateway_messages.jsonl" if self.log_dir else None

    def _load_messages(self) -> None:
        if self.message_log and self.message_log.exists():
            for line in self.message_log.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self.messages.append(json.loads(line))

    def record_many(self, messages: list[dict]) -> None:
        """Remember accepted messages (one log append per gateway call)."""
        with self.lock:
            self.messages.extend(messages)
            if self.message_log and messages:
                with self.message_log.open("a", encoding="utf-8") as fh:
                    fh.write("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages))

    # -- faults ---------------------------------------------------------------
    def take_fault(self, target: str, shop: str | None, kinds: tuple[str, ...] | None = None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if not fault.matches(target, shop) or (kinds and fault.kind not in kinds):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.times == 0:
                    continue
                if fault.times > 0:
                    fault.times -= 1
                fault.fired += 1
                return fault
        return None

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def shop_by_secret(self, platform: str, field_name: str, value: str) -> str | None:
        for shop in SHOPS:
            if shop.platform == platform and self.secret(secret_env(shop.shop_id, field_name)) == value:
                return shop.shop_id
        return None


def formats_visible(platform: str, order, as_of: datetime) -> bool:
    return formats.jd_visible(order, as_of) if platform == "jd" else True


def _parse_top_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=TZ)


class Handler(BaseHTTPRequestHandler):
    server_version = "crm-sandbox/1.0"
    protocol_version = "HTTP/1.1"
    # one write per response and no Nagle delay: otherwise every keep-alive
    # request pays a 40 ms delayed-ACK stall
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    state: SandboxState  # set on the server class

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep stdout quiet
        return

    # -- plumbing --------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None,
              truncate: bool = False) -> None:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        if truncate:
            body = body[: max(1, len(body) // 2)]
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _params(self, body: bytes) -> dict[str, str]:
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        params = {k: v[-1] for k, v in query.items()}
        ctype = self.headers.get("Content-Type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()})
        return params

    def _common_fault(self, target: str, shop: str | None) -> Fault | None:
        """Apply a timeout here; return a throttle, 5xx or truncation fault for the caller.

        Only these kinds: the data faults (duplicate, update_while_paging, malformed) are
        taken by ``_data_fault`` once the page is known. Taking every kind here used to
        swallow a data fault whose turn came (it fired without effect)."""
        fault = self.state.take_fault(target, shop, kinds=REQUEST_FAULTS)
        if fault is None:
            return None
        if fault.kind == "timeout":
            time.sleep(float(fault.params.get("delay", 3)))
            return None
        return fault

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        with self.state.lock:
            self.state.requests += 1
        path = urlsplit(self.path).path
        body = self._body()
        try:
            parts = [p for p in path.split("/") if p]
            if parts[:1] == ["_control"]:
                return self._control(parts[1:], body)
            if parts[:1] == ["shopify"] and len(parts) >= 6 and parts[2:4] == ["admin", "api"]:
                return self._shopify(parts[1], "/".join(parts[5:]), body)
            if parts[:1] == ["shopify"] and parts[2:] == ["admin", "oauth", "access_scopes.json"]:
                return self._shopify(parts[1], "oauth/access_scopes.json", body)
            if parts[:3] == ["taobao", "router", "rest"]:
                return self._taobao(self._params(body))
            if parts[:2] == ["jd", "routerjson"]:
                return self._jd(self._params(body))
            if parts[:1] == ["woocommerce"] and parts[2:6] == ["wp-json", "wc", "v3", "orders"]:
                return self._woo(parts[1], body)
            if parts[:3] == ["youzan", "auth", "token"]:
                return self._youzan_token(body)
            if parts[:2] == ["youzan", "api"] and len(parts) == 4:
                return self._youzan(parts[2], parts[3], body)
            if parts[:1] == ["aliyun"]:
                return self._aliyun(self._params(body))
            if parts[:4] == ["sendgrid", "v3", "mail", "send"]:
                return self._sendgrid(body)
            if parts[:3] == ["sendgrid", "v3", "messages"]:
                return self._sendgrid_activity()
            if parts[:1] == ["webhook"]:
                return self._webhook(parts[1] if len(parts) > 1 else "default", body)
            self._send(404, {"errors": "Not Found"})
        except BrokenPipeError:
            return
        except Exception as exc:  # the sandbox must never hang a client
            self._send(500, {"errors": f"sandbox error: {exc.__class__.__name__}: {exc}"})

    # -- control API ---------------------------------------------------------------
    def _control(self, parts: list[str], body: bytes) -> None:
        st = self.state
        if parts == ["health"]:
            return self._send(200, {"ok": True, "orders": len(st.world.orders), "requests": st.requests})
        if parts == ["faults"] and self.command == "POST":
            spec = json.loads(body or b"{}")
            with st.lock:
                for item in spec if isinstance(spec, list) else [spec]:
                    st.faults.append(Fault(**item))
            return self._send(200, {"faults": len(st.faults)})
        if parts == ["faults"]:
            return self._send(200, [f.__dict__ for f in st.faults])
        if parts == ["reset"] and self.command == "POST":
            with st.lock:
                st.faults.clear()
                spec = json.loads(body or b"{}")
                if spec.get("messages"):
                    st.messages.clear()
                    if st.message_log and st.message_log.exists():
                        st.message_log.unlink()
                if "throttle" in spec:
                    st.throttle = bool(spec["throttle"])
                # {"shop_id": ["read_orders"]}: the scopes a Shopify token was granted
                st.shopify_scopes = {k: list(v) for k, v in (spec.get("shopify_scopes") or {}).items()}
            return self._send(200, {"ok": True})
        if parts == ["messages"]:
            with st.lock:
                return self._send(200, {"messages": list(st.messages)})
        if parts == ["clock"] and self.command == "POST":
            # {"now": ISO 8601 with offset | null}: the sandbox process's pipeline clock, for
            # benchmarks that drive a pusher in another process through midnight
            value = json.loads(body or b"{}").get("now")
            clock.set_now(datetime.fromisoformat(value) if value else None)
            return self._send(200, {"now": clock.now().isoformat()})
        self._send(404, {"errors": "unknown control endpoint"})

    # -- Shopify -----------------------------------------------------------------------
    def _shopify(self, shop: str, resource: str, body: bytes) -> None:
        st = self.state
        token = self.headers.get("X-Shopify-Access-Token", "")
        expected = st.secret(secret_env(shop, "access_token"))
        if not expected or not constant_time_equal(token, expected):
            return self._send(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
        limit_hdr = {}
        if st.throttle:
            with st.lock:
                level, last = st.buckets.get(token, (0.0, time.monotonic()))
                now = time.monotonic()
                level = max(0.0, level - (now - last) * 2.0)  # leak 2 requests/s, bucket 40
                if level + 1 > 40:
                    st.buckets[token] = (level, now)
                    return self._send(
                        429,
                        {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."},
                        {"Retry-After": "1.0", "X-Shopify-Shop-Api-Call-Limit": "40/40"},
                    )
                level += 1
                st.buckets[token] = (level, now)
            limit_hdr = {"X-Shopify-Shop-Api-Call-Limit": f"{int(level)}/40"}
        fault = self._common_fault("shopify", shop)
        if fault and fault.kind == "throttle":
            return self._send(429, {"errors": "Exceeded 2 calls per second for api client."},
                              {"Retry-After": str(fault.params.get("retry_after", "0.2"))})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 502)), {"errors": "Internal Server Error"})
        scopes = st.shopify_scopes.get(shop, DEFAULT_SHOPIFY_SCOPES)
        if resource == "oauth/access_scopes.json":
            return self._send(200, {"access_scopes": [{"handle": h} for h in scopes]}, limit_hdr)
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if resource not in ("orders.json", "orders/count.json"):
            return self._send(404, {"errors": "Not Found"})
        limit = int(query.get("limit", 50))
        if limit > 250 or limit < 1:
            return self._send(400, {"errors": {"limit": "Limit must be between 1 and 250."}})
        if "page" in query:
            return self._send(400, {"errors": {"page": "page cannot be passed."}})
        if "page_info" in query:
            extra = set(query) - {"page_info", "limit", "fields"}
            if extra:
                return self._send(400, {"errors": {"page_info": f"page_info cannot be combined with {sorted(extra)}"}})
            try:
                cursor = json.loads(base64.urlsafe_b64decode(query["page_info"].encode()))
            except Exception:
                return self._send(400, {"errors": {"page_info": "Invalid value."}})
            filters, after_id = cursor["f"], cursor["after"]
        else:
            filters, after_id = {k: v for k, v in query.items() if k not in ("limit", "fields")}, 0
        if filters.get("status", "open") != "any":
            # default "open" hides closed and cancelled orders, as the real API does
            pass
        start = _parse_iso(filters.get("updated_at_min")) or datetime(2000, 1, 1, tzinfo=TZ)
        as_of = _parse_iso(filters.get("updated_at_max")) or self._now()
        selected = st.world.modified_between(shop, start, as_of)
        if "read_all_orders" not in scopes:
            # without the scope only orders created in the last 60 days exist for the app,
            # and the API says nothing about the rest (reference §1)
            visible_from = self._now() - timedelta(days=DEFAULT_ORDER_DAYS)
            selected = [o for o in selected if o.created >= visible_from]
        if filters.get("status", "open") == "open":
            selected = [o for o in selected if o.status(as_of) in ("unpaid", "paid", "shipped")]
        selected.sort(key=lambda o: int(o.order_id))
        if resource == "orders/count.json":
            return self._send(200, {"count": len(selected)}, limit_hdr)
        page = [o for o in selected if int(o.order_id) > after_id][:limit]
        rendered = [self._dirty("shopify", formats.shopify_order(o, as_of), o) for o in page]
        rendered = self._data_fault("shopify", shop, rendered, page, as_of, selected)
        headers = dict(limit_hdr)
        if page and int(page[-1].order_id) < int(selected[-1].order_id):
            info = base64.urlsafe_b64encode(json.dumps({"f": filters, "after": int(page[-1].order_id)}).encode()).decode()
            host = self.headers.get("Host", "127.0.0.1")
            url = f"http://{host}/shopify/{shop}/admin/api/{SHOPIFY_API_VERSION}/orders.json?limit={limit}&page_info={info}"
            headers["Link"] = f'<{url}>; rel="next"'
        self._send(200, {"orders": rendered}, headers, truncate=bool(fault and fault.kind == "truncated"))

    # -- data faults shared by the paged APIs ----------------------------------------------
    def _data_fault(self, platform: str, shop: str, rendered: list, page: list, as_of: datetime,
                    selected: list) -> list:
        st = self.state
        fault = st.take_fault(platform, shop, kinds=("duplicate", "update_while_paging", "malformed"))
        if fault is None:
            return rendered
        renderer = {
            "shopify": formats.shopify_order,
            "taobao": formats.taobao_trade,
            "jd": formats.jd_order,
            "woocommerce": formats.woo_order,
            "youzan": formats.youzan_order,
        }[platform]
        if fault.kind == "duplicate" and selected:
            # the first order of the window shows up again on this page
            rendered = [renderer(selected[0], as_of)] + rendered
        elif fault.kind == "update_while_paging":
            # after this page is served, an order elsewhere in the shop is modified just
            # inside the window: offset paging shifts, cursors may skip it
            in_window = {o.seq for o in selected}
            candidates = [o for o in st.world.by_shop.get(shop, []) if o.created < as_of - timedelta(hours=1)
                          and o.seq not in in_window and formats_visible(platform, o, as_of)]
            target = candidates[len(candidates) // 2] if candidates else (selected[-1] if selected else None)
            if target is not None:
                target.remark_updates.append(as_of - timedelta(seconds=1))
                st.world.reindex()
        elif fault.kind == "malformed":
            variant = fault.params.get("variant", "not_json")
            if variant == "missing_id" and rendered:
                bad = json.loads(json.dumps(rendered[0]))
                for key in ("id", "tid", "tid_str", "orderId"):
                    bad.pop(key, None)
                    (bad.get("full_order_info") or {}).get("order_info", {}).pop(key, None)
                rendered = [bad] + rendered
        return rendered

    def _dirty(self, platform: str, record: dict, order) -> dict:
        """A few records every real feed has: they must end in quarantine, not in marts."""
        if not self.state.dirty:
            return record
        key = order.seq % 499
        if platform == "shopify" and key == 7:
            record["shipping_address"]["phone"] = "12345"
            record["phone"] = "12345"
            record["customer"]["phone"] = "12345"
        elif platform == "woocommerce" and key == 11:
            record["total"] = "-" + record["total"]
        elif platform == "jd" and key == 13:
            record["orderStartTime"] = "0000-00-00 00:00:00"
        elif platform == "taobao" and key == 17:
            record["status"] = "TRADE_UNKNOWN_STATE"
        elif platform == "youzan" and key == 19:  # a phone that decrypts to nonsense
            record["full_order_info"]["address_info"]["receiver_tel"] = formats.yz_encrypt(order.shop.shop_id, "12345")
        return record

    def _now(self) -> datetime:
        """The platforms' "now": the pipeline's clock (``CRM_NOW`` when pinned), never past the world's end.

        What a platform serves depends on when it is asked (TOP's backfill reaches back 3 months,
        Shopify's default 60 days): a replayed day must see the platforms as they were that
        morning, not as of whenever the replay runs, or the same logical date lands different
        rows on different days (and a pinned test breaks when the calendar moves on).
        Request timestamps are still checked against the real clock, as the platforms do.
        """
        return min(clock.now().astimezone(TZ), datetime.combine(self.state.world.end, datetime.min.time(), TZ))

    # -- Taobao TOP -----------------------------------------------------------------------
    def _top_error(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> None:
        err = {"code": code, "msg": msg, "request_id": uuid.uuid4().hex[:12]}
        if sub_code:
            err["sub_code"] = sub_code
        if sub_msg:
            err["sub_msg"] = sub_msg
        self._send(200, {"error_response": err})

    def _taobao(self, params: dict[str, str]) -> None:
        st = self.state
        for name, code, msg in (("method", 21, "Missing Method"), ("app_key", 28, "Missing App Key"),
                                ("sign", 24, "Missing Signature"), ("timestamp", 30, "Missing Timestamp"),
                                ("session", 26, "Missing Session")):
            if not params.get(name):
                return self._top_error(code, msg)
        shop = st.shop_by_secret("taobao", "session", params["session"])
        if shop is None:
            return self._top_error(27, "Invalid Session", "invalid-sessionkey", "SessionKey非法")
        if params["app_key"] != st.secret(secret_env(shop, "app_key")):
            return self._top_error(29, "Invalid App Key")
        try:
            sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)
        except ValueError:
            return self._top_error(31, "Invalid Timestamp")
        if abs((datetime.now(TZ) - sent).total_seconds()) > 600:
            return self._top_error(31, "Invalid Timestamp", "isv.invalid-timestamp", "时间戳超出允许范围(±10分钟)")
        secret = st.secret(secret_env(shop, "app_secret")) or ""
        expected = top_sign(params, secret, params.get("sign_method", "md5"))
        if not constant_time_equal(expected, params["sign"].upper()):
            return self._top_error(25, "Invalid Signature")
        if st.throttle:
            with st.lock:
                now = time.monotonic()
                st.top_calls = [t for t in st.top_calls if now - t < 1.0] + [now]
                if len(st.top_calls) > 200:
                    return self._top_error(7, "App Call Limited", "accesscontrol.limited-by-api-access-count",
                                           "This ban will last for 1 more seconds")
        fault = self._common_fault("taobao", shop)
        if fault and fault.kind == "throttle":
            secs = fault.params.get("ban_seconds", 1)
            return self._top_error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                                   f"This ban will last for {secs} more seconds")
        if fault and fault.kind == "server_error":
            if fault.params.get("status"):
                return self._send(int(fault.params["status"]), b"<html>502 Bad Gateway</html>")
            return self._top_error(15, "Remote service error", "isp.remote-service-timeout", "服务暂时不可用")
        method = params["method"]
        if method == "taobao.top.oaid.decrypt":
            return self._top_decrypt(shop, params)
        if method not in ("taobao.trades.sold.get", "taobao.trades.sold.increment.get", "taobao.traderates.get"):
            return self._top_error(22, "Invalid Method")
        try:
            page_no = int(params.get("page_no") or 1)
            page_size = int(params.get("page_size") or 40)
        except ValueError:
            return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter", "page_no/page_size")
        if not 1 <= page_size <= 100:
            return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter:page_size", "page_size must be 1-100")
        if method != "taobao.traderates.get" and not params.get("fields"):
            return self._top_error(40, "Missing Required Arguments", "isv.missing-parameter:fields", "fields")
        if method == "taobao.trades.sold.increment.get":
            start = _parse_top_time(params.get("start_modified"))
            end = _parse_top_time(params.get("end_modified"))
            if not start or not end:
                return self._top_error(40, "Missing Required Arguments", "isv.missing-parameter", "start_modified,end_modified")
            if end - start > timedelta(days=1) or end < start:
                return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter",
                                       "start_modified和end_modified的时间间隔不能超过一天")
            selected = st.world.modified_between(shop, start, end)
            as_of = end
            key = "trades_sold_increment_get_response"
        elif method == "taobao.trades.sold.get":
            # only the last 3 months (BACKFILL_MONTHS) are queryable (reference §3; the error's code and text are UNCONFIRMED)
            horizon = datetime.combine(months_before(self._now().date(), BACKFILL_MONTHS), datetime.min.time(), TZ)
            start = _parse_top_time(params.get("start_created")) or horizon
            if start < horizon:
                return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter:start_created",
                                       "只能查询三个月内的订单")
            end = _parse_top_time(params.get("end_created")) or self._now()
            as_of = end
            selected = st.world.created_between(shop, start, end)
            key = "trades_sold_get_response"
        else:
            return self._top_rates(shop, params, page_no, page_size)
        selected = [o for o in selected if o.created <= as_of]
        selected.sort(key=lambda o: (o.modified(as_of), o.seq), reverse=True)  # newest first
        window = selected[(page_no - 1) * page_size: page_no * page_size]
        rendered = [self._dirty("taobao", formats.taobao_trade(o, as_of), o) for o in window]
        rendered = self._data_fault("taobao", shop, rendered, window, as_of, selected)
        resp: dict = {"trades": {"trade": rendered}, "request_id": uuid.uuid4().hex[:12]}
        if params.get("use_has_next") == "true":
            resp["has_next"] = page_no * page_size < len(selected)
        else:
            resp["total_results"] = len(selected)
        self._send(200, {key: resp}, truncate=bool(fault and fault.kind == "truncated"))

    def _top_decrypt(self, shop: str, params: dict[str, str]) -> None:
        try:
            queries = json.loads(params.get("query_list") or "[]")
        except json.JSONDecodeError:
            return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter:query_list", "query_list")
        if len(queries) > 20:
            return self._top_error(41, "Invalid Arguments", "isv.invalid-parameter:query_list", "at most 20 per call")
        out = []
        for q in queries:
            order = self.state.world.order_by_id(shop, str(q.get("tid")))
            if order and formats.oaid_for(order) == q.get("oaid"):
                out.append(formats.taobao_decrypt(order))
        self._send(200, {"top_oaid_decrypt_response": {"receiver_list": {"receiver": out},
                                                        "request_id": uuid.uuid4().hex[:12]}})

    def _top_rates(self, shop: str, params: dict[str, str], page_no: int, page_size: int) -> None:
        start = _parse_top_time(params.get("start_date")) or datetime(2000, 1, 1, tzinfo=TZ)
        end = _parse_top_time(params.get("end_date")) or self._now()
        rated = [o for o in self.state.world.by_shop.get(shop, [])
                 if o.rating and o.finished and start <= o.finished <= end]
        rated.sort(key=lambda o: (o.finished, o.seq), reverse=True)
        window = rated[(page_no - 1) * page_size: page_no * page_size]
        resp: dict = {"trade_rates": {"trade_rate": [formats.taobao_rate(o) for o in window]},
                      "request_id": uuid.uuid4().hex[:12]}
        if params.get("use_has_next") == "true":
            resp["has_next"] = page_no * page_size < len(rated)
        else:
            resp["total_results"] = len(rated)
        self._send(200, {"traderates_get_response": resp})

    # -- JD ------------------------------------------------------------------------------
    def _jd_error(self, code: str, zh: str, en: str) -> None:
        self._send(200, {"error_response": {"code": code, "zh_desc": zh, "en_desc": en}})

    def _jd(self, params: dict[str, str]) -> None:
        st = self.state
        if not params.get("sign"):
            return self._jd_error("11", "缺少签名参数", "Missing Signature")
        if not params.get("timestamp"):
            return self._jd_error("7", "缺少时间戳参数", "Missing Timestamp")
        if not params.get("method"):
            return self._jd_error("14", "缺少方法名参数", "Missing Method")
        shop = st.shop_by_secret("jd", "access_token", params.get("access_token", ""))
        if shop is None:
            return self._jd_error("19", "无效的access_token", "Invalid access_token")
        try:
            sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=TZ)
        except ValueError:
            return self._jd_error("8", "无效的时间戳参数", "Invalid Timestamp")
        if abs((datetime.now(TZ) - sent).total_seconds()) > 360:
            return self._jd_error("8", "无效的时间戳参数", "Invalid Timestamp")
        secret = st.secret(secret_env(shop, "app_secret")) or ""
        if not constant_time_equal(top_sign(params, secret, "md5"), params["sign"].upper()):
            return self._jd_error("12", "无效签名", "Invalid Signature")
        if params["method"] != "jingdong.pop.order.search":
            return self._jd_error("15", "无效的方法名参数", "Invalid Method")
        fault = self._common_fault("jd", shop)
        if fault and fault.kind == "throttle":
            return self._jd_error("2", "限制时间内调用失败次数", "App Call Limited")
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 503)), b"Service Unavailable")
        try:
            biz = json.loads(params.get("360buy_param_json") or "{}")
        except json.JSONDecodeError:
            return self._jd_error("43", "参数错误", "Parameter Error: 360buy_param_json")
        if not biz.get("optional_fields"):
            return self._jd_error("40", "缺少必选参数optional_fields", "Missing Required Arguments: optional_fields")
        start, end = _parse_top_time(biz.get("start_date")), _parse_top_time(biz.get("end_date"))
        if not start or not end or end < start or end - start > timedelta(days=31):
            return self._jd_error("41", "时间范围不能超过一个月", "Invalid Arguments: date window must be <= 1 month")
        page, page_size = int(biz.get("page") or 1), int(biz.get("page_size") or 50)
        if not 1 <= page_size <= 100:
            return self._jd_error("41", "page_size超出范围", "Invalid Arguments: page_size")
        states = set(filter(None, (biz.get("order_state") or "").split(",")))
        selected = [o for o in st.world.modified_between(shop, start, end) if formats.jd_visible(o, end)]
        if states:
            selected = [o for o in selected if formats.JD_STATUS[o.status(end)][0] in states]
        selected.sort(key=lambda o: (o.modified(end), o.seq), reverse=True)
        window = selected[(page - 1) * page_size: page * page_size]
        rendered = [self._dirty("jd", formats.jd_order(o, end), o) for o in window]
        rendered = self._data_fault("jd", shop, rendered, window, end, selected)
        body = {"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result": {
            "apiResult": {"success": True, "englishErrCode": "", "chineseErrCode": "", "numberCode": 0},
            "orderTotal": len(selected), "orderInfoList": rendered}}}
        self._send(200, body, truncate=bool(fault and fault.kind == "truncated"))

    # -- WooCommerce -------------------------------------------------------------------------
    def _woo(self, shop: str, body: bytes) -> None:
        st = self.state
        auth = self.headers.get("Authorization", "")
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        key = st.secret(secret_env(shop, "consumer_key"))
        secret = st.secret(secret_env(shop, "consumer_secret"))
        ok = False
        if auth.startswith("Basic "):
            try:
                user, _, pwd = base64.b64decode(auth[6:]).decode().partition(":")
                ok = bool(key) and constant_time_equal(user, key) and constant_time_equal(pwd, secret or "")
            except Exception:
                ok = False
        elif query.get("consumer_key"):
            ok = query.get("consumer_key") == key and query.get("consumer_secret") == secret
        if not ok:
            return self._send(401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
                                    "data": {"status": 401}})
        fault = self._common_fault("woocommerce", shop)
        if fault and fault.kind == "throttle":
            return self._send(429, {"code": "too_many_requests", "message": "Too Many Requests", "data": {"status": 429}},
                              {"Retry-After": str(fault.params.get("retry_after", "0.2"))})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 500)),
                              {"code": "internal_server_error", "message": "Internal Server Error", "data": {"status": 500}})
        per_page, page = int(query.get("per_page", 10)), int(query.get("page", 1))
        if not 1 <= per_page <= 100:
            return self._send(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page",
                                    "data": {"status": 400, "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}}})
        gmt = query.get("dates_are_gmt") == "true"

        def parse(value: str | None) -> datetime | None:
            if not value:
                return None
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC if gmt else TZ)
            return dt

        start = parse(query.get("modified_after")) or datetime(2000, 1, 1, tzinfo=TZ)
        as_of = parse(query.get("modified_before")) or self._now()
        selected = st.world.modified_between(shop, start, as_of)
        selected.sort(key=lambda o: (o.created, o.seq), reverse=query.get("order", "desc") == "desc")
        total = len(selected)
        pages = max(1, -(-total // per_page))
        window = selected[(page - 1) * per_page: page * per_page]
        rendered = [self._dirty("woocommerce", formats.woo_order(o, as_of), o) for o in window]
        if per_page > 1:  # not the one-record probe a client counts a window with
            rendered = self._data_fault("woocommerce", shop, rendered, window, as_of, selected)
        host = self.headers.get("Host", "127.0.0.1")
        base = f"http://{host}/woocommerce/{shop}/wp-json/wc/v3/orders"
        links = []
        if page < pages:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if page > 1:
            links.append(f'<{base}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        self._send(200, rendered, headers, truncate=bool(fault and fault.kind == "truncated"))

    # -- Youzan ---------------------------------------------------------------------------------
    def _youzan_token(self, body: bytes) -> None:
        st = self.state
        try:
            req = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return self._send(200, {"success": False, "code": 4000, "message": "请求体不是合法的JSON"})
        shop = st.shop_by_secret("youzan", "client_id", str(req.get("client_id", "")))
        secret = st.secret(secret_env(shop, "client_secret")) if shop else None
        if req.get("authorize_type") != "silent" or shop is None or not secret \
                or not constant_time_equal(str(req.get("client_secret", "")), secret):
            return self._send(200, {"success": False, "code": 4001, "message": "client_id或client_secret错误"})
        if str(req.get("grant_id")) != YOUZAN_KDT_IDS.get(shop):
            return self._send(200, {"success": False, "code": 4002, "message": "店铺未授权该应用"})
        token = f"yz{uuid.uuid4().hex}"
        with st.lock:
            st.youzan_tokens[token] = shop
        expires = int((datetime.now(UTC) + timedelta(days=7)).timestamp() * 1000)
        self._send(200, {"success": True, "code": 200, "message": None,
                         "data": {"access_token": token, "expires": expires, "scope": "trade,secret"}})

    def _youzan_answer(self, data, truncate: bool = False) -> None:
        self._send(200, {"success": True, "code": 200, "message": "successful", "data": data}, truncate=truncate)

    def _youzan(self, api: str, version: str, body: bytes) -> None:
        st = self.state
        token = parse_qs(urlsplit(self.path).query).get("access_token", [""])[-1]
        shop = st.youzan_tokens.get(token)
        if shop is None:
            return self._send(200, {"gw_err_resp": {"err_code": 4203, "err_msg": "access_token不存在"}})
        if st.take_fault("youzan", shop, kinds=("token_expired",)):
            with st.lock:
                st.youzan_tokens.pop(token, None)
            return self._send(200, {"gw_err_resp": {"err_code": 4202, "err_msg": "access_token已过期"}})
        if (api, version) not in (ORDERS_API, DECRYPT_API):
            return self._send(200, {"gw_err_resp": {"err_code": 4004, "err_msg": f"api不存在: {api}/{version}"}})
        fault = self._common_fault("youzan", shop)
        if fault and fault.kind == "throttle":
            return self._send(200, {"gw_err_resp": {"err_code": min(THROTTLE_ERRORS), "err_msg": "调用频率超限"}})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 502)), b"<html>502 Bad Gateway</html>")
        try:
            req = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return self._send(200, {"success": False, "code": 4000, "message": "请求体不是合法的JSON"})
        if (api, version) == DECRYPT_API:
            sources = req.get("sources")
            if not isinstance(sources, list) or len(sources) > DECRYPT_BATCH:
                return self._send(200, {"success": False, "code": 4000,
                                        "message": f"sources必须是不超过{DECRYPT_BATCH}条的数组"})
            plain = {c: formats.yz_decrypt(shop, c) for c in sources}
            return self._youzan_answer({c: p for c, p in plain.items() if p is not None})
        try:
            page_no, page_size = int(req.get("page_no") or 1), int(req.get("page_size") or 20)
        except (TypeError, ValueError):
            return self._send(200, {"success": False, "code": 4000, "message": "page_no/page_size不合法"})
        if not 1 <= page_size <= 100 or page_no < 1:
            return self._send(200, {"success": False, "code": 4000, "message": "page_size取值范围1-100"})
        # both pairs given: update time wins; an unpaired bound is ignored (reference §5)
        start, end = _parse_top_time(req.get("start_update")), _parse_top_time(req.get("end_update"))
        if start and end:
            as_of = end
            selected = st.world.modified_between(shop, start, end)
            selected.sort(key=lambda o: (o.modified(as_of), o.seq), reverse=True)
        else:
            start, end = _parse_top_time(req.get("start_created")), _parse_top_time(req.get("end_created"))
            if not (start and end):
                start, end = datetime(2000, 1, 1, tzinfo=TZ), self._now()
            as_of = end
            selected = st.world.created_between(shop, start, end)
            selected.sort(key=lambda o: (o.created, o.seq), reverse=True)
        selected = [o for o in selected if o.created <= as_of]
        window = selected[(page_no - 1) * page_size: page_no * page_size]
        rendered = [self._dirty("youzan", formats.youzan_order(o, as_of), o) for o in window]
        rendered = self._data_fault("youzan", shop, rendered, window, as_of, selected)
        self._youzan_answer({"full_order_info_list": rendered, "total_results": len(selected)},
                            truncate=bool(fault and fault.kind == "truncated"))

    # -- gateways ------------------------------------------------------------------------------
    def _gateway_fault(self, target: str) -> Fault | None:
        fault = self.state.take_fault(target, None)
        if fault and fault.kind == "timeout":
            time.sleep(float(fault.params.get("delay", 3)))
            return None
        return fault

    def _received_at(self) -> str:
        """When a gateway took a message: the pipeline's clock, as for the platforms (D50), so a
        test that drives the clock through midnight sees the gateway's day turn with it."""
        return clock.now().astimezone(TZ).isoformat()

    def _aliyun(self, params: dict[str, str]) -> None:
        st = self.state
        key_id = st.secret(secret_env("aliyun_sms", "access_key_id"))
        secret = st.secret(secret_env("aliyun_sms", "access_key_secret")) or ""
        if params.get("AccessKeyId") != key_id:
            return self._send(404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."})
        expected = aliyun_rpc_sign(params, secret, self.command)
        if not constant_time_equal(expected, params.get("Signature", "")):
            return self._send(400, {"Code": "SignatureDoesNotMatch",
                                    "Message": "Specified signature is not matched with our calculation."})
        if params.get("Version") != "2017-05-25":
            return self._send(400, {"Code": "InvalidVersion", "Message": "Specified parameter Version is not valid."})
        action = params.get("Action")
        if action == "QuerySendDetails":
            return self._aliyun_query(params)
        if action != "SendBatchSms":
            return self._send(400, {"Code": "InvalidAction.NotFound", "Message": f"Action {action} not supported"})
        fault = self._gateway_fault("aliyun")
        if fault and fault.kind == "throttle":
            return self._send(400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control.",
                                    "RequestId": uuid.uuid4().hex})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 503)), {"Code": "ServiceUnavailable",
                                                                    "Message": "The request has failed due to a temporary failure of the server."})
        try:
            phones = json.loads(params["PhoneNumberJson"])
            signs = json.loads(params["SignNameJson"])
            tparams = json.loads(params.get("TemplateParamJson") or "[]")
        except (KeyError, json.JSONDecodeError):
            return self._send(400, {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"})
        if len(phones) > 100:
            return self._send(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "PhoneNumberJson最多100个号码"})
        if len(signs) != len(phones) or (tparams and len(tparams) != len(phones)):
            return self._send(200, {"Code": "isv.INVALID_PARAMETERS", "Message": "签名/模板参数个数与号码个数不一致"})
        bad = [p for p in phones if not (isinstance(p, str) and len(p) == 11 and p.isdigit() and p.startswith("1"))]
        if bad:
            return self._send(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"})
        biz_id = f"{int(time.time() * 1000)}^{uuid.uuid4().hex[:10]}"
        out_id = params.get("OutId", "")
        received = self._received_at()
        st.record_many([{"gateway": "aliyun", "out_id": out_id, "biz_id": biz_id, "to": phone,
                         "template": params.get("TemplateCode"), "sign_name": signs[i],
                         "params": tparams[i] if tparams else {}, "received_at": received}
                        for i, phone in enumerate(phones)])
        if fault and fault.kind == "accept_then_timeout":
            time.sleep(float(fault.params.get("delay", 3)))
        self._send(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": uuid.uuid4().hex})

    def _aliyun_query(self, params: dict[str, str]) -> None:
        phone, send_date = params.get("PhoneNumber"), params.get("SendDate", "")
        rows = [m for m in self.state.messages if m["gateway"] == "aliyun" and m["to"] == phone
                and m["received_at"][:10].replace("-", "") == send_date
                and (not params.get("BizId") or m["biz_id"] == params.get("BizId"))]
        details = [{"PhoneNum": m["to"], "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": m["template"],
                    "OutId": m["out_id"], "SendDate": m["received_at"], "Content": json.dumps(m["params"], ensure_ascii=False)}
                   for m in rows]
        self._send(200, {"Code": "OK", "Message": "OK", "TotalCount": len(details),
                         "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}, "RequestId": uuid.uuid4().hex})

    def _sendgrid(self, body: bytes) -> None:
        st = self.state
        key = st.secret(secret_env("sendgrid", "api_key"))
        if self.headers.get("Authorization") != f"Bearer {key}":
            return self._send(401, {"errors": [{"field": None, "message": "The provided authorization grant is invalid, expired, or revoked"}]})
        fault = self._gateway_fault("sendgrid")
        if fault and fault.kind == "throttle":
            return self._send(429, {"errors": [{"field": None, "message": "too many requests"}]},
                              {"Retry-After": str(fault.params.get("retry_after", "0.2")),
                               "X-RateLimit-Remaining": "0"})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 500)), {"errors": [{"message": "internal error"}]})
        try:
            mail = json.loads(body)
        except json.JSONDecodeError:
            return self._send(400, {"errors": [{"field": None, "message": "Bad Request: invalid JSON"}]})
        pers = mail.get("personalizations") or []
        if not pers:
            return self._send(400, {"errors": [{"field": "personalizations", "message": "The personalizations field is required."}]})
        recipients = [t["email"] for p in pers for t in p.get("to", [])]
        if len(recipients) > 1000 or len(pers) > 1000:
            return self._send(400, {"errors": [{"field": "personalizations", "message": "too many recipients (max 1000)"}]})
        if len(set(r.lower() for r in recipients)) != len(recipients):
            return self._send(400, {"errors": [{"field": "personalizations", "message": "Each email address in the personalization block should be unique"}]})
        message_id = uuid.uuid4().hex[:22]
        received = self._received_at()
        st.record_many([{"gateway": "sendgrid", "message_id": message_id, "to": t["email"],
                         "out_id": (p.get("custom_args") or {}).get("idempotency_key", ""),
                         "batch": (p.get("custom_args") or {}).get("batch", ""),
                         "subject": p.get("subject") or mail.get("subject"),
                         "params": p.get("dynamic_template_data") or p.get("substitutions") or {},
                         "received_at": received} for p in pers for t in p.get("to", [])])
        if fault and fault.kind == "accept_then_timeout":
            time.sleep(float(fault.params.get("delay", 3)))
        self._send(202, b"", {"X-Message-Id": message_id})

    def _sendgrid_activity(self) -> None:
        """Email Activity (GET /v3/messages?query=...&limit=...): the messages whose custom args
        match, as SendGrid's activity feed lists them. UNCONFIRMED: the query language and the
        response fields follow SendGrid's public docs for the (paid) Email Activity add-on; only
        `unique_args['name']="value"` conditions joined by AND are understood here."""
        key = self.state.secret(secret_env("sendgrid", "api_key"))
        if self.headers.get("Authorization") != f"Bearer {key}":
            return self._send(401, {"errors": [{"field": None, "message": "authorization required"}]})
        query = (parse_qs(urlsplit(self.path).query).get("query") or [""])[0]
        wanted = dict(re.findall(r"unique_args\['([^']+)'\]\s*=\s*\"([^\"]*)\"", query))
        found = [m for m in self.state.messages if m["gateway"] == "sendgrid"
                 and all((m.get("batch") if k == "batch" else m.get("out_id") if k == "idempotency_key" else None) == v
                         for k, v in wanted.items())]
        self._send(200, {"messages": [{"msg_id": m["message_id"], "to_email": m["to"], "subject": m.get("subject"),
                                       "status": "delivered", "last_event_time": m["received_at"],
                                       "unique_args": {"idempotency_key": m["out_id"], "batch": m.get("batch", "")}}
                                      for m in found]})

    def _webhook(self, name: str, body: bytes) -> None:
        st = self.state
        secret = st.secret(secret_env("webhook", "secret")) or ""
        ts = self.headers.get("X-CRM-Timestamp", "")
        sig = self.headers.get("X-CRM-Signature", "")
        if not ts or not constant_time_equal(webhook_sign(body, secret, ts), sig):
            return self._send(401, {"error": "bad signature"})
        fault = self._gateway_fault("webhook")
        if fault and fault.kind == "throttle":
            return self._send(429, {"error": "slow down"}, {"Retry-After": str(fault.params.get("retry_after", "0.2"))})
        if fault and fault.kind == "server_error":
            return self._send(int(fault.params.get("status", 502)), {"error": "upstream"})
        payload = json.loads(body)
        received = self._received_at()
        st.record_many([{"gateway": "webhook", "hook": name, "out_id": m.get("idempotency_key", ""),
                         "to": m.get("to"), "params": m.get("params", {}), "received_at": received}
                        for m in payload.get("messages", [])])
        if fault and fault.kind == "accept_then_timeout":
            time.sleep(float(fault.params.get("delay", 3)))
        self._send(200, {"accepted": len(payload.get("messages", []))})


class SandboxServer:
    """Runs the sandbox in a background thread (tests) or in the foreground (CLI)."""

    def __init__(self, port: int = 0, anchor: date | None = None, persons: int | None = None,
                 secrets: dict[str, str] | None = None, log_dir: Path | None = None, throttle: bool = True,
                 dirty: bool = True, host: str = "127.0.0.1"):
        from crm_pipeline.settings import get_settings

        settings = get_settings()
        env_secrets = load_env_file(settings.config_dir / "sandbox.env")
        env_secrets.update({k: v for k, v in os.environ.items() if k.startswith("CRM_SECRET_")})
        self.state = SandboxState(anchor or settings.sandbox_anchor, persons or settings.sandbox_persons,
                                  secrets if secrets is not None else env_secrets, log_dir, throttle, dirty)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.httpd.server_address[1]}"

    def start(self) -> SandboxServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="sandbox", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


