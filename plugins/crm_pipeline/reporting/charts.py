"""Tiny dependency-free SVG charts for a self-contained HTML report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ["#2f6fed", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#4e79a7"]


def _fmt(v: float) -> str:
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:.1f}M"
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


@dataclass(frozen=True)
class Term:
    """A word shown to people (Chinese) with the key the tables use (English) in its tooltip."""

    text: str
    key: str = ""

    def __str__(self) -> str:
        return self.text


def _label(value) -> str:
    """Escaped text of a label; a Term carries its key as an SVG/HTML title (the tooltip)."""
    if isinstance(value, Term) and value.key:
        return f"<title>{escape(value.key)}</title>{escape(value.text)}"
    return escape(str(value))


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round axis ticks covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    span = (high - low) or abs(high) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high - 1e-9:
        ticks.append(ticks[-1] + step)
    return [round(t, 10) for t in ticks]


def tick_fmt(v: float) -> str:
    """A tick label: whole numbers without decimals, thousands as k / millions as M."""
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if abs(v) >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def hbar(items: list[tuple[str, float]], width: int = 520, bar_h: int = 22, color: str = PALETTE[0],
         value_fmt=_fmt) -> str:
    """Horizontal bars: one per (label, value)."""
    if not items:
        return "<p class='muted'>no data</p>"
    label_w = 150
    top = max(v for _, v in items) or 1
    h = bar_h * len(items) + 10
    parts = [f"<svg viewBox='0 0 {width} {h}' style='width:100%;max-width:{width}px;height:auto' role='img'>"]
    for i, (label, value) in enumerate(items):
        y = 5 + i * bar_h
        w = max(1, (width - label_w - 70) * value / top)
        parts.append(f"<text x='{label_w - 6}' y='{y + bar_h * 0.65}' text-anchor='end' class='lbl'>{_label(label)}</text>")
        parts.append(f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{bar_h - 6}' fill='{color}' rx='2'/>")
        parts.append(f"<text x='{label_w + w + 4:.1f}' y='{y + bar_h * 0.65}' class='val'>{escape(value_fmt(value))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def lines(series: dict, width: int = 760, height: int = 240, y_fmt=tick_fmt, area: bool = False) -> str:
    """Line chart: series name -> [(x label, y)] in x order; labels are shared and keep
    the order they first appear in (labels like "10%" or "01-05" do not sort as text)."""
    xs = list(dict.fromkeys(x for pts in series.values() for x, _ in pts))
    if not xs:
        return "<p class='muted'>no data</p>"
    pad_l, pad_r, pad_t, pad_b = 56, 12, 12, 46
    ticks = nice_ticks(min(0, min((y for pts in series.values() for _, y in pts), default=0)),
                       max((y for pts in series.values() for _, y in pts), default=1) or 1)
    ymin, ymax = ticks[0], ticks[-1]
    sx = (width - pad_l - pad_r) / max(1, len(xs) - 1)
    sy = (height - pad_t - pad_b) / ((ymax - ymin) or 1)
    index = {x: i for i, x in enumerate(xs)}
    parts = [f"<svg viewBox='0 0 {width} {height}' style='width:100%;max-width:{width}px;height:auto' role='img'>"]
    for yv in ticks:
        y = height - pad_b - (yv - ymin) * sy
        parts.append(f"<line x1='{pad_l}' x2='{width - pad_r}' y1='{y:.1f}' y2='{y:.1f}' class='grid'/>")
        parts.append(f"<text x='{pad_l - 6}' y='{y + 4:.1f}' text-anchor='end' class='tick'>{y_fmt(yv)}</text>")
    step = max(1, len(xs) // 8)
    for i, x in enumerate(xs):
        if i % step == 0 or i == len(xs) - 1:
            parts.append(f"<text x='{pad_l + i * sx:.1f}' y='{height - pad_b + 16}' text-anchor='middle' "
                         f"class='tick'>{escape(str(x))}</text>")
    for n, pts in enumerate(series.values()):
        color = PALETTE[n % len(PALETTE)]
        pts = sorted(pts, key=lambda p: index[p[0]])
        coords = " ".join(f"{pad_l + index[x] * sx:.1f},{height - pad_b - (y - ymin) * sy:.1f}" for x, y in pts)
        if area and pts:
            first, last = pts[0][0], pts[-1][0]
            base = height - pad_b - (0 - ymin) * sy
            parts.append(f"<polygon points='{pad_l + index[first] * sx:.1f},{base:.1f} {coords} "
                         f"{pad_l + index[last] * sx:.1f},{base:.1f}' fill='{color}' opacity='0.15'/>")
        parts.append(f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='2'/>")
    lx = pad_l
    for n, name in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        parts.append(f"<rect x='{lx}' y='{height - 18}' width='10' height='10' fill='{color}'/>"
                     f"<text x='{lx + 14}' y='{height - 9}' class='tick'>{_label(name)}</text>")
        lx += 24 + 12 * len(str(name))
    parts.append("</svg>")
    return "".join(parts)


def stacked_columns(columns: list[str], series: dict, width: int = 760, height: int = 240,
                    y_fmt=tick_fmt) -> str:
    """Stacked columns: x categories, series name -> values aligned with columns."""
    if not columns:
        return "<p class='muted'>no data</p>"
    pad_l, pad_r, pad_t, pad_b = 56, 12, 12, 46
    totals = [sum(vals[i] for vals in series.values()) for i in range(len(columns))]
    ticks = nice_ticks(0, max(totals) or 1)
    top = ticks[-1]
    bw = (width - pad_l - pad_r) / len(columns)
    sy = (height - pad_t - pad_b) / top
    parts = [f"<svg viewBox='0 0 {width} {height}' style='width:100%;max-width:{width}px;height:auto' role='img'>"]
    for yv in ticks:
        y = height - pad_b - yv * sy
        parts.append(f"<line x1='{pad_l}' x2='{width - pad_r}' y1='{y:.1f}' y2='{y:.1f}' class='grid'/>"
                     f"<text x='{pad_l - 6}' y='{y + 4:.1f}' text-anchor='end' class='tick'>{y_fmt(yv)}</text>")
    step = max(1, len(columns) // 12)
    for i, col in enumerate(columns):
        base = height - pad_b
        for n, (name, vals) in enumerate(series.items()):
            h = vals[i] * sy
            parts.append(f"<rect x='{pad_l + i * bw + 1:.1f}' y='{base - h:.1f}' width='{max(1, bw - 2):.1f}' "
                         f"height='{h:.1f}' fill='{PALETTE[n % len(PALETTE)]}'><title>{escape(str(name))} {escape(col)}: "
                         f"{_fmt(vals[i])}</title></rect>")
            base -= h
        if i % step == 0:
            parts.append(f"<text x='{pad_l + i * bw + bw / 2:.1f}' y='{height - pad_b + 16}' text-anchor='middle' "
                         f"class='tick'>{escape(col)}</text>")
    lx = pad_l
    for n, name in enumerate(series):
        parts.append(f"<rect x='{lx}' y='{height - 18}' width='10' height='10' fill='{PALETTE[n % len(PALETTE)]}'/>"
                     f"<text x='{lx + 14}' y='{height - 9}' class='tick'>{_label(name)}</text>")
        lx += 24 + 12 * len(str(name))
    parts.append("</svg>")
    return "".join(parts)


def funnel(steps: list[tuple[str, float]], width: int = 520) -> str:
    if not steps:
        return "<p class='muted'>no data</p>"
    top = max(v for _, v in steps) or 1
    h = 30 * len(steps) + 6
    parts = [f"<svg viewBox='0 0 {width} {h}' style='width:100%;max-width:{width}px;height:auto' role='img'>"]
    for i, (label, v) in enumerate(steps):
        w = max(2, (width - 160) * v / top)
        x = (width - 160 - w) / 2 + 150
        parts.append(f"<rect x='{x:.1f}' y='{4 + i * 30}' width='{w:.1f}' height='24' fill='{PALETTE[i % len(PALETTE)]}' rx='3'/>"
                     f"<text x='140' y='{20 + i * 30}' text-anchor='end' class='lbl'>{_label(label)}</text>"
                     f"<text x='{x + w / 2:.1f}' y='{20 + i * 30}' text-anchor='middle' class='inbar'>{_fmt(v)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def table(headers: list, rows: list[list], numeric_from: int = 1) -> str:
    head = "".join(f"<th title='{escape(h.key)}'>{escape(h.text)}</th>" if isinstance(h, Term) and h.key
                   else f"<th>{escape(str(h))}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            cls = " class='num'" if i >= numeric_from and isinstance(v, (int, float)) else ""
            if isinstance(v, Term) and v.key:
                cells.append(f"<td{cls} title='{escape(v.key)}'>{escape(v.text)}</td>")
                continue
            text = _fmt(v) if isinstance(v, float) and not isinstance(v, bool) else v
            cells.append(f"<td{cls}>{escape(str(text))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """
body{font-family:-apple-system,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;margin:0;background:#f5f6f8;color:#1f2430}
header{background:#1f3a68;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
main{padding:18px 28px;display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:18px}
section{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08);overflow-x:auto}
section.wide{grid-column:1/-1}h2{font-size:16px;margin:0 0 10px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}.kpi{background:#f0f4fb;border-radius:6px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;color:#5b6475}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #eceef2;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#8a93a3}.bad{color:#c0392b}.ok{color:#2e8b57}
svg text.lbl{font-size:12px;fill:#333}svg text.val,svg text.tick{font-size:11px;fill:#555}svg text.inbar{font-size:11px;fill:#fff}
svg line.grid{stroke:#e6e8ec}
"""
