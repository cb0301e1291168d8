"""Masking of personal data (phones, e-mails) before anything reaches a log.

The rule is "never leak PII into logs": every logger of this package goes
through :class:`PiiFilter`, and error messages built from records use
:func:`redact` on the values they quote.
"""

from __future__ import annotations

import logging
import re

# Mainland mobiles (with or without +86 / 86 prefix), E.164 numbers in general,
# and masked-but-still-partial forms are all treated as phones. A number's edges are
# ASCII letters and digits only: Chinese text runs straight into numbers
# ("手机13812345678", "13812345678元"), and \w would count 手 or 元 as part of a word.
_EDGE = "A-Za-z0-9_*"
_PHONE_RE = re.compile(
    rf"(?<![{_EDGE}])(?:\+?\d{{1,3}}[\s-]?)?(?:1[3-9]\d[\s-]?\d{{4}}[\s-]?\d{{4}}|\(?\d{{3}}\)?[\s-]?\d{{3}}[\s-]?\d{{4}})"
    rf"(?![{_EDGE}])"
)
_PLUS_E164_RE = re.compile(r"\+\d{8,15}(?![0-9])")
# A mainland mobile glued to letters on its left is still a phone: WeChat ids are
# often "wx" or a name followed by the number ("wx13812345678", "amy_13812345678").
# The right edge stays strict, so a digit run inside an id or a hash is left alone.
_GLUED_MOBILE_RE = re.compile(rf"(?<=[A-Za-z_])1[3-9]\d{{9}}(?![{_EDGE}])")
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_phone(phone: str | None) -> str:
    """Keep the first three and last two digits: ``13812345678`` -> ``138******78``."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def mask_email(email: str | None) -> str:
    """``alice@example.com`` -> ``a***@example.com``."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return (local[:1] or "*") + "***@" + domain


def redact(text: str) -> str:
    """Replace every phone- or e-mail-looking token in free text."""
    if not text:
        return text
    text = _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _PLUS_E164_RE.sub(lambda m: mask_phone(m.group(0)), text)
    text = _GLUED_MOBILE_RE.sub(lambda m: mask_phone(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


class PiiFilter(logging.Filter):
    """Rewrites a record's message (after %-formatting) with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # malformed format args: let logging report it
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


_installed = False


def install_log_masking() -> None:
    """Attach the filter to the root logger and to every existing handler.

    Handler-level filters see records from every logger (including libraries
    and Airflow's task logger), logger-level ones only their own.
    """
    global _installed
    pii_filter = PiiFilter()
    root = logging.getLogger()
    if not any(isinstance(f, PiiFilter) for f in root.filters):
        root.addFilter(pii_filter)
    for handler in root.handlers:
        if not any(isinstance(f, PiiFilter) for f in handler.filters):
            handler.addFilter(pii_filter)
    logging.getLogger("crm_pipeline").addFilter(pii_filter)
    _installed = True


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not any(isinstance(f, PiiFilter) for f in logger.filters):
        logger.addFilter(PiiFilter())
    return logger
