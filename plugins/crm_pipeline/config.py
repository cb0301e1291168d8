"""Shop configuration (``config/shops.yml``) and credential resolution.

Secrets never live in the file: a credential is a reference, either
``env:VARIABLE`` or ``airflow:CONN_ID.field`` (``login``, ``password``,
``host``, or ``extra.<key>`` of an Airflow connection).
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any

from crm_pipeline.extract.base import ConfigError, ShopConfig
from crm_pipeline.extract.freshness import POLICIES
from crm_pipeline.platforms import UnknownPlatformError, platform_spec
from crm_pipeline.settings import get_settings

_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def expand_vars(value: str) -> str:
    """``${NAME}`` / ``${NAME:-default}`` from the environment (settings defaults for CRM_* URLs)."""
    settings = get_settings()
    fallback = {"CRM_SANDBOX_URL": settings.sandbox_url}

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        return os.environ.get(name) or fallback.get(name) or (default or "")

    return _VAR_RE.sub(sub, value)


def resolve_credential(ref: str, platform: str, shop_id: str, name: str) -> str | None:
    """Resolve ``env:`` or ``airflow:`` references; None when not set."""
    if ref.startswith("env:"):
        return os.environ.get(ref[4:]) or None
    if ref.startswith("airflow:"):
        conn_id, _, field = ref[8:].partition(".")
        try:
            from airflow.sdk import BaseHook  # only inside Airflow
        except ImportError:  # pragma: no cover - airflow is installed in the venv
            return None
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:
            return None
        if field.startswith("extra."):
            return (conn.extra_dejson or {}).get(field[6:])
        return getattr(conn, field or "password", None)
    raise ConfigError(
        platform,
        shop_id,
        f"credential {name!r} must be a reference (env:VAR or airflow:CONN.field), not a literal value: "
        "secrets never go into shops.yml",
    )


# platforms whose shops sell to buyers for whom marketing needs an opt-in unless shops.yml says
# otherwise (Shopify and WooCommerce stores sell abroad: GDPR, CAN-SPAM/TCPA, CASL)
CONSENT_PLATFORMS = ("shopify", "woocommerce")


def load_shops(path: Path | None = None, resolve: bool = True) -> list[ShopConfig]:
    """Parse shops.yml; raises ConfigError naming the shop for any problem."""
    import yaml

    path = path or get_settings().shops_file
    if not path.exists():
        raise ConfigError("-", "-", f"shops file not found: {path} (set CRM_CONFIG_DIR or create config/shops.yml)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defaults: dict[str, Any] = data.get("defaults") or {}
    shops: list[ShopConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("shops") or [], start=1):
        shop_id = str(raw.get("shop_id") or "")
        platform = str(raw.get("platform") or "")
        if not shop_id:
            raise ConfigError(platform or "-", f"#{i}", f"{path}: shop entry {i} has no shop_id")
        if shop_id in seen:
            raise ConfigError(platform, shop_id, f"{path}: shop_id {shop_id!r} is defined twice")
        seen.add(shop_id)
        try:
            platform_spec(platform)
        except UnknownPlatformError as exc:
            raise ConfigError(platform or "-", shop_id, f"{path}: {exc}") from None
        creds: dict[str, str] = {}
        for name, ref in (raw.get("credentials") or {}).items():
            value = resolve_credential(str(ref), platform, shop_id, name) if resolve else None
            if value:
                creds[name] = value
        merged = {**defaults, **raw}
        start = merged.get("start_date") or date(2024, 1, 1)
        on_failure = merged.get("on_failure")
        if on_failure is not None and on_failure not in POLICIES:
            raise ConfigError(platform, shop_id, f"{path}: on_failure is {on_failure!r}; expected stop or continue")
        options = {**(defaults.get("options") or {}), **(raw.get("options") or {})}
        if options.get("before_start_date", "land") not in ("land", "quarantine"):
            raise ConfigError(platform, shop_id, f"{path}: options.before_start_date is "
                                                 f"{options['before_start_date']!r}; expected land or quarantine")
        country = str(raw.get("country") or defaults.get("country") or "").upper()
        consent = raw.get("marketing_consent") or {}
        required = consent.get("required", platform in CONSENT_PLATFORMS or country not in ("", "CN"))
        if not isinstance(required, bool):
            raise ConfigError(platform, shop_id, f"{path}: marketing_consent.required is {required!r}; "
                                                 "expected true or false")
        shops.append(
            ShopConfig(
                shop_id=shop_id,
                platform=platform,
                name=str(merged.get("name") or shop_id),
                timezone=str(merged.get("timezone") or get_settings().timezone),
                start_date=start if isinstance(start, date) else date.fromisoformat(str(start)),
                base_url=expand_vars(str(merged.get("base_url") or "")),
                credentials=creds,
                options=options,
                overlap_hours=float(merged.get("overlap_hours", 24)),
                on_failure=on_failure,
                country=country,
                consent_required=required,
            )
        )
    return shops


def get_shop(shop_id: str, path: Path | None = None) -> ShopConfig:
    for shop in load_shops(path):
        if shop.shop_id == shop_id:
            return shop
    known = ", ".join(s.shop_id for s in load_shops(path, resolve=False))
    raise ConfigError("-", shop_id, f"unknown shop {shop_id!r}; shops in config: {known}")


def load_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blanks skipped)."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def load_env_defaults(path: Path) -> list[str]:
    """Export KEY=VALUE lines from ``path`` for keys not already set (sandbox credentials)."""
    set_keys = []
    for key, value in load_env_file(path).items():
        if not os.environ.get(key):
            os.environ[key] = value
            set_keys.append(key)
    return set_keys
