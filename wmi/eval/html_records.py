"""What the HTML report (:mod:`wmi.eval.html_report`) is made of, and how a value is shown.

:class:`ReportImage` (one evaluated image), :class:`MetricFact` (how to show one metric), and
the cell formatting every part of the page shares. Imports neither torch nor images.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MISSING = "-"


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
