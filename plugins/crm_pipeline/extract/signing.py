"""Request signing for the platforms and gateways (each scheme is described where it is implemented).

Pure functions, checked against the published vectors in tests/unit/test_signing.py.
The sandbox verifies with the same functions, so the vectors are what keeps
both sides honest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote


def top_sign(params: dict[str, object], secret: str, method: str = "md5", body: str = "") -> str:
    """Taobao TOP signature (also JD JOS with method="md5").

    Sort the non-empty params (except ``sign``) by key, concatenate
    ``k1v1k2v2...`` (+ body), then MD5(secret + s + secret), HMAC-MD5 or
    HMAC-SHA256 keyed with the secret; upper-case hex.
    """
    items = sorted((k, str(v)) for k, v in params.items() if k != "sign" and k and v not in (None, ""))
    text = "".join(k + v for k, v in items) + (body or "")
    data = text.encode("utf-8")
    key = secret.encode("utf-8")
    if method == "md5":
        digest = hashlib.md5(key + data + key).hexdigest()
    elif method == "hmac":
        digest = hmac.new(key, data, hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown TOP sign_method {method!r} (md5, hmac, hmac-sha256)")
    return digest.upper()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud RPC signing wants it (space -> %20, * -> %2A, ~ kept)."""
    return quote(str(value), safe="-_.~")


def aliyun_rpc_sign(params: dict[str, str], secret: str, http_method: str = "POST") -> str:
    """Alibaba Cloud RPC signature V1 (HMAC-SHA1), e.g. dysmsapi SendBatchSms."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    string_to_sign = f"{http_method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def webhook_sign(body: bytes, secret: str, timestamp: str) -> str:
    """Generic webhook: hex HMAC-SHA256 over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
