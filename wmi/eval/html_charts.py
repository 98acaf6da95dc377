"""The charts of the HTML report: each metric against the hole ratio, as inline SVG.

:func:`sections` splits a results structure into "all" and its hole-ratio buckets;
:func:`chart` draws one metric over them (with the runs' intervals as error bars);
:func:`legend` names the methods in :data:`PALETTE`'s colours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from wmi.eval.html_records import MetricFact, esc, fmt_value, is_value
from wmi.masks import BUCKET_LABELS

#: Line colours of the methods, in column order (Tableau 10, readable on white).
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def sections(results: Mapping[str, Any]) -> list[tuple[str, dict[str, Mapping[str, Any]]]]:
    methods = results["methods"]
    out: list[tuple[str, dict[str, Mapping[str, Any]]]] = [("all", {m["name"]: m for m in methods})]
    labels = list(BUCKET_LABELS)
    for m in methods:  # buckets the caller names that wmi.masks does not, in their order
        labels += [b["range"] for b in m.get("buckets", []) if b["range"] not in labels]
    for label in labels:
        blocks = {
            m["name"]: b for m in methods for b in m.get("buckets", []) if b["range"] == label
        }
        if blocks:
            out.append((label, blocks))
    return out


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in (1, 2, 2.5, 5, 10) if s * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9 or len(ticks) < 2:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def _tick_text(value: float, ticks: Sequence[float]) -> str:
    """The tick label with as many decimals as the step needs (0.25 -> 2, 5 -> 0)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return f"{value:.{decimals}f}"


def chart(key: str, fact: MetricFact, results: Mapping[str, Any]) -> str:
    """One inline SVG: x = bucket, y = mean of ``key``, one polyline per method; an error bar
    where a bucket has a 95% interval over runs (``ci95``)."""
    methods = results["methods"]
    labels = [label for label, _ in sections(results)[1:]]
    series: list[tuple[str, str, list[float | None]]] = []
    bars: dict[tuple[str, int], tuple[float, float]] = {}  # (method, bucket) -> 95% interval
    for i, m in enumerate(methods):
        by_range = {b["range"]: b for b in m.get("buckets", [])}
        ys = [by_range.get(label, {}).get("metrics", {}).get(key) for label in labels]
        ys = [y if is_value(y) and not math.isinf(y) else None for y in ys]
        series.append((m["name"], PALETTE[i % len(PALETTE)], ys))
        for j, label in enumerate(labels):
            low, high = by_range.get(label, {}).get("ci95", {}).get(key, (None, None))
            if ys[j] is not None and is_value(low) and is_value(high):
                bars[(m["name"], j)] = (low, high)
    values = [y for _, _, ys in series for y in ys if y is not None]
    values += [v for bar in bars.values() for v in bar]
    width, height = 300, 200
    left, right, top, bottom = 46, 10, 26, 38
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" data-metric="{esc(key)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{esc(fact.label)} per hole ratio</title>",
        f'<text x="{width / 2}" y="16" text-anchor="middle" class="ct">{esc(fact.label)}</text>',
    ]
    if not labels or not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="cn">'
            "no per-bucket values</text></svg>"
        )
        return "".join(parts)
    ticks = _nice_ticks(min(values), max(values))
    y0, y1 = ticks[0], ticks[-1]

    def x_of(i: int) -> float:
        return left + (pw * (i + 0.5) / len(labels))

    def y_of(v: float) -> float:
        return top + ph * (1.0 - (v - y0) / (y1 - y0))

    for t in ticks:
        y = y_of(t)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="gl"/>'
            f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" class="tk">'
            f"{_tick_text(t, ticks)}</text>"
        )
    for i, label in enumerate(labels):
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{top + ph + 15}" text-anchor="middle" class="tk">'
            f"{esc(label)}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" class="tk">'
        "hole ratio</text>"
    )
    for name, colour, ys in series:
        run: list[str] = []
        runs: list[list[str]] = []
        for i, y in enumerate(ys):
            if y is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append(f"{x_of(i):.1f},{y_of(y):.1f}")
        if run:
            runs.append(run)
        parts.append(f'<g class="series" data-method="{esc(name)}">')
        for points in runs:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        for i, y in enumerate(ys):
            if (name, i) in bars:  # the error bar: the bucket's 95% interval over runs
                low, high = bars[(name, i)]
                x = f"{x_of(i):.1f}"
                parts.append(
                    f'<line class="eb" x1="{x}" x2="{x}" y1="{y_of(low):.1f}" '
                    f'y2="{y_of(high):.1f}" stroke="{colour}" stroke-width="1.5">'
                    f"<title>{esc(name)}, {esc(labels[i])}: 95% interval {fmt_value(low)} to "
                    f"{fmt_value(high)}</title></line>"
                )
            if y is not None:
                parts.append(
                    f'<circle cx="{x_of(i):.1f}" cy="{y_of(y):.1f}" r="3" fill="{colour}">'
                    f"<title>{esc(name)}, {esc(labels[i])}: {fmt_value(y)}</title></circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend(results: Mapping[str, Any]) -> str:
    items = "".join(
        f'<span class="li"><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}">'
        f"</span>{esc(m['name'])}</span>"
        for i, m in enumerate(results["methods"])
    )
    return f'<div class="legend">{items}</div>'
