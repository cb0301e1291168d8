"""The platforms orders come from, and the raw table each one lands in.

Adding a platform means: an extractor module in ``extract/``, a validator in
``load/validate.py``, an entry here, and a staging folder in dbt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformSpec:
    name: str
    raw_table: str
    label: str
    kind: str  # "api" or "file"


PLATFORMS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        PlatformSpec("taobao", "taobao_trades", "Taobao/Tmall (TOP)", "api"),
        PlatformSpec("jd", "jd_orders", "JD (JOS)", "api"),
        PlatformSpec("shopify", "shopify_orders", "Shopify Admin REST", "api"),
        PlatformSpec("woocommerce", "woocommerce_orders", "WooCommerce REST v3", "api"),
        PlatformSpec("youzan", "youzan_orders", "Youzan (WeChat shops)", "api"),
        PlatformSpec("intake", "intake_orders", "Spreadsheet intake (social selling, offline)", "file"),
    )
}


class UnknownPlatformError(ValueError):
    pass


def platform_spec(name: str) -> PlatformSpec:
    try:
        return PLATFORMS[name]
    except KeyError:
        raise UnknownPlatformError(
            f"unknown platform {name!r}; known platforms: {', '.join(sorted(PLATFORMS))}"
        ) from None
