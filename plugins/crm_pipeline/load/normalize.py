"""Identifier normalization that SQL cannot do: phones to E.164 with ``phonenumbers``.

Run at landing time; results go into each raw row's ``derived`` column, where
dbt reads them (R3). A fast path handles mainland mobiles (most rows) without
calling the library; tests check it agrees with ``phonenumbers``.
"""

from __future__ import annotations

import re
from functools import lru_cache

_STRIP = re.compile(r"[\s\-().\u3000]")
_CN_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
_MASKED = re.compile(r"^\+?\d{0,4}1\d{2}\*{3,}\d{2,4}$|^\d{0,6}\*{3,}\d{0,4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
EMPTY_TOKENS = {"", "null", "none", "nan", "n/a", "na", "-", "--", "0", "无", "空"}


class PhoneResult(tuple):
    """(e164 | None, status) with status in ok | masked | empty | invalid."""

    __slots__ = ()

    def __new__(cls, e164: str | None, status: str):
        return super().__new__(cls, (e164, status))

    @property
    def e164(self) -> str | None:
        return self[0]

    @property
    def status(self) -> str:
        return self[1]


@lru_cache(maxsize=65536)
def normalize_phone(raw: object, region: str = "CN") -> PhoneResult:
    if raw is None:
        return PhoneResult(None, "empty")
    text = _STRIP.sub("", str(raw)).strip()
    if text.lower() in EMPTY_TOKENS:
        return PhoneResult(None, "empty")
    if "*" in text:
        return PhoneResult(None, "masked" if _MASKED.match(text) else "invalid")
    match = _CN_MOBILE.match(text)
    if match:
        return PhoneResult("+86" + match.group(1), "ok")
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return PhoneResult(None, "invalid")
    if not phonenumbers.is_valid_number(number):
        return PhoneResult(None, "invalid")
    return PhoneResult(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), "ok")


def normalize_email(raw: object) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text in EMPTY_TOKENS or not _EMAIL.match(text):
        return None
    return text


def masked_key(raw: object) -> str | None:
    """A masked phone as sent (``138****1234``), kept as a non-merging attribute."""
    if raw is None:
        return None
    text = _STRIP.sub("", str(raw))
    return text if "*" in text else None


_CN_MOBILE_E164 = re.compile(r"^\+861[3-9]\d{9}$")


@lru_cache(maxsize=65536)
def can_receive_sms(e164: str) -> bool:
    """Whether a number in E.164 can take an SMS: a mainland number only if it is a mobile
    (a landline such as +862038886666 cannot); elsewhere what ``phonenumbers`` says, and
    yes where it cannot tell."""
    if e164.startswith("+86"):
        return _CN_MOBILE_E164.match(e164) is not None
    import phonenumbers

    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return True
    return kind not in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
                        phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST)
