"""The pieces of the HTML report (:mod:`wmi.eval.html_report`): records, images, selection, charts.

* :class:`ReportImage` and :class:`MetricFact`: what the report is made of;
* :func:`tiles`: the masked input, each method's prediction and the ground truth of one image,
  as inlined JPEG thumbnails (and larger copies for the lightbox);
* :func:`select_images`: which images get a strip;
* :func:`chart` and :func:`legend`: the inline SVG of a metric against the hole ratio.

Imports neither torch nor :mod:`wmi.eval.report`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wmi.errors import WmiError
from wmi.inpaint.pixels import resize_hole
from wmi.io import read_image, read_mask
from wmi.masks import BUCKET_LABELS

MISSING = "-"
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
#: Colour of the hole in the masked input (white, as in the PConv and LaMa figures).
HOLE_FILL = (255, 255, 255)


def short_label(label: str) -> str:
    """A metric's label without unit, arrow or "hole" ("hole PSNR (dB) ↑" -> "PSNR")."""
    words = label.split(" ")
    return words[1] if words[0] == "hole" and len(words) > 1 else words[0]


@dataclass(frozen=True)
class MetricFact:
    """How to show one metric key.

    Attributes:
        key: the key in ``metrics`` dicts (``"l1"``).
        label: the row / column label, with its direction arrow (``"L1 (%) ↓"``).
        higher_is_better: which direction is better (the best value is marked).
    """

    key: str
    label: str
    higher_is_better: bool = False


@dataclass
class ReportImage:
    """One evaluated image: its files and the metrics of every method on it.

    Attributes:
        name: what the report calls it (usually the ground-truth file name).
        gt_path: the ground-truth image file.
        mask_path: its mask file (white = hole).
        preds: method name -> that method's prediction file; a method may be absent.
        hole_ratio: fraction of hole pixels in [0, 1].
        bucket: its hole-ratio bucket label (``"10-20%"``).
        metrics: method name -> metric key -> value; an unscored image has ``{}``.
    """

    name: str
    gt_path: Path
    mask_path: Path
    preds: dict[str, Path]
    hole_ratio: float
    bucket: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


FactLike = MetricFact | tuple[str, str, bool]


def is_value(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def fmt_value(value: Any) -> str:
    """Three decimals as in the paper; ``inf`` for an infinite PSNR; ``-`` when missing."""
    if not is_value(value):
        return MISSING
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3f}"


def best_of(values: Mapping[str, float], higher_is_better: bool) -> set[str]:
    """The methods with the best value; none unless at least two methods have a value."""
    present = {k: v for k, v in values.items() if is_value(v)}
    if len(present) < 2:
        return set()
    target = (max if higher_is_better else min)(present.values())
    return {k for k, v in present.items() if v == target}


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------ images


def _jpeg_data_uri(img: Image.Image, quality: int) -> str:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fit(img: Image.Image, size: int) -> Image.Image:
    """A copy no larger than ``size`` on its long side (never enlarged)."""
    if max(img.size) <= size:
        return img
    out = img.copy()
    out.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return out


@dataclass
class Tile:
    caption: str
    thumb: str = ""  # data URI; "" when the file could not be read
    full: str = ""  # data URI of the larger copy; "" = the thumbnail is the full size
    error: str = ""


def _encode(img: Image.Image, thumb_size: int, full_size: int, quality: int) -> tuple[str, str]:
    thumb = _fit(img, thumb_size)
    thumb_uri = _jpeg_data_uri(thumb, quality)
    full = _fit(img, full_size) if full_size > 0 else thumb
    if full.size == thumb.size:
        return thumb_uri, ""
    return thumb_uri, _jpeg_data_uri(full, quality)


def _load_rgb(path: Path) -> Image.Image:
    return Image.fromarray((np.clip(read_image(path), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def tiles(
    image: ReportImage, methods: Sequence[str], thumb_size: int, full_size: int, quality: int
) -> list[Tile]:
    """Masked input, each method's prediction, ground truth; unreadable files become errors."""
    tiles: list[Tile] = []
    gt: Image.Image | None = None
    masked = Tile("masked input")
    try:
        gt = _load_rgb(Path(image.gt_path))
        hole = read_mask(image.mask_path)
        hole = resize_hole(hole, gt.height, gt.width)  # as wmi eval scores it
        arr = np.asarray(gt).copy()
        arr[hole] = HOLE_FILL
        masked.thumb, masked.full = _encode(Image.fromarray(arr), thumb_size, full_size, quality)
    except (WmiError, OSError, ValueError) as exc:
        masked.error = str(exc)
    tiles.append(masked)
    for method in methods:
        tile = Tile(method)
        path = image.preds.get(method)
        if path is None:
            tile.error = "no prediction"
        else:
            try:
                tile.thumb, tile.full = _encode(
                    _load_rgb(Path(path)), thumb_size, full_size, quality
                )
            except (WmiError, OSError, ValueError) as exc:
                tile.error = str(exc)
        tiles.append(tile)
    truth = Tile("ground truth")
    if gt is None:
        truth.error = masked.error
    else:
        truth.thumb, truth.full = _encode(gt, thumb_size, full_size, quality)
    tiles.append(truth)
    return tiles


# ------------------------------------------------------------------------------ selection


def value_of(image: ReportImage, method: str, key: str) -> float | None:
    value = image.metrics.get(method, {}).get(key)
    return value if is_value(value) else None


def select_images(
    images: Sequence[ReportImage],
    methods: Sequence[str],
    rank: MetricFact,
    per_section: int,
    seed: int,
) -> list[tuple[str, list[ReportImage]]]:
    """The strip sections: (heading, images) in report order; empty sections are left out.

    * "methods differ most": the largest spread (max - min) of ``rank`` across methods
      (only with two or more methods; images scored by fewer than two are left out);
    * per method, its worst then its best images by ``rank`` (direction respected);
    * a random sample drawn with ``random.Random(seed)`` from the images sorted by name.

    Ties are broken by image name, so the selection does not depend on input order.
    """
    ordered = sorted(images, key=lambda im: im.name)
    sections: list[tuple[str, list[ReportImage]]] = []
    if per_section <= 0 or not ordered:
        return sections
    key = rank.key
    if len(methods) >= 2:
        spread = []
        for im in ordered:
            values = [v for m in methods if (v := value_of(im, m, key)) is not None]
            if len(values) >= 2 and all(not math.isinf(v) for v in values):
                spread.append((max(values) - min(values), im))
        spread.sort(key=lambda t: -t[0])  # stable: ties stay in name order
        if spread:
            sections.append(
                (
                    f"Where the methods differ most (spread of {rank.label})",
                    [im for _, im in spread[:per_section]],
                )
            )
    sign = 1.0 if rank.higher_is_better else -1.0  # sign * value: larger is better
    for method in methods:
        scored = [(v, im) for im in ordered if (v := value_of(im, method, key)) is not None]
        if not scored:
            continue
        worst = sorted(scored, key=lambda t: sign * t[0])[:per_section]
        best = sorted(scored, key=lambda t: -sign * t[0])[:per_section]
        sections.append((f"{method}: worst by {rank.label}", [im for _, im in worst]))
        sections.append((f"{method}: best by {rank.label}", [im for _, im in best]))
    sample = random.Random(seed).sample(ordered, min(per_section, len(ordered)))
    sections.append((f"Random sample (seed {seed})", sample))
    return sections


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
