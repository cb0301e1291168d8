"""GX Data Docs open offline: every CDN script and style GX's templates load is vendored."""

import importlib.util
import re
from pathlib import Path

from crm_pipeline.quality.data_docs import VENDORED, external_assets, localize, vendor_dir

ROOT = Path(__file__).resolve().parents[2]
# found without importing great_expectations (seconds of imports for a file path)
TEMPLATES = Path(importlib.util.find_spec("great_expectations").origin).parent / "render" / "view" / "templates"


def template_assets() -> set[str]:
    found = set()
    for template in TEMPLATES.glob("*.j2"):
        found |= set(external_assets(template.read_text(encoding="utf-8")))
    return {u for u in found if "{{" not in u}


def test_every_cdn_asset_in_gx_templates_is_vendored_or_dropped():
    assets = template_assets()
    assert len(assets) >= 10, "GX's templates were found and read"
    unknown = {u for u in assets if u.split("?")[0] not in VENDORED and "great-expectations-web-assets" not in u}
    assert not unknown, f"a GX upgrade loads new CDN assets; vendor them (quality/data_docs.py): {unknown}"
    for path in filter(None, VENDORED.values()):
        assert (vendor_dir(ROOT / "expectations") / path).is_file(), path


def test_published_pages_load_nothing_from_the_network(tmp_path):
    """A site shaped like GX's (pages at several depths), rewritten: every asset resolves to a local file."""
    head = "\n".join(f'<script src="{u}" integrity="sha384-x" crossorigin="anonymous"></script>'
                     if not u.endswith(".css") else f'<link rel="stylesheet" href="{u}"/>' for u in VENDORED)
    page = (f"<html><head>{head}</head><body><img src=\"https://great-expectations-web-assets.s3.us-east-2"
            ".amazonaws.com/logo-long.png?d=1&dataContextId=abc\"><a href=\"https://greatexpectations.io\">GX</a>"
            "</body></html>")
    site = tmp_path / "gx"
    for rel in ("index.html", "expectations/suite.html", "validations/a/b/c/run.html"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(page, encoding="utf-8")
    (site / "static" / "images").mkdir(parents=True)
    (site / "static" / "images" / "logo-long.png").write_bytes(b"png")  # GX copies its static images
    assert localize(site, vendor_dir(ROOT / "expectations")) == []
    for html_file in site.rglob("*.html"):
        html = html_file.read_text(encoding="utf-8")
        assert external_assets(html) == [], html_file
        assert "integrity=" not in html and "vega" not in html and "dataContextId" not in html
        assert 'href="https://greatexpectations.io"' in html  # links to follow stay
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            if not ref.startswith("http"):
                assert (html_file.parent / ref).resolve().is_file(), (html_file, ref)
    # a second pass (the next night) changes nothing
    before = (site / "index.html").read_text(encoding="utf-8")
    localize(site, vendor_dir(ROOT / "expectations"))
    assert (site / "index.html").read_text(encoding="utf-8") == before
