"""GX Data Docs that open offline: the CDN scripts and styles GX's pages load, served from beside them.

GX 1.x writes pages that load Bootstrap, jQuery, bootstrap-table, a date picker and Font
Awesome from public CDNs (blocked or slow in mainland China, absent on a plane): offline
the index is blank. Its templates cannot be overridden (GX's own template loader comes
first), so the published copy is rewritten: each known CDN URL points at the same file,
vendored in ``expectations/gx/plugins/custom_data_docs/vendor/`` (its README says from
which npm package and version; the SRI hashes in GX's templates match them) and copied
to ``static/vendor/``. Scripts no page of ours calls (Vega, for profiling charts) and the
optional dark theme are dropped, the tracking logo points at GX's local copy.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from crm_pipeline.pii import get_logger

log = get_logger(__name__)

# CDN URL -> file under vendor/ (None: the tag is dropped: nothing on our pages uses it)
VENDORED: dict[str, str | None] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/js/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": None,
}
LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
_TAG = re.compile(r"<(script|link|img)\b[^>]*?\b(src|href)=\"(https?://[^\"]+)\"[^>]*>(\s*</script>)?", re.S)
_SRI = re.compile(r"\s+(integrity|crossorigin)=\"[^\"]*\"")


def vendor_dir(expectations_dir: Path) -> Path:
    return expectations_dir / "gx" / "plugins" / "custom_data_docs" / "vendor"


def external_assets(html: str) -> list[str]:
    """URLs of scripts, styles and images a page loads from the network (links to follow are not counted)."""
    return [m.group(3) for m in _TAG.finditer(html)
            if m.group(1) != "link" or "stylesheet" in m.group(0) or m.group(3).endswith(".css")]


def _swap(m: re.Match, base: str, left: set[str]) -> str:
    tag, attr, url = m.group(1), m.group(2), m.group(3)
    if tag == "link" and not ("stylesheet" in m.group(0) or url.endswith(".css")):
        return m.group(0)  # a link to follow, not a style
    if tag == "img":
        return m.group(0).replace(url, f"{base}/images/logo-long.png") if url.startswith(LOGO) else m.group(0)
    key = url.split("?")[0]
    if key not in VENDORED:
        left.add(url)
        return m.group(0)
    if VENDORED[key] is None:
        return ""
    return _SRI.sub("", m.group(0)).replace(f'{attr}="{url}"', f'{attr}="{base}/vendor/{VENDORED[key]}"')


def localize(site: Path, vendor: Path) -> list[str]:
    """Copy the vendored files into ``site/static/vendor`` and point every page at them.

    Returns the external asset URLs still left (unknown to VENDORED: a GX upgrade)."""
    shutil.copytree(vendor, site / "static" / "vendor", dirs_exist_ok=True)
    left: set[str] = set()
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        base = os.path.relpath(site / "static", page.parent)
        new = _TAG.sub(lambda m, base=base: _swap(m, base, left), html)
        if new != html:
            page.write_text(new, encoding="utf-8")
    for url in sorted(left):
        log.warning("GX Data Docs load %s from the network: vendor it (quality/data_docs.py)", url)
    return sorted(left)
