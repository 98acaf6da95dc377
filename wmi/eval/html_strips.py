"""The image strips of the HTML report: which images get one, and their inlined thumbnails.

* :func:`tiles`: the masked input, each method's prediction and the ground truth of one image,
  as inlined JPEG thumbnails (and larger copies for the lightbox);
* :func:`select_images`: which images get a strip (where methods differ most, each method's
  best and worst, a seeded random sample).
"""

from __future__ import annotations

import base64
import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from wmi.errors import WmiError
from wmi.eval.html_records import MetricFact, ReportImage, is_value
from wmi.inpaint.pixels import resize_hole
from wmi.io import read_image, read_mask

#: Colour of the hole in the masked input (white, as in the PConv and LaMa figures).
HOLE_FILL = (255, 255, 255)


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
