"""Youzan (有赞云), the order system behind most WeChat shops (reference §5, R1).

* Token: ``POST <root>/auth/token`` with ``authorize_type=silent``, the app's
  ``client_id`` / ``client_secret`` and the shop's ``grant_id`` (its kdt_id). A
  token lives about 7 days; a call answered with a token error (gateway
  ``err_code`` 4201-4203) gets a fresh token and is retried.
* Orders: ``POST <root>/api/youzan.trades.sold.get/4.0.0?access_token=...`` with a
  JSON body. Nightly windows query ``start_update``/``end_update`` (sorted by
  update time); backfill queries ``start_created``/``end_created``. Paging is
  ``page_no``/``page_size``; ``total_results`` counts the window, so a window
  that changed while it was read is read again (extract/run.py, D5).
* Every answer is an envelope ``{"success", "code", "message", "data"}``; gateway
  errors come as ``{"gw_err_resp": {"err_code", "err_msg"}}`` with HTTP 200.
* PII (receiver phone, name and address, buyer phone and nickname) arrives
  encrypted, ``$<base64>$1$``, with a key per shop. With ``decrypt_pii`` the
  connector asks ``youzan.cloud.secret.decrypt.batch`` (one call per page) and
  attaches the plain values as enrichment; without it the customer is known by
  ``yz_open_id`` only and cannot be messaged.

UNCONFIRMED in the reference, named here so each is corrected in one place: the
version ``4.0.0`` (clients also use 4.0.4), the ``total_results`` field, the page
size limit (100), the longest window (31 days assumed), the throttling code, the
token error codes and the decrypt call's body and answer (``sources`` in; ``data``
a map from ciphertext to plain text, or a list in the same order).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from crm_pipeline.extract.base import Connector, Retryable, Window

CN = ZoneInfo("Asia/Shanghai")
ORDERS_API = ("youzan.trades.sold.get", "4.0.0")
DECRYPT_API = ("youzan.cloud.secret.decrypt.batch", "1.0.0")
PAGE_SIZE = 100
DECRYPT_BATCH = 10_000  # sources per decrypt call
TOKEN_ERRORS = frozenset({4201, 4202, 4203})  # token invalid / expired / unknown: fetch a new one and retry
THROTTLE_ERRORS = frozenset({20001})  # "调用频率超限" (UNCONFIRMED)
# encrypted fields: where they sit in full_order_info, and their name in the enrichment
ENCRYPTED = (
    ("address_info", "receiver_tel", "receiver", "mobile"),
    ("address_info", "receiver_name", "receiver", "name"),
    ("address_info", "delivery_address", "receiver", "address_detail"),
    ("buyer_info", "buyer_phone", "buyer", "phone"),
    ("buyer_info", "fans_nickname", "buyer", "nickname"),
)
_JSON = {"Content-Type": "application/json"}


def yz_time(dt: datetime) -> str:
    return dt.astimezone(CN).strftime("%Y-%m-%d %H:%M:%S")


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and len(value) > 4 and value.startswith("$") and value.endswith("$1$")


class YouzanConnector(Connector):
    platform = "youzan"
    max_window = timedelta(days=31)
    max_backfill_window = timedelta(days=31)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._token_lock = threading.Lock()
        self._access_token: str | None = None
        self._had_token = False
        self.tokens_fetched = 0

    @property
    def page_size(self) -> int:
        return int(self.shop.options.get("page_size", PAGE_SIZE))

    @property
    def root(self) -> str:
        return self.shop.base_url.rstrip("/")

    # -- token ------------------------------------------------------------------------
    def _token(self) -> str:
        with self._token_lock:
            if self._access_token:
                return self._access_token
            body = {
                "authorize_type": "silent",
                "client_id": self.shop.credential("client_id"),
                "client_secret": self.shop.credential("client_secret"),
                "grant_id": str(self.shop.options.get("kdt_id") or self.shop.credential("grant_id")),
                "refresh": self._had_token,  # a token the platform rejected: ask for a new one
            }

            def send():
                import orjson

                return self.session.post(self.root + "/auth/token", data=orjson.dumps(body), headers=_JSON,
                                         timeout=self.retry.timeout)

            def check(response):
                answer = self.parse_json(response, "access token")
                data = answer.get("data") if isinstance(answer, dict) else None
                if isinstance(data, dict) and data.get("access_token"):
                    return str(data["access_token"])
                if isinstance(answer, dict) and _int(answer.get("code")) in THROTTLE_ERRORS:
                    raise Retryable("token endpoint throttled")
                message = answer.get("message") if isinstance(answer, dict) else str(answer)[:200]
                raise self.fail(f"access token refused: {message}; check client_id/client_secret and kdt_id "
                                "for this shop")

            self._access_token = self.request("access token", send, check)
            self._had_token = True
            self.tokens_fetched += 1
            return self._access_token

    def _drop_token(self, token: str) -> None:
        with self._token_lock:
            if self._access_token == token:
                self._access_token = None

    # -- calls --------------------------------------------------------------------------
    def call(self, api: tuple[str, str], body: dict, what: str, read=None):
        """One API call with retries; returns the envelope's ``data`` (through ``read``,
        which may raise ``Retryable`` for an answer of the wrong shape)."""
        import orjson

        url = f"{self.root}/api/{api[0]}/{api[1]}"
        payload = orjson.dumps(body)
        used: list[str] = []

        def send():
            token = self._token()
            used.append(token)
            return self.session.post(url, params={"access_token": token}, data=payload, headers=_JSON,
                                     timeout=self.retry.timeout)

        def check(response):
            answer = self.parse_json(response, what)
            if not isinstance(answer, dict):
                raise Retryable("answer is not a JSON object")
            gateway = answer.get("gw_err_resp")
            if isinstance(gateway, dict):
                code = _int(gateway.get("err_code"))
                if code in TOKEN_ERRORS:
                    self._drop_token(used[-1])
                    raise Retryable(f"access token rejected ({code} {gateway.get('err_msg')}); fetching a new one", 0.0)
                if code in THROTTLE_ERRORS:
                    raise Retryable(f"throttled ({code} {gateway.get('err_msg')})")
                raise self.fail(f"{what}: gateway error {code} {gateway.get('err_msg')}")
            if answer.get("success") is not True or _int(answer.get("code")) != 200:
                code = _int(answer.get("code"))
                if code in THROTTLE_ERRORS:
                    raise Retryable(f"throttled ({code} {answer.get('message')})")
                raise self.fail(f"{what}: error {answer.get('code')} {answer.get('message')}")
            if "data" not in answer:
                raise Retryable("answer without data")
            return read(answer["data"]) if read else answer["data"]

        return self.request(what, send, check)

    # -- orders -------------------------------------------------------------------------
    def _query(self, window: Window, mode: str) -> dict:
        if mode == "backfill":
            return {"start_created": yz_time(window.start), "end_created": yz_time(window.end)}
        return {"start_update": yz_time(window.start), "end_update": yz_time(window.end)}

    def _page(self, window: Window, mode: str, page_no: int, page_size: int) -> tuple[list, int]:
        what = f"{ORDERS_API[0]} page {page_no} of window {window}"

        def read(data) -> tuple[list, int]:
            if not isinstance(data, dict) or not isinstance(data.get("full_order_info_list", []), list):
                raise self.fail(f"{what}: 'data.full_order_info_list' is not a list")
            total = _int(data.get("total_results"))
            if total is None:
                raise Retryable("answer without total_results")
            # each entry is {"full_order_info": {...}}: the order itself lands; anything
            # else lands as it came and the validator quarantines it
            orders = [e["full_order_info"] if isinstance(e, dict) and isinstance(e.get("full_order_info"), dict)
                      else e for e in data.get("full_order_info_list") or []]
            return orders, total

        return self.call(ORDERS_API, {**self._query(window, mode), "page_no": page_no, "page_size": page_size},
                         what, read)

    def fetch(self, window: Window, mode: str = "nightly") -> Iterator[list[dict]]:
        page_no = 1
        while True:
            orders, total = self._page(window, mode, page_no, self.page_size)
            yield self.enrich(orders)
            if not orders or page_no * self.page_size >= total:
                return
            page_no += 1

    def count(self, window: Window, mode: str = "nightly") -> int | None:
        return self._page(window, mode, 1, 1)[1]

    # -- PII ------------------------------------------------------------------------------
    def enrich(self, records: list[dict]) -> list[dict]:
        """Attach the decrypted receiver and buyer fields under ``__enrichment__``."""
        if not self.shop.options.get("decrypt_pii"):
            return records
        sources = sorted({value for r in records if isinstance(r, dict) for value in _ciphertexts(r)})
        plain: dict[str, str] = {}
        for i in range(0, len(sources), DECRYPT_BATCH):
            chunk = sources[i: i + DECRYPT_BATCH]
            plain.update(self.call(DECRYPT_API, {"sources": chunk}, "decrypt", lambda data, c=chunk: _plaintexts(data, c)))
        for r in records:
            if not isinstance(r, dict):
                continue
            enrichment: dict[str, dict] = {}
            for section, field, group, name in ENCRYPTED:
                value = (r.get(section) or {}).get(field) if isinstance(r.get(section), dict) else None
                if is_ciphertext(value) and plain.get(value) is not None:
                    enrichment.setdefault(group, {})[name] = plain[value]
            if enrichment:
                r["__enrichment__"] = enrichment
        return records


def _ciphertexts(record: dict) -> Iterator[str]:
    for section, field, _group, _name in ENCRYPTED:
        part = record.get(section)
        value = part.get(field) if isinstance(part, dict) else None
        if is_ciphertext(value):
            yield value


def _plaintexts(data, sources: list[str]) -> dict[str, str]:
    """The decrypt answer as {ciphertext: plain}. Its shape is UNCONFIRMED: a map from
    ciphertext to plain text, or a list of plain texts in the order asked."""
    if isinstance(data, dict):
        return {k: str(v) for k, v in data.items() if k in sources and v is not None}
    if isinstance(data, list) and len(data) == len(sources):
        return {c: str(v) for c, v in zip(sources, data, strict=True) if v is not None}
    raise Retryable("decrypt answer is neither a map nor a list of the sources' length")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
