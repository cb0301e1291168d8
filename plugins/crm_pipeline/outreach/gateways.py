"""Messaging gateways (reference §6): Alibaba Cloud SMS SendBatchSms, SendGrid v3
mail send, and a generic signed webhook.

Each gateway sends one batch and classifies what happened:

* returns normally        -> accepted (gateway reference returned)
* :class:`Retryable`      -> certainly not processed (429, throttling, 502/503):
                             safe to retry after the wait
* :class:`Rejected`       -> a definite refusal (bad number, auth): failed
* :class:`Ambiguous`      -> the gateway may have accepted it (timeout after
                             sending, 500, reset): never blindly re-sent; the
                             row is marked ``unknown`` and :meth:`reconcile`d.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm_pipeline.extract.signing import aliyun_rpc_sign, webhook_sign


class GatewayError(RuntimeError):
    pass


class Retryable(GatewayError):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


class Rejected(GatewayError):
    pass


class Ambiguous(GatewayError):
    pass


@dataclass(frozen=True)
class OutMessage:
    key: str
    customer_id: str
    recipient: str
    template: str  # message template name
    params: dict
    subject: str | None
    body: str


@dataclass
class BatchOutcome:
    reference: str


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


class Gateway:
    channel = ""
    name = ""
    batch_size = 100

    def __init__(self, config: dict, session=None, timeout: float = 10.0):
        import requests

        self.config = config
        self.session = session or requests.Session()
        self.timeout = float(config.get("timeout", timeout))
        self.batch_size = int(config.get("batch_size", self.batch_size))

    def send(self, batch_id: str, messages: list[OutMessage]) -> BatchOutcome:
        raise NotImplementedError

    def reconcile(self, batch_id: str, messages: list[OutMessage], sent_day: datetime) -> dict[str, bool | None]:
        """key -> True (gateway has it), False (it does not: safe to send), None (cannot tell)."""
        return {m.key: None for m in messages}

    def _post(self, *args, **kwargs):
        import requests

        try:
            return self.session.post(*args, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise Retryable(f"{self.name}: connect timeout") from exc
        except requests.ConnectionError as exc:
            # refused before anything was sent is retryable; a reset mid-request is not
            if "refused" in str(exc).lower():
                raise Retryable(f"{self.name}: connection refused") from exc
            raise Ambiguous(f"{self.name}: connection broken during the request") from exc
        except requests.Timeout as exc:
            raise Ambiguous(f"{self.name}: no answer within {self.timeout:g}s (may have been accepted)") from exc


class AliyunSms(Gateway):
    """dysmsapi 2017-05-25 SendBatchSms: at most 100 numbers, one template per call."""

    channel = "sms"
    name = "aliyun"
    batch_size = 100

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        creds = self.config["credentials"]
        full = {
            "AccessKeyId": creds["access_key_id"],
            "Format": "JSON",
            "RegionId": str(self.config.get("region", "cn-hangzhou")),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            **params,
        }
        full["Signature"] = aliyun_rpc_sign(full, creds["access_key_secret"], "POST")
        return full

    @staticmethod
    def domestic(phone: str) -> str:
        return phone[3:] if phone.startswith("+86") else phone.lstrip("+")

    def template_code(self, template: str) -> str:
        codes = self.config.get("template_codes") or {}
        if template not in codes:
            raise Rejected(f"aliyun: no TemplateCode configured for template {template!r} (config/gateways.yml)")
        return codes[template]

    def send(self, batch_id: str, messages: list[OutMessage]) -> BatchOutcome:
        if len(messages) > 100:
            raise Rejected("aliyun: SendBatchSms takes at most 100 numbers")
        templates = {m.template for m in messages}
        if len(templates) != 1:
            raise Rejected("aliyun: one TemplateCode per SendBatchSms call")
        sign = str(self.config.get("sign_name", ""))
        params = self._signed({
            "Action": "SendBatchSms",
            "PhoneNumberJson": json.dumps([self.domestic(m.recipient) for m in messages]),
            "SignNameJson": json.dumps([sign] * len(messages), ensure_ascii=False),
            "TemplateCode": self.template_code(templates.pop()),
            "TemplateParamJson": json.dumps([m.params for m in messages], ensure_ascii=False),
            "OutId": batch_id,
        })
        response = self._post(self.config["endpoint"], data=params)
        if response.status_code in (429, 502, 503, 504):
            raise Retryable(f"aliyun: HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 500:
            raise Ambiguous(f"aliyun: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise Ambiguous(f"aliyun: unreadable reply (HTTP {response.status_code})") from None
        code = body.get("Code")
        if code == "OK":
            return BatchOutcome(str(body.get("BizId") or body.get("RequestId") or ""))
        if code in ("Throttling.User", "Throttling", "ServiceUnavailable"):
            raise Retryable(f"aliyun: {code}", _retry_after(response))
        raise Rejected(f"aliyun: {code}: {body.get('Message')}")

    def reconcile(self, batch_id: str, messages: list[OutMessage], sent_day: datetime) -> dict[str, bool | None]:
        """QuerySendDetails per number for the send day; an OutId match means accepted."""
        result: dict[str, bool | None] = {}
        for m in messages:
            found: bool | None = False
            for day in aliyun_send_dates(sent_day):
                params = self._signed({
                    "Action": "QuerySendDetails",
                    "PhoneNumber": self.domestic(m.recipient),
                    "SendDate": day,
                    "PageSize": "50",
                    "CurrentPage": "1",
                })
                try:
                    response = self._post(self.config["endpoint"], data=params)
                    body = response.json()
                except (GatewayError, ValueError):
                    found = None
                    break
                if body.get("Code") != "OK":
                    found = None
                    break
                details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                if any(d.get("OutId") == batch_id for d in details):
                    found = True
                    break
            result[m.key] = found
        return result


def aliyun_send_dates(claimed_at: datetime) -> list[str]:
    """SendDate values (yyyyMMdd, Beijing time as the SMS platform counts days) that can
    hold a batch claimed at ``claimed_at``: its day, and the next one when the claim was
    close enough to midnight for the gateway to have stamped the next day."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    cn = ZoneInfo("Asia/Shanghai")
    days = [claimed_at.astimezone(cn), (claimed_at + timedelta(minutes=30)).astimezone(cn)]
    return list(dict.fromkeys(d.strftime("%Y%m%d") for d in days))


class SendGridMail(Gateway):
    """SendGrid v3 /mail/send: up to 1000 personalizations; 202 = accepted."""

    channel = "email"
    name = "sendgrid"
    batch_size = 1000

    def send(self, batch_id: str, messages: list[OutMessage]) -> BatchOutcome:
        if len(messages) > 1000:
            raise Rejected("sendgrid: at most 1000 personalizations per request")
        sender = self.config.get("from") or {}
        body = {
            "from": {"email": sender.get("email", "crm@example.com"), "name": sender.get("name", "")},
            "personalizations": [
                {"to": [{"email": m.recipient}], "subject": m.subject or "",
                 "custom_args": {"idempotency_key": m.key, "batch": batch_id},
                 "substitutions": {"-body-": m.body}}
                for m in messages
            ],
            "subject": messages[0].subject or "",
            "content": [{"type": "text/plain", "value": "-body-"}],
            "categories": ["crm"],
        }
        response = self._post(self.config["endpoint"], json=body,
                              headers={"Authorization": f"Bearer {self.config['credentials']['api_key']}"})
        if response.status_code == 202:
            return BatchOutcome(response.headers.get("X-Message-Id", ""))
        if response.status_code in (429, 502, 503, 504):
            raise Retryable(f"sendgrid: HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 500:
            raise Ambiguous(f"sendgrid: HTTP {response.status_code}")
        raise Rejected(f"sendgrid: HTTP {response.status_code}: {response.text[:200]}")


    def reconcile(self, batch_id: str, messages: list[OutMessage], sent_day: datetime) -> dict[str, bool | None]:
        """With ``activity_endpoint`` configured (SendGrid's Email Activity API, a paid add-on):
        ask for the batch's messages by their custom args; a key found was accepted, a key not
        found in an answer that lists the batch was not. Without it SendGrid cannot be asked:
        the rows stay ``unknown`` (never re-sent blindly) for someone to look up. UNCONFIRMED:
        the query syntax (``unique_args['batch']="..."``) and the response's ``messages`` list."""
        endpoint = self.config.get("activity_endpoint")
        if not endpoint:
            return {m.key: None for m in messages}
        import requests

        try:
            response = self.session.get(
                endpoint, params={"query": f'unique_args[\'batch\']="{batch_id}"', "limit": 1000},
                headers={"Authorization": f"Bearer {self.config['credentials']['api_key']}"}, timeout=self.timeout)
            found = {(m.get("unique_args") or {}).get("idempotency_key") for m in response.json()["messages"]} \
                if response.status_code == 200 else None
        except (requests.RequestException, ValueError, KeyError, TypeError):
            found = None
        if found is None:
            return {m.key: None for m in messages}
        return {m.key: m.key in found for m in messages}


class SignedWebhook(Gateway):
    """POST JSON ``{"messages": [...]}`` signed with HMAC-SHA256 (X-CRM-Signature).

    The receiver contract: it de-duplicates on ``idempotency_key``, so a batch
    whose outcome is unknown may be re-sent safely (reconcile says False).
    """

    channel = "webhook"
    name = "webhook"
    batch_size = 500

    def send(self, batch_id: str, messages: list[OutMessage]) -> BatchOutcome:
        payload = json.dumps({"batch": batch_id, "messages": [
            {"idempotency_key": m.key, "customer_id": m.customer_id, "to": m.recipient, "template": m.template,
             "params": m.params, "body": m.body} for m in messages]}, ensure_ascii=False).encode("utf-8")
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-CRM-Timestamp": ts,
                   "X-CRM-Signature": webhook_sign(payload, self.config["credentials"]["secret"], ts)}
        response = self._post(self.config["endpoint"], data=payload, headers=headers)
        if 200 <= response.status_code < 300:
            return BatchOutcome(batch_id)
        if response.status_code in (429, 502, 503, 504):
            raise Retryable(f"webhook: HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 500:
            raise Ambiguous(f"webhook: HTTP {response.status_code}")
        raise Rejected(f"webhook: HTTP {response.status_code}: {response.text[:200]}")

    def reconcile(self, batch_id: str, messages: list[OutMessage], sent_day: datetime) -> dict[str, bool | None]:
        return {m.key: False for m in messages}  # receiver de-duplicates by key


PROVIDERS = {"aliyun": AliyunSms, "sendgrid": SendGridMail, "webhook": SignedWebhook}


def load_gateway_config(path: Path) -> dict[str, Any]:
    """config/gateways.yml with ${VAR} expanded and env: credentials resolved."""
    import yaml

    from crm_pipeline.config import expand_vars, resolve_credential

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for channel, cfg in (data.get("channels") or {}).items():
        cfg["endpoint"] = expand_vars(str(cfg.get("endpoint", "")))
        if cfg.get("activity_endpoint"):
            cfg["activity_endpoint"] = expand_vars(str(cfg["activity_endpoint"]))
        creds = {}
        for name, ref in (cfg.get("credentials") or {}).items():
            value = resolve_credential(str(ref), cfg.get("provider", channel), channel, name)
            if not value:
                raise GatewayError(f"gateway {channel}: credential {name!r} ({ref}) is not set")
            creds[name] = value
        cfg["credentials"] = creds
    return data


def build_gateways(config: dict[str, Any], session=None) -> dict[str, Gateway]:
    gateways = {}
    for channel, cfg in (config.get("channels") or {}).items():
        provider = cfg.get("provider")
        if provider not in PROVIDERS:
            raise GatewayError(f"gateway {channel}: unknown provider {provider!r} ({', '.join(PROVIDERS)})")
        gateways[channel] = PROVIDERS[provider](cfg, session=session)
    return gateways
