"""Charts as inline SVG text: no script, no font or file from the internet.

A report must open from an email attachment on a phone with no connection, so charts are
drawn here as plain SVG: stacked columns over time and horizontal bars. Each bar carries
a <title>, which browsers show on hover, with its exact value. Colours are the Okabe-Ito
palette, readable by people with colour blindness. Knows nothing of what is counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "columns", "hbars"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_FONT = "font-family=\"system-ui, sans-serif\" font-size=\"11\""


def columns(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    percent: bool = False,
    width: int = 760,
    height: int = 260,
) -> str:
    """Stacked columns, one per label; with `percent`, each column is scaled to 100 %."""
    left, right, top, bottom = 48, 8, 10, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    peak = 100.0 if percent else max(totals, default=0.0)
    step, ceiling = _ticks(peak)
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(slot * 0.8, 1.0)
    parts = [_open(width, height + 22 * _legend_rows(series, width), title)]
    for tick in _frange(0, ceiling, step):
        y = top + plot_h - plot_h * tick / ceiling
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{tick:g} %" if percent else _number(tick)
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{label}</text>')
    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar) / 2
        base = float(top + plot_h)
        total = totals[i]
        for s, (name, values) in enumerate(series):
            value = values[i]
            if value <= 0 or (percent and total <= 0):
                continue
            shown = 100 * value / total if percent else value
            h = plot_h * shown / ceiling
            base -= h
            tip = f"{label} · {name}: {_number(value)}" + (f" ({shown:.0f} %)" if percent else "")
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        if i % every == 0:
            cx = left + slot * i + slot / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>{escape(label)}</text>'
            )
    parts.append(_legend([name for name, _ in series], top + plot_h + 30, width))
    parts.append("</svg>")
    return "".join(parts)


def hbars(items: Sequence[tuple[str, float]], *, title: str, width: int = 760, colour: str = PALETTE[0]) -> str:
    """One horizontal bar per (label, value), in the order given, value written at its end."""
    row, label_w, top = 22, 230, 4
    height = top * 2 + row * max(len(items), 1)
    peak = max((value for _, value in items), default=0.0) or 1.0
    plot_w = width - label_w - 60
    parts = [_open(width, height, title)]
    for i, (label, value) in enumerate(items):
        y = top + row * i
        w = plot_w * value / peak
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" {_FONT}>{escape(short)}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 6}" fill="{colour}">'
            f"<title>{escape(label)}: {_number(value)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" {_FONT}>{_number(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )


def _legend(names: Sequence[str], y: float, width: int) -> str:
    if len(names) < 2:
        return ""
    parts = []
    x, line = 48.0, 0
    for s, name in enumerate(names):
        w = 22 + 7 * len(name)
        if x + w > width and x > 48:
            x, line = 48.0, line + 1
        yy = y + 22 * line
        parts.append(
            f'<rect x="{x:.0f}" y="{yy - 9:.0f}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>'
            f'<text x="{x + 16:.0f}" y="{yy + 1:.0f}" {_FONT}>{escape(name)}</text>'
        )
        x += w
    return "".join(parts)


def _legend_rows(series: Sequence[tuple[str, Sequence[float]]], width: int) -> int:
    if len(series) < 2:
        return 0
    rows, x = 1, 48.0
    for name, _ in series:
        w = 22 + 7 * len(name)
        if x + w > width and x > 48:
            rows, x = rows + 1, 48.0
        x += w
    return rows


def _ticks(peak: float) -> tuple[float, float]:
    """A round step and the axis ceiling (a multiple of it) for about four gridlines."""
    if peak <= 0:
        return 1.0, 4.0
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1.0
    return step, step * math.ceil(peak / step)


def _frange(start: float, stop: float, step: float) -> list[float]:
    count = round((stop - start) / step)
    return [start + step * i for i in range(count + 1)]


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"
