"""The paper's Table I metrics over the hole region, and their averages over images.

All functions take images as ``(H, W, 3)`` arrays, float in [0, 1] or uint8 (read as / 255),
and a boolean ``hole`` array ``(H, W)`` where True marks a hole pixel. The definitions are
written out in ``docs/metrics.md``; in short, for the hole pixels ``Ω`` (all channels):

* ``l1 = 100 · mean_Ω |pred - gt|``, ``l2 = 100 · mean_Ω (pred - gt)²`` (percent);
* ``psnr = min(10 · log10(1 / mean_Ω (pred - gt)²), 100)`` dB: a hole reproduced exactly
  counts as :data:`PSNR_CAP` (100 dB), so means stay finite;
* ``ssim``: scikit-image's ``structural_similarity`` (``data_range=1``, colour) between the
  composite (hole from ``pred``, the rest from ``gt``) and ``gt``, with the window of
  :data:`wmi.kinds.SSIM_WINDOWS`: by default scikit-image's uniform 7x7; or the gaussian
  11x11, sigma 1.5, of Wang et al. 2004; or a window's own whole-image function (``lama``:
  :func:`wmi.eval.ssim.lama_ssim`, zero padding, border included);
* ``tv = 100 · L_tv(composite)``, the total-variation term of the PConv training loss on the
  hole dilated by one pixel (:func:`total_variation`).

Every image is measured in strips of rows (:data:`STRIP_PIXELS` pixels each, with the rows
around them that a window needs), so the memory an image costs beyond its pixels does not grow
with its size; the strips give scikit-image's numbers.

Which metrics exist, their labels and directions is :data:`wmi.kinds.METRICS`: each entry names
its function (``fn(pred, gt, hole, comp) -> float``), and :func:`hole_metrics`, the reports
and ``wmi eval`` read that table. docs/metrics.md has the recipe for adding one.
:func:`wmi.eval.scoring.score_folders` scores whole folders (``wmi eval``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from wmi.errors import WmiError
from wmi.inpaint.pixels import composite, resize_hole
from wmi.kinds import DEFAULT_SSIM_WINDOW, METRICS, SSIM_WINDOWS, SsimWindow
from wmi.masks import BUCKET_LABELS, hole_ratio_bucket
from wmi.registry import load

#: Hole-ratio buckets in report order.
BUCKETS = BUCKET_LABELS
#: The PSNR of a hole reproduced exactly (and the most any image gets), dB.
PSNR_CAP = 100.0
#: Pixels per strip of rows (1 Mi: ~100 MB of SSIM temporaries, whatever the image size).
STRIP_PIXELS = 1 << 20


class _Averages(TypedDict):
    images: int
    psnr_infinite: int
    metrics: dict[str, float]


class _Intervals(TypedDict, total=False):
    #: (several runs per method, :func:`wmi.eval.compare.combine_runs`) how many runs, and
    #: each metric's 95% interval of the mean over runs
    runs: int
    ci95: dict[str, list[float]]


class BucketResult(_Averages, _Intervals):
    """Averages over the images of one hole-ratio bucket."""

    range: str


class MethodResult(_Averages, _Intervals):
    """Averages over all images of one method, and per bucket."""

    name: str
    buckets: list[BucketResult]


class _Comparisons(TypedDict, total=False):
    #: (:func:`wmi.eval.compare.combine_runs`) the method the others are compared with, and
    #: one entry per method, metric and range
    baseline: str
    comparisons: list[dict[str, Any]]


class Results(_Comparisons):
    """What :func:`summarize_scores` returns and :mod:`wmi.eval.report` renders.

    ``psnr_infinite`` counts the images whose hole was reproduced exactly (their PSNR is
    infinite and counted as :data:`PSNR_CAP`).
    """

    ssim_window: str
    methods: list[MethodResult]


def dilate_hole_3x3(hole: np.ndarray) -> np.ndarray:
    """Dilate a hole by one pixel with a 3x3 square structuring element.

    Pixels outside the image count as not-hole, so the result has the input's shape.

    Args:
        hole: bool ``(H, W)``, True = hole.

    Returns:
        bool ``(H, W)``: True where the pixel or one of its 8 neighbours is a hole.
    """
    hole = np.asarray(hole, dtype=bool)
    if hole.ndim != 2:
        raise ValueError(f"expected a 2-D hole array, got shape {hole.shape}")
    padded = np.pad(hole, 1)
    h, w = hole.shape
    out = np.zeros_like(hole)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def _tv_sum(image: np.ndarray, region: np.ndarray, rows: int) -> float:
    """The summed differences of :func:`total_variation`: horizontal pairs in the first
    ``rows`` rows, vertical pairs between every two consecutive rows."""
    both_h = region[:rows, 1:] & region[:rows, :-1]
    both_v = region[1:, :] & region[:-1, :]
    dh = np.abs(image[:rows, 1:] - image[:rows, :-1])
    dv = np.abs(image[1:, :] - image[:-1, :])
    return float(
        np.einsum("ijc,ij->", dh, both_h.astype(np.float64))
        + np.einsum("ijc,ij->", dv, both_v.astype(np.float64))
    )


def total_variation(image: np.ndarray, region: np.ndarray) -> float:
    """The PConv loss's total-variation term restricted to ``region``.

    ``L_tv = (Σ_h |I(i, j+1) - I(i, j)| + Σ_v |I(i+1, j) - I(i, j)|) / (C·H·W)`` where the
    horizontal sum runs over pairs of horizontally adjacent pixels that are *both* in
    ``region`` and the vertical sum likewise; differences are summed over channels. The
    denominator is the size of the whole image, not of the region, as in the training loss.

    Args:
        image: float ``(H, W, C)`` (or ``(H, W)``, taken as C = 1).
        region: bool ``(H, W)``; for the metric, the hole dilated by one pixel
            (:func:`dilate_hole_3x3`).

    Returns:
        ``L_tv`` as a Python float (not yet multiplied by 100).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = image[..., None]
    region = np.asarray(region, dtype=bool)
    if image.ndim != 3 or region.shape != image.shape[:2]:
        raise ValueError(
            f"expected image (H, W, C) and region (H, W), got {image.shape} and {region.shape}"
        )
    h, w, c = image.shape
    return _tv_sum(image, region, h) / (c * h * w)


def _unit(image: np.ndarray) -> np.ndarray:
    """uint8 as float32 / 255 (bit for bit what :func:`wmi.io.read_image` gives); float as is."""
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image


@dataclass
class _Sums:
    """What the strips of one image add up: hole errors, TV pairs, SSIM map values."""

    values: int = 0
    abs_err: float = 0.0
    sq_err: float = 0.0
    tv: float = 0.0
    ssim: float = 0.0
    ssim_values: int = 0

    def add_errors(self, pred: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> None:
        diff = _unit(pred[hole]).astype(np.float64) - _unit(gt[hole]).astype(np.float64)
        self.values += diff.size
        self.abs_err += float(np.abs(diff).sum())
        self.sq_err += float(np.square(diff).sum())

    def add_ssim(self, comp: np.ndarray, gt: np.ndarray, window: SsimWindow) -> None:
        """SSIM map values of a strip, except the ``size // 2`` rows and columns at its edges."""
        from skimage.metrics import structural_similarity

        pad = window.size // 2
        kwargs = (
            {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
            if window.gaussian
            else {"win_size": window.size}
        )
        for c in range(gt.shape[2]):
            _, full = structural_similarity(
                comp[..., c], gt[..., c], data_range=1.0, full=True, **kwargs
            )
            kept = full[pad : full.shape[0] - pad, pad : full.shape[1] - pad]
            self.ssim += float(kept.sum(dtype=np.float64))
            self.ssim_values += kept.size

    @property
    def mse(self) -> float:
        return self.sq_err / self.values

    def results(self, shape: tuple[int, ...]) -> dict[str, float]:
        """The built-in metrics of an image of ``shape`` (SSIM NaN when it was not measured)."""
        mse = self.mse
        psnr = PSNR_CAP if mse == 0.0 else min(PSNR_CAP, -10.0 * math.log10(mse))
        return {
            "l1": 100.0 * self.abs_err / self.values,
            "l2": 100.0 * mse,
            "tv": 100.0 * self.tv / math.prod(shape),
            "ssim": self.ssim / self.ssim_values if self.ssim_values else math.nan,
            "psnr": psnr,
        }


def _strips(height: int, width: int) -> Iterator[tuple[int, int]]:
    """Row ranges ``[r0, r1)`` of about :data:`STRIP_PIXELS` pixels covering the image."""
    rows = max(1, STRIP_PIXELS // max(width, 1))
    for r0 in range(0, height, rows):
        yield r0, min(height, r0 + rows)


def _measure(
    pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, window: SsimWindow | None
) -> _Sums:
    """Every built-in metric's sums, strip by strip (no ``window``: all but SSIM)."""
    height, width = hole.shape
    pad = window.size // 2 if window else 2  # >= 2: what TV pairs and the dilation need
    sums = _Sums()
    for r0, r1 in _strips(height, width):
        lo, hi = max(r0 - pad, 0), min(r1 + pad, height)
        sums.add_errors(pred[r0:r1], gt[r0:r1], hole[r0:r1])
        gt_s, hole_s = _unit(gt[lo:hi]), hole[lo:hi]
        comp = composite(gt_s, hole_s, _unit(pred[lo:hi]))
        end = min(r1 + 1, height) - lo  # TV: this strip's rows and the next one's first
        region = dilate_hole_3x3(hole_s)[r0 - lo : end]
        sums.tv += _tv_sum(comp[r0 - lo : end].astype(np.float64), region, r1 - r0)
        c0, c1 = max(r0, pad), min(r1, height - pad)  # SSIM: rows `pad` from the border
        if window and not window.fn and c0 < c1:
            rows = slice(c0 - pad - lo, c1 + pad - lo)
            sums.add_ssim(comp[rows], gt_s[rows], window)
    if window and window.fn:
        # A whole-image SSIM (LaMa's counts the border): one composite in the images' own
        # dtype, the function strips its temporaries itself.
        sums.ssim = float(load(window.fn)(composite(gt, hole, pred), gt))
        sums.ssim_values = 1
    return sums


def _check(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, window: SsimWindow) -> None:
    """Raise :class:`WmiError` unless the arrays fit :func:`hole_metrics`'s contract."""
    if gt.ndim != 3 or gt.shape[2] != 3:
        raise WmiError(f"ground truth: expected an (H, W, 3) image, got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise WmiError(f"prediction is {pred.shape}, ground truth is {gt.shape}")
    if hole.shape != gt.shape[:2]:
        raise WmiError(f"hole is {hole.shape}, image is {gt.shape[:2]}")
    for name, image in (("prediction", pred), ("ground truth", gt)):
        if image.dtype == np.uint8:
            continue
        if not np.issubdtype(image.dtype, np.floating):
            raise WmiError(f"{name}: expected a float image in [0, 1], got {image.dtype}")
        if image.min() < 0.0 or image.max() > 1.0:
            raise WmiError(f"{name}: values outside [0, 1] ({image.min():g} to {image.max():g})")
    if not hole.any():
        raise WmiError("the hole is empty: hole metrics are undefined")
    side = window.size
    if min(gt.shape[:2]) < side:
        raise WmiError(
            f"image is {gt.shape[0]}x{gt.shape[1]}; SSIM's {window.name} window needs at "
            f"least {side}x{side}"
        )


def hole_l1(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · mean_Ω |pred - gt|`` (percent)."""
    return _measure(pred, gt, hole, None).results(gt.shape)["l1"]


def hole_l2(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · mean_Ω (pred - gt)²`` (percent)."""
    return _measure(pred, gt, hole, None).results(gt.shape)["l2"]


def hole_tv(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · L_tv`` of the composite on the hole dilated by one pixel."""
    return _measure(pred, gt, hole, None).results(gt.shape)["tv"]


def hole_psnr(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``min(10 · log10(1 / mean_Ω (pred - gt)²), 100)`` dB; 100 for an exact hole."""
    return _measure(pred, gt, hole, None).results(gt.shape)["psnr"]


def composite_ssim(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """SSIM (:data:`DEFAULT_SSIM_WINDOW`, ``data_range=1``, colour) of the composite and ``gt``.

    Computed in the images' own float type, as scikit-image does.
    """
    window = SSIM_WINDOWS[DEFAULT_SSIM_WINDOW]
    return _measure(pred, gt, hole, window).results(gt.shape)["ssim"]


#: The registry functions above (reference -> key): :func:`hole_metrics` computes them in one
#: pass over the strips instead of one pass each.
_BUILT_IN = {
    "wmi.eval.metrics:hole_l1": "l1",
    "wmi.eval.metrics:hole_l2": "l2",
    "wmi.eval.metrics:hole_tv": "tv",
    "wmi.eval.metrics:composite_ssim": "ssim",
    "wmi.eval.metrics:hole_psnr": "psnr",
}


def hole_metrics(
    pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, *, ssim_window: str = DEFAULT_SSIM_WINDOW
) -> dict[str, float]:
    """Table I metrics of one prediction.

    Args:
        pred: ``(H, W, 3)`` float in [0, 1] or uint8, the network output (only its hole
            pixels count).
        gt: the ground truth, likewise.
        hole: bool ``(H, W)``, True = hole; must contain at least one hole pixel.
        ssim_window: a name of :data:`wmi.kinds.SSIM_WINDOWS`.

    Returns:
        ``{key: value}`` for every metric of :data:`wmi.kinds.METRICS`, in its order (``l1``,
        ``l2``, ``tv``, ``ssim``, ``psnr``, then any registered), as Python floats; ``psnr``
        is :data:`PSNR_CAP` when the hole pixels of ``pred`` equal ``gt`` exactly.

    Raises:
        WmiError: shapes disagree, an image is not float in [0, 1] (or uint8), the hole is
            empty, or the image is smaller than the SSIM window.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    hole = np.asarray(hole, dtype=bool)
    window = SSIM_WINDOWS[ssim_window]
    _check(pred, gt, hole, window)
    return _with_registered(_measure(pred, gt, hole, window).results(gt.shape), pred, gt, hole)


@dataclass
class ImageScore:
    """The metrics of every method on one image.

    Attributes:
        name: the ground-truth file name (the mask's, for one of several masks of an image).
        hole_ratio: fraction of hole pixels in [0, 1].
        metrics: method name -> :func:`hole_metrics` result; empty when ``skipped``.
        skipped: why the image was left out (``""`` when it was scored).
        unreadable: one message per file of this image (ground truth, mask or a prediction)
            that could not be used: unreadable, or a prediction of another size than its
            ground truth. When any, the image is skipped for every method.
        exact: the methods that reproduced the hole exactly (PSNR counted as :data:`PSNR_CAP`).
        mask_resized: the mask had another size than the ground truth and was resized to it
            (nearest neighbour), as ``wmi inpaint`` does.
        paths: the files that were scored: ``"gt"``, ``"mask"`` and each method's name.
    """

    name: str
    hole_ratio: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: str = ""
    unreadable: list[str] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)
    mask_resized: bool = False
    paths: dict[str, Path] = field(default_factory=dict)


def _read_all(
    gt_path: Path, mask_path: Path, preds: Sequence[tuple[str, Path]], score: ImageScore
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Ground truth and hole, or None each when unreadable (named in ``score.unreadable``).

    When either is unreadable the predictions are opened too, so that every broken file of
    the image is named at once.
    """
    from wmi.io import read_image, read_image_compact, read_mask

    gt = hole = None
    try:
        gt = read_image_compact(gt_path)
    except WmiError as exc:
        score.unreadable.append(str(exc))
    try:
        hole = read_mask(mask_path)
    except WmiError as exc:
        score.unreadable.append(str(exc))
    if gt is None or hole is None:
        for _, pred_path in preds:
            try:
                read_image(pred_path)
            except WmiError as exc:
                score.unreadable.append(str(exc))
        return None, None
    if hole.shape != gt.shape[:2]:
        hole = resize_hole(hole, gt.shape[0], gt.shape[1])
        score.mask_resized = True
    return gt, hole


def score_files(
    gt_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    preds: Sequence[tuple[str, str | os.PathLike[str]]],
    *,
    ssim_window: str = DEFAULT_SSIM_WINDOW,
    name: str = "",
) -> ImageScore:
    """Read one ground truth, its mask and each method's prediction, and score them.

    A file that cannot be used does not raise: the image is skipped for every method (so that
    all methods are averaged over the same images) and each such file is named, with the
    reason, in ``unreadable``. That is a file :func:`wmi.io.read_image` or
    :func:`wmi.io.read_mask` cannot read, or a prediction of another size than its ground
    truth. A mask of another size is resized to the ground truth's (nearest neighbour) and
    ``mask_resized`` says so. 8-bit images are held as uint8 and measured in strips
    (:func:`hole_metrics`), so an image costs little more memory than its pixels.

    Args:
        gt_path, mask_path: the ground-truth image and its mask file (white = hole).
        preds: ``(method name, prediction file)`` pairs.
        ssim_window: a name of :data:`wmi.kinds.SSIM_WINDOWS`.
        name: what reports call the image (default: the ground truth's file name).

    Returns:
        The scores, or an :class:`ImageScore` with ``skipped`` set when the mask has no hole
        or a file cannot be used (then with ``unreadable`` set and ``metrics`` empty).

    Raises:
        WmiError: the image is smaller than the SSIM window.
    """
    from wmi.io import read_image_compact

    gt_path, mask_path = Path(gt_path), Path(mask_path)
    preds = [(method, Path(path)) for method, path in preds]
    score = ImageScore(name or gt_path.name, 0.0, paths={"gt": gt_path, "mask": mask_path})
    gt, hole = _read_all(gt_path, mask_path, preds, score)
    if gt is None or hole is None:
        score.skipped = "unreadable file"
        return score
    score.hole_ratio = np.count_nonzero(hole) / hole.size
    if not score.hole_ratio:
        score.skipped = "mask has no hole"
        return score
    window = SSIM_WINDOWS[ssim_window]
    size = f"{gt.shape[1]}x{gt.shape[0]}"
    if min(gt.shape[:2]) < window.size:
        raise WmiError(
            f"{gt_path}: image is {size}; SSIM's {window.name} window needs at least "
            f"{window.size}x{window.size}"
        )
    for method, pred_path in preds:
        score.paths[method] = pred_path
        try:
            pred = read_image_compact(pred_path)
        except WmiError as exc:
            score.unreadable.append(str(exc))
            continue
        if pred.shape != gt.shape:
            score.unreadable.append(
                f"{pred_path}: prediction is {pred.shape[1]}x{pred.shape[0]}, its ground "
                f"truth {gt_path} is {size}"
            )
        elif not score.unreadable:  # once one is unusable, the others are only checked
            sums = _measure(pred, gt, hole, window)
            score.metrics[method] = _with_registered(sums.results(gt.shape), pred, gt, hole)
            if sums.sq_err == 0.0:
                score.exact.append(method)
        del pred
    if score.unreadable:
        score.metrics, score.exact = {}, []
        score.skipped = "unreadable file"
    return score


def _with_registered(
    built_in: dict[str, float], pred: np.ndarray, gt: np.ndarray, hole: np.ndarray
) -> dict[str, float]:
    """Every metric of :data:`wmi.kinds.METRICS` in its order; the built-in ones from
    ``built_in``, others computed on float copies of the images."""
    out: dict[str, float] = {}
    comp = None
    for metric in METRICS.entries():
        if isinstance(metric.fn, str) and metric.fn in _BUILT_IN:
            out[metric.name] = built_in[_BUILT_IN[metric.fn]]
            continue
        if comp is None:
            comp = composite(_unit(gt), hole, _unit(pred))
        out[metric.name] = float(load(metric.fn)(_unit(pred), _unit(gt), hole, comp))
    return out


def _mean(values: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([v[key] for v in values])) for key in values[0]}


def _block(scores: Sequence[ImageScore], method: str) -> _Averages:
    """Image count, exact holes and mean metrics of ``method`` over ``scores``."""
    return {
        "images": len(scores),
        "psnr_infinite": sum(method in s.exact for s in scores),
        "metrics": _mean([s.metrics[method] for s in scores]),
    }


def summarize_scores(
    scores: Iterable[ImageScore],
    methods: Sequence[str],
    buckets: bool = True,
    ssim_window: str = DEFAULT_SSIM_WINDOW,
) -> Results:
    """Average per-image metrics over images, per method and per hole-ratio bucket.

    Images are sorted by name first, so the result does not depend on the order in which
    parallel workers finished. Every mean is finite: an exact hole's PSNR counts as
    :data:`PSNR_CAP`, and ``psnr_infinite`` says how many images had one.

    Args:
        scores: per-image results; skipped ones are ignored.
        methods: method names in column order.
        buckets: also average per hole-ratio bucket (only buckets that have images).
        ssim_window: the window the scores were computed with (recorded in the results).

    Returns:
        The results structure of the JSON report (see :mod:`wmi.eval.report`).

    Raises:
        WmiError: a method has no scored image.
    """
    scored = sorted((s for s in scores if not s.skipped), key=lambda s: s.name)
    out: Results = {"ssim_window": ssim_window, "methods": []}
    for method in methods:
        rows = [s for s in scored if method in s.metrics]
        if not rows:
            raise WmiError(f"method {method!r}: no image with a hole was scored")

        grouped: dict[str, list[ImageScore]] = {}
        for score in rows if buckets else []:
            grouped.setdefault(hole_ratio_bucket(score.hole_ratio), []).append(score)
        bucket_rows: list[BucketResult] = [
            {"range": b, **_block(grouped[b], method)} for b in BUCKETS if b in grouped
        ]
        out["methods"].append({"name": method, **_block(rows, method), "buckets": bucket_rows})
    return out
