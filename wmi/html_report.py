"""A self-contained HTML report of an evaluation: Table I, charts, image strips, per-image table.

One file with everything inlined (images as base64 JPEG, CSS, a little JavaScript, SVG charts):
no network, no CDN, opens in any browser. It shows

* Table I, overall and per hole-ratio bucket, with the best value of each row marked;
* one chart per metric: the mean per bucket, one line per method;
* side-by-side strips (masked input | each method | ground truth) for the images where the
  methods differ most, the worst and best images of each method, and a seeded random sample;
  clicking a tile opens it large (arrow keys step through the strip, Esc closes);
* a per-image table, sorted by any column on a header click.

Only the images shown in strips are read and inlined, each once however many sections pick
it, so the size depends on ``per_section``, ``thumb_size`` and ``full_size``, not on the number
of images (1,000 images at 256x256 give about 3 MB, most of it thumbnails).

This module imports neither torch nor :mod:`wmi.report`; the metric labels and directions are
passed in (:func:`facts_from_registry` builds them from :data:`wmi.kinds.METRICS`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wmi.errors import WmiError
from wmi.io import atomic_path, read_image, read_mask
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


def facts_from_registry(
    extra: Mapping[str, tuple[str, bool]] | None = None,
) -> list[MetricFact]:
    """The metric facts of :data:`wmi.kinds.METRICS`, plus ``extra`` (key -> (label, higher)).

    ``extra`` entries win over registry entries of the same key, so a caller can add
    ``{"fid": ("FID ↓", False), "lpips": ("LPIPS ↓", False)}`` before those are registered.
    """
    from wmi.kinds import METRICS

    facts = {
        e.name: MetricFact(e.name, e.label or e.name, e.higher_is_better) for e in METRICS.entries()
    }
    for key, (label, higher) in (extra or {}).items():
        facts[key] = MetricFact(key, label, higher)
    return list(facts.values())


# ------------------------------------------------------------------------------ helpers


def _as_facts(metric_facts: Iterable[FactLike]) -> dict[str, MetricFact]:
    out: dict[str, MetricFact] = {}
    for fact in metric_facts:
        if not isinstance(fact, MetricFact):
            key, label, higher = fact
            fact = MetricFact(key, label, bool(higher))
        out[fact.key] = fact
    return out


def _metric_keys(results: Mapping[str, Any], images: Sequence[ReportImage]) -> list[str]:
    """Every metric key present, in order of first appearance (results first, then images)."""
    keys: dict[str, None] = {}
    for method in results["methods"]:
        keys.update(dict.fromkeys(method["metrics"]))
        for bucket in method.get("buckets", []):
            keys.update(dict.fromkeys(bucket["metrics"]))
    for image in images:
        for values in image.metrics.values():
            keys.update(dict.fromkeys(values))
    return list(keys)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def _fmt(value: Any) -> str:
    """Three decimals as in the paper; ``inf`` for an infinite PSNR; ``-`` when missing."""
    if not _finite(value):
        return MISSING
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3f}"


def _best(values: Mapping[str, float], higher_is_better: bool) -> set[str]:
    """The methods with the best value; none unless at least two methods have a value."""
    present = {k: v for k, v in values.items() if _finite(v)}
    if len(present) < 2:
        return set()
    target = (max if higher_is_better else min)(present.values())
    return {k for k, v in present.items() if v == target}


def _e(text: Any) -> str:
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
class _Tile:
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


def _tiles(
    image: ReportImage, methods: Sequence[str], thumb_size: int, full_size: int, quality: int
) -> list[_Tile]:
    """Masked input, each method's prediction, ground truth; unreadable files become errors."""
    tiles: list[_Tile] = []
    gt: Image.Image | None = None
    masked = _Tile("masked input")
    try:
        gt = _load_rgb(Path(image.gt_path))
        hole = read_mask(image.mask_path)
        if hole.shape != (gt.height, gt.width):
            raise WmiError(
                f"{image.mask_path}: mask is {hole.shape[1]}x{hole.shape[0]}, image is "
                f"{gt.width}x{gt.height}"
            )
        arr = np.asarray(gt).copy()
        arr[hole] = HOLE_FILL
        masked.thumb, masked.full = _encode(Image.fromarray(arr), thumb_size, full_size, quality)
    except (WmiError, OSError, ValueError) as exc:
        masked.error = str(exc)
    tiles.append(masked)
    for method in methods:
        tile = _Tile(method)
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
    truth = _Tile("ground truth")
    if gt is None:
        truth.error = masked.error
    else:
        truth.thumb, truth.full = _encode(gt, thumb_size, full_size, quality)
    tiles.append(truth)
    return tiles


# ------------------------------------------------------------------------------ selection


def _value(image: ReportImage, method: str, key: str) -> float | None:
    value = image.metrics.get(method, {}).get(key)
    return value if _finite(value) else None


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
            values = [v for m in methods if (v := _value(im, m, key)) is not None]
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
        scored = [(v, im) for im in ordered if (v := _value(im, method, key)) is not None]
        if not scored:
            continue
        worst = sorted(scored, key=lambda t: sign * t[0])[:per_section]
        best = sorted(scored, key=lambda t: -sign * t[0])[:per_section]
        sections.append((f"{method}: worst by {rank.label}", [im for _, im in worst]))
        sections.append((f"{method}: best by {rank.label}", [im for _, im in best]))
    sample = random.Random(seed).sample(ordered, min(per_section, len(ordered)))
    sections.append((f"Random sample (seed {seed})", sample))
    return sections


# ------------------------------------------------------------------------------ HTML parts


def _sections(results: Mapping[str, Any]) -> list[tuple[str, dict[str, Mapping[str, Any]]]]:
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


def _table_one(
    results: Mapping[str, Any], keys: Sequence[str], facts: Mapping[str, MetricFact]
) -> str:
    names = [m["name"] for m in results["methods"]]
    head = "".join(
        f'<th class="num"><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{_e(n)}</th>"
        for i, n in enumerate(names)
    )
    rows = []
    for label, blocks in _sections(results):
        present = [k for k in keys if any(k in b["metrics"] for b in blocks.values())]
        span = 1 + len(present)
        cells = "".join(
            f'<td class="num">{_e(blocks[n]["images"]) if n in blocks else MISSING}</td>'
            for n in names
        )
        rows.append(
            f'<tr class="sec"><th rowspan="{span}" scope="rowgroup">{_e(label)}</th>'
            f"<td>images</td>{cells}</tr>"
        )
        for key in present:
            fact = facts[key]
            values = {n: blocks[n]["metrics"].get(key) for n in names if n in blocks}
            best = _best(values, fact.higher_is_better)
            tds = []
            for n in names:
                text = _fmt(values.get(n))
                if n in best:
                    tds.append(f'<td class="num best"><b>{text}</b></td>')
                else:
                    tds.append(f'<td class="num">{text}</td>')
            rows.append(f'<tr data-metric="{_e(key)}"><td>{_e(fact.label)}</td>{"".join(tds)}</tr>')
    return (
        '<table id="table-one" class="grid">'
        f"<thead><tr><th>holes</th><th>metric</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


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


def _chart(key: str, fact: MetricFact, results: Mapping[str, Any]) -> str:
    """One inline SVG: x = bucket, y = mean of ``key``, one polyline per method."""
    methods = results["methods"]
    labels = [label for label, _ in _sections(results)[1:]]
    series: list[tuple[str, str, list[float | None]]] = []
    for i, m in enumerate(methods):
        by_range = {b["range"]: b["metrics"].get(key) for b in m.get("buckets", [])}
        ys = [by_range.get(label) for label in labels]
        ys = [y if _finite(y) and not math.isinf(y) else None for y in ys]
        series.append((m["name"], PALETTE[i % len(PALETTE)], ys))
    values = [y for _, _, ys in series for y in ys if y is not None]
    width, height = 300, 200
    left, right, top, bottom = 46, 10, 26, 38
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" data-metric="{_e(key)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(fact.label)} per hole ratio</title>",
        f'<text x="{width / 2}" y="16" text-anchor="middle" class="ct">{_e(fact.label)}</text>',
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
            f"{_e(label)}</text>"
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
        parts.append(f'<g class="series" data-method="{_e(name)}">')
        for points in runs:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                'stroke-width="2"/>'
            )
        for i, y in enumerate(ys):
            if y is not None:
                parts.append(
                    f'<circle cx="{x_of(i):.1f}" cy="{y_of(y):.1f}" r="3" fill="{colour}">'
                    f"<title>{_e(name)}, {_e(labels[i])}: {_fmt(y)}</title></circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _legend(results: Mapping[str, Any]) -> str:
    items = "".join(
        f'<span class="li"><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}">'
        f"</span>{_e(m['name'])}</span>"
        for i, m in enumerate(results["methods"])
    )
    return f'<div class="legend">{items}</div>'


def _numbers(
    image: ReportImage, method: str, keys: Sequence[str], facts: Mapping[str, MetricFact]
) -> str:
    values = image.metrics.get(method, {})
    return " · ".join(
        f"{_e(facts[k].label.split(' ')[0])} {_fmt(values.get(k))}" for k in keys if k in values
    )


def _strip(
    image: ReportImage,
    anchor: str,
    row: str,
    tiles: Sequence[_Tile],
    methods: Sequence[str],
    keys: Sequence[str],
    facts: Mapping[str, MetricFact],
) -> str:
    figs = []
    for i, tile in enumerate(tiles):
        numbers = ""
        if 0 < i <= len(methods):
            numbers = _numbers(image, methods[i - 1], keys, facts)
        caption = f"{image.name} — {tile.caption}"
        if tile.thumb:
            full = f' data-full="{tile.full}"' if tile.full else ""
            body = (
                f'<img src="{tile.thumb}"{full} alt="{_e(caption)}" '
                f'data-cap="{_e(caption + (" — " + numbers if numbers else ""))}" loading="lazy">'
            )
        else:
            body = f'<div class="err" title="{_e(tile.error)}">unreadable</div>'
        figs.append(
            f'<figure><div class="frame">{body}</div><figcaption><b>{_e(tile.caption)}</b>'
            f"{'<br>' + numbers if numbers else ''}</figcaption></figure>"
        )
    head = (
        f'<div class="sh"><a href="#{row}" class="nm" title="its row in the per-image table">'
        f"{_e(image.name)}</a> "
        f'<span class="mu">hole {100 * image.hole_ratio:.1f}% · {_e(image.bucket)}</span></div>'
    )
    return (
        f'<div class="strip" id="{anchor}" data-image="{_e(image.name)}">{head}'
        f'<div class="tiles">{"".join(figs)}</div></div>'
    )


def _image_table(
    ordered: Sequence[ReportImage],
    rows_ids: Mapping[int, str],
    methods: Sequence[str],
    keys: Sequence[str],
    facts: Mapping[str, MetricFact],
    anchors: Mapping[int, str],
) -> str:
    top = [
        '<th rowspan="2" data-type="text">image</th>',
        '<th rowspan="2">hole %</th>',
        '<th rowspan="2" data-type="text">bucket</th>',
    ]
    sub = []
    for key in keys:
        top.append(f'<th colspan="{len(methods)}" class="grp">{_e(facts[key].label)}</th>')
        for method in methods:
            sub.append(
                f'<th class="num" data-metric="{_e(key)}" data-method="{_e(method)}" '
                f'data-higher="{int(facts[key].higher_is_better)}">{_e(method)}</th>'
            )
    rows = []
    for im in ordered:
        # Lean cells (1,000 rows x methods x metrics): the sorting script reads the text.
        anchor = anchors.get(id(im))
        name = _e(im.name)
        cell = f'<a href="#{anchor}">{name}</a>' if anchor else name
        tds = [
            f'<td id="{rows_ids[id(im)]}">{cell}</td>',
            f"<td>{100 * im.hole_ratio:.1f}</td>",
            f"<td>{_e(im.bucket)}</td>",
        ]
        for key in keys:
            values = {m: im.metrics.get(m, {}).get(key) for m in methods}
            best = _best(values, facts[key].higher_is_better)
            for m in methods:
                tds.append(
                    f'<td class="best">{_fmt(values[m])}</td>'
                    if m in best
                    else f"<td>{_fmt(values[m])}</td>"
                )
        rows.append(f"<tr>{''.join(tds)}</tr>")
    # A thicker line before each metric's first method, without a class on every cell.
    m = len(methods)
    style = (
        f"<style>#per-image td:nth-child({m}n+4),"
        f"#per-image thead tr+tr th:nth-child({m}n+1){{border-left:2px solid #999}}</style>"
    )
    return (
        f'{style}<table id="per-image" class="grid sortable">'
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


CSS = """
:root{--fg:#1d1d1f;--mu:#6e6e73;--bd:#d2d2d7;--bg:#fff;--alt:#f5f5f7;--best:#0a7d32}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;padding:16px 24px 48px;max-width:1500px}
h1{font-size:22px;margin:4px 0}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--bd)}
h3{font-size:15px;margin:18px 0 6px}
.mu{color:var(--mu)}.meta{color:var(--mu);margin:0 0 8px}
nav a{margin-right:14px}
table.grid{border-collapse:collapse;font-variant-numeric:tabular-nums}
.grid th,.grid td{border:1px solid var(--bd);padding:3px 8px;text-align:left;white-space:nowrap}
.grid thead th{background:var(--alt);position:sticky;top:0;line-height:20px}
#per-image thead tr+tr th{top:27px}
.grid .num{text-align:right}
.grid td.best{color:var(--best);background:#e9f7ee}
#table-one td.best b{font-weight:700}
#table-one tr.sec td,#table-one tr.sec th{border-top:2px solid #999}
.sortable thead tr:last-child th,.sortable th[data-type]{cursor:pointer}
.sortable th.asc::after{content:" ▲"}.sortable th.desc::after{content:" ▼"}
.sortable tbody tr:nth-child(even){background:#fafafa}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--bd)}
.grp{text-align:center!important}
#per-image td{text-align:right}
#per-image td:first-child,#per-image td:nth-child(3){text-align:left}
.top{display:flex;flex-wrap:wrap;gap:0 32px;align-items:flex-start}.top .grow{flex:1 1 360px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{border:1px solid var(--bd);border-radius:4px;background:#fff}
.chart .ct{font-weight:600;font-size:13px}.chart .tk{font-size:10px;fill:var(--mu)}
.chart .gl{stroke:#e5e5ea}.chart .cn{fill:var(--mu)}
.legend{margin:6px 0}.li{margin-right:16px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.strip{margin:10px 0 14px}.sh{margin-bottom:3px}.nm{font-weight:600}
.tiles{display:flex;gap:6px;overflow-x:auto}
figure{margin:0;width:172px;flex:none}
.frame{width:172px;height:172px;display:flex;align-items:center;justify-content:center;
background:var(--alt);border:1px solid var(--bd)}
.frame img{max-width:170px;max-height:170px;cursor:zoom-in;display:block}
.err{color:#b00;font-size:12px}
figcaption{font-size:11px;line-height:1.3;margin-top:2px;color:var(--mu)}
figcaption b{color:var(--fg);font-weight:600}
#lb{position:fixed;inset:0;background:rgba(0,0,0,.88);display:none;flex-direction:column;
align-items:center;justify-content:center;z-index:10;cursor:zoom-out}
#lb.on{display:flex}#lb img{max-width:96vw;max-height:88vh;min-width:min(512px,96vw);
image-rendering:auto;object-fit:contain}
#lb div{color:#eee;margin-top:8px;font-size:13px;text-align:center}
"""

JS = """
(function(){
var lb=document.getElementById('lb'),lbi=lb.querySelector('img'),lbc=lb.querySelector('div');
var group=[],pos=0;
function show(i){pos=(i+group.length)%group.length;var im=group[pos];
lbi.src=im.getAttribute('data-full')||im.src;lbc.textContent=im.getAttribute('data-cap')+
(group.length>1?'  ('+(pos+1)+'/'+group.length+', \\u2190 \\u2192)':'');}
document.addEventListener('click',function(ev){var t=ev.target;
if(t.tagName==='IMG'&&t.closest('.tiles')){group=Array.prototype.slice.call(
t.closest('.tiles').querySelectorAll('img'));show(group.indexOf(t));lb.classList.add('on');}
else if(lb.classList.contains('on')&&lb.contains(t)){lb.classList.remove('on');lbi.src='';}});
document.addEventListener('keydown',function(ev){if(!lb.classList.contains('on'))return;
if(ev.key==='Escape'){lb.classList.remove('on');lbi.src='';}
else if(ev.key==='ArrowRight')show(pos+1);else if(ev.key==='ArrowLeft')show(pos-1);});
function key(td,text){var v=td?td.textContent:'';if(text)return v;
return v==='inf'?Infinity:v==='-inf'?-Infinity:parseFloat(v);}
document.querySelectorAll('table.sortable').forEach(function(table){
var body=table.tBodies[0],heads=[],rows=table.tHead.rows;
for(var c=0,i=0;i<rows[0].cells.length;i++){var th=rows[0].cells[i];
if(th.rowSpan>1){heads.push([th,c]);c++;}else{for(var j=0;j<th.colSpan;j++){heads.push(null);c++;}}}
var k=0;for(var h=0;h<heads.length;h++){if(heads[h]===null){heads[h]=[rows[1].cells[k],h];k++;}}
heads.forEach(function(pair){var th=pair[0],col=pair[1];th.addEventListener('click',function(){
var text=th.getAttribute('data-type')==='text';
var dir=th.classList.contains('asc')?-1:1;
table.querySelectorAll('th').forEach(function(o){o.classList.remove('asc','desc');});
th.classList.add(dir>0?'asc':'desc');
var list=Array.prototype.slice.call(body.rows);
list.sort(function(a,b){var x=key(a.cells[col],text),y=key(b.cells[col],text);
if(text)return dir*x.localeCompare(y);
var nx=isNaN(x),ny=isNaN(y);if(nx||ny)return nx-ny;return dir*(x-y);});
list.forEach(function(r){body.appendChild(r);});});});});
window.addEventListener('load',function(){var ok=0,bad=0;
document.querySelectorAll('img').forEach(function(im){if(im===lbi)return;
if(im.complete&&im.naturalWidth>0)ok++;else bad++;});
document.body.setAttribute('data-images-ok',ok);document.body.setAttribute('data-images-bad',bad);});
document.body.setAttribute('data-js','ok');
})();
"""


def render_html(
    results: Mapping[str, Any],
    images: Sequence[ReportImage],
    metric_facts: Iterable[FactLike],
    *,
    ssim_window: str,
    title: str = "Inpainting evaluation",
    seed: int = 0,
    per_section: int = 4,
    thumb_size: int = 256,
    full_size: int = 1024,
    jpeg_quality: int = 70,
    rank_metric: str = "l1",
) -> str:
    """The report as one HTML string; see :func:`write_html_report` for the arguments."""
    facts = _as_facts(metric_facts)
    keys = _metric_keys(results, images)
    for key in keys:
        facts.setdefault(key, MetricFact(key, key, False))
    methods = [m["name"] for m in results["methods"]]
    if rank_metric in facts:
        rank = facts[rank_metric]
    elif keys:
        rank = facts[keys[0]]
    else:
        rank = MetricFact(rank_metric, rank_metric, False)

    sections = select_images(images, methods, rank, per_section, seed) if keys else []
    ordered = sorted(images, key=lambda im: im.name)
    rows = {id(im): f"row-{i}" for i, im in enumerate(ordered)}
    anchors: dict[int, str] = {}  # id(image) -> its strip's id; each image is inlined once
    parts_strips = []
    for heading, chosen in sections:
        parts_strips.append(f"<h3>{_e(heading)}</h3>")
        for im in chosen:
            if id(im) not in anchors:
                anchor = anchors[id(im)] = f"img-{len(anchors)}"
                tiles = _tiles(im, methods, thumb_size, full_size, jpeg_quality)
                parts_strips.append(_strip(im, anchor, rows[id(im)], tiles, methods, keys, facts))
            else:
                # Shown in an earlier section: a link, not a second copy of the pictures.
                parts_strips.append(
                    f'<div class="strip dup"><a href="#{anchors[id(im)]}" class="nm">'
                    f'{_e(im.name)}</a> <span class="mu">shown above · '
                    f"{_numbers_all(im, methods, rank)}</span></div>"
                )

    n_images = len(images)
    infinite = any(m.get("psnr_infinite") for m in results["methods"])
    notes = [f"SSIM window: {_e(ssim_window)}"]
    if infinite:
        notes.append("inf: a hole reproduced exactly")
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(methods)} methods · {n_images} images · {" · ".join(notes)}</p>',
        '<nav><a href="#s-table">Table I</a><a href="#s-charts">Charts</a>'
        '<a href="#s-strips">Images</a><a href="#s-per-image">Per image</a></nav>',
        # Table I and the charts side by side on a wide screen, one above the other otherwise.
        '<div class="top"><section>',
        '<h2 id="s-table">Table I: hole metrics</h2>',
        _table_one(results, keys, facts),
        f'<p class="mu">Best of each row in <b style="color:var(--best)">bold green</b>. '
        f"SSIM window: {_e(ssim_window)}.</p>",
        '</section><section class="grow">',
        '<h2 id="s-charts">Metric vs hole ratio</h2>',
        _legend(results),
        '<div class="charts">' + "".join(_chart(k, facts[k], results) for k in keys) + "</div>",
        "</section></div>",
        '<h2 id="s-strips">Images</h2>',
        '<p class="mu">masked input | '
        + " | ".join(_e(m) for m in methods)
        + " | ground truth. Click a picture to enlarge it; ← → step through the strip.</p>",
        "".join(parts_strips) if parts_strips else '<p class="mu">No per-image records.</p>',
        '<h2 id="s-per-image">Per image</h2>',
        '<p class="mu">Click a column header to sort (again to reverse); best per row and '
        "metric in green.</p>",
        '<div class="scroll">'
        + _image_table(ordered, rows, methods, keys, facts, anchors)
        + "</div>"
        if images
        else '<p class="mu">No per-image records.</p>',
        '<div id="lb"><img alt=""><div></div></div>',
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        "<body>\n" + "\n".join(body) + f"\n<script>{JS}</script>\n</body></html>\n"
    )


def _numbers_all(image: ReportImage, methods: Sequence[str], rank: MetricFact) -> str:
    label = _e(rank.label.split(" ")[0])
    return ", ".join(f"{_e(m)} {label} {_fmt(_value(image, m, rank.key))}" for m in methods)


def write_html_report(
    path: str | os.PathLike[str],
    results: Mapping[str, Any],
    images: Sequence[ReportImage],
    metric_facts: Iterable[FactLike],
    *,
    ssim_window: str,
    title: str = "Inpainting evaluation",
    seed: int = 0,
    per_section: int = 4,
    thumb_size: int = 256,
    full_size: int = 1024,
    jpeg_quality: int = 70,
    rank_metric: str = "l1",
) -> Path:
    """Write the self-contained HTML report to ``path`` atomically and return ``path``.

    Args:
        path: the ``.html`` file to write (its folder is created).
        results: the Table I structure of :func:`wmi.metrics.summarize` (metric keys may
            include new ones such as ``lpips`` and ``fid``; every key present is shown, in
            order of first appearance).
        images: one record per evaluated image (may be empty: then no strips and no
            per-image table).
        metric_facts: label and direction per key, as :class:`MetricFact` or
            ``(key, label, higher_is_better)`` tuples (:func:`facts_from_registry` gives the
            registry's). A key without a fact is labelled with the key, lower is better.
        ssim_window: which SSIM was computed ("gaussian 11x11 σ=1.5"), printed in the report.
        title: the page title and heading.
        seed: the seed of the random sample of images.
        per_section: images per strip section (differ most, each method's worst and best,
            random sample).
        thumb_size: long side of the inlined thumbnails, pixels (never enlarged).
        full_size: long side of the copy the lightbox shows; inlined only when larger than
            the thumbnail (0: the lightbox enlarges the thumbnail).
        jpeg_quality: JPEG quality of the inlined pictures.
        rank_metric: the metric that ranks images for the strips (falls back to the first key).

    Unreadable image files do not fail the report: their tile reads "unreadable" and names the
    error on hover.
    """
    path = Path(path)
    text = render_html(
        results,
        images,
        metric_facts,
        ssim_window=ssim_window,
        title=title,
        seed=seed,
        per_section=per_section,
        thumb_size=thumb_size,
        full_size=full_size,
        jpeg_quality=jpeg_quality,
        rank_metric=rank_metric,
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
