"""The paper's Table I metrics over the hole region, and their averages over images.

All functions take images as float arrays ``(H, W, 3)`` with values in [0, 1] and a boolean
``hole`` array ``(H, W)`` where True marks a hole pixel. The definitions are written out in
``docs/metrics.md``; in short, for the hole pixels ``Ω`` (all channels):

* ``l1 = 100 · mean_Ω |pred - gt|``, ``l2 = 100 · mean_Ω (pred - gt)²`` (percent);
* ``psnr = 10 · log10(1 / mean_Ω (pred - gt)²)`` dB, ``+inf`` when the hole is reproduced
  exactly;
* ``ssim``: scikit-image's ``structural_similarity`` with its defaults (``data_range=1``,
  colour) between the composite (hole from ``pred``, the rest from ``gt``) and ``gt``;
* ``tv = 100 · L_tv(composite)``, the total-variation term of the PConv training loss on the
  hole dilated by one pixel (:func:`total_variation`).

Which metrics exist, their labels and directions is :data:`wmi.kinds.METRICS`: each entry names
its function here (``fn(pred, gt, hole, comp) -> float``), and :func:`hole_metrics`, the reports
and ``wmi eval`` read that table. docs/metrics.md has the recipe for adding one.
:func:`score_folders` scores whole folders (``wmi eval``).
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np

from wmi.errors import WmiError
from wmi.inference import Notify, Progress, composite
from wmi.io import PairedImage, format_names
from wmi.kinds import METRICS
from wmi.masks import BUCKET_LABELS, hole_ratio_bucket
from wmi.registry import load

#: Hole-ratio buckets in report order.
BUCKETS = BUCKET_LABELS
#: scikit-image's default SSIM window is 7x7, so smaller images have no SSIM.
MIN_SIDE = 7


class BucketResult(TypedDict):
    """Averages over the images of one hole-ratio bucket."""

    range: str
    images: int
    psnr_infinite: int
    metrics: dict[str, float]


class MethodResult(TypedDict):
    """Averages over all images of one method, and per bucket."""

    name: str
    images: int
    psnr_infinite: int
    metrics: dict[str, float]
    buckets: list[BucketResult]


class Results(TypedDict):
    """What :func:`summarize_scores` returns and :mod:`wmi.report` renders."""

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
    both_h = (region[:, 1:] & region[:, :-1]).astype(np.float64)
    both_v = (region[1:, :] & region[:-1, :]).astype(np.float64)
    dh = np.abs(image[:, 1:] - image[:, :-1])
    dv = np.abs(image[1:, :] - image[:-1, :])
    total = np.einsum("ijc,ij->", dh, both_h) + np.einsum("ijc,ij->", dv, both_v)
    return float(total / (c * h * w))


def _hole_diff(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``pred - gt`` over the hole pixels in float64, ``(n_hole, 3)``."""
    return pred[hole].astype(np.float64) - gt[hole].astype(np.float64)


def hole_l1(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · mean_Ω |pred - gt|`` (percent)."""
    return 100.0 * float(np.mean(np.abs(_hole_diff(pred, gt, hole))))


def hole_l2(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · mean_Ω (pred - gt)²`` (percent)."""
    return 100.0 * float(np.mean(_hole_diff(pred, gt, hole) ** 2))


def hole_tv(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``100 · L_tv`` of the composite on the hole dilated by one pixel."""
    return 100.0 * total_variation(comp, dilate_hole_3x3(hole))


def composite_ssim(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """scikit-image's SSIM (defaults, ``data_range=1``, colour) of the composite and ``gt``.

    Computed in the images' own float type, as scikit-image does.
    """
    from skimage.metrics import structural_similarity

    return float(structural_similarity(comp, gt, data_range=1.0, channel_axis=2))


def hole_psnr(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    """``10 · log10(1 / mean_Ω (pred - gt)²)`` dB; ``math.inf`` for an exact hole."""
    mse = float(np.mean(_hole_diff(pred, gt, hole) ** 2))
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)


def hole_metrics(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """Table I metrics of one prediction.

    Args:
        pred: float ``(H, W, 3)`` in [0, 1], the network output (only its hole pixels count).
        gt: float ``(H, W, 3)`` in [0, 1], the ground truth.
        hole: bool ``(H, W)``, True = hole; must contain at least one hole pixel.

    Returns:
        ``{key: value}`` for every metric of :data:`wmi.kinds.METRICS`, in its order (``l1``,
        ``l2``, ``tv``, ``ssim``, ``psnr``, then any registered), as Python floats; ``psnr``
        is ``math.inf`` when the hole pixels of ``pred`` equal ``gt`` exactly.

    Raises:
        WmiError: shapes disagree, an image is not float in [0, 1], the hole is empty, or
            the image is smaller than 7x7 (scikit-image's SSIM window).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    hole = np.asarray(hole, dtype=bool)
    if gt.ndim != 3 or gt.shape[2] != 3:
        raise WmiError(f"ground truth: expected an (H, W, 3) image, got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise WmiError(f"prediction is {pred.shape}, ground truth is {gt.shape}")
    if hole.shape != gt.shape[:2]:
        raise WmiError(f"hole is {hole.shape}, image is {gt.shape[:2]}")
    for name, image in (("prediction", pred), ("ground truth", gt)):
        if not np.issubdtype(image.dtype, np.floating):
            raise WmiError(f"{name}: expected a float image in [0, 1], got {image.dtype}")
        if image.min() < 0.0 or image.max() > 1.0:
            raise WmiError(f"{name}: values outside [0, 1] ({image.min():g} to {image.max():g})")
    if not hole.any():
        raise WmiError("the hole is empty: hole metrics are undefined")
    if min(gt.shape[:2]) < MIN_SIDE:
        raise WmiError(
            f"image is {gt.shape[0]}x{gt.shape[1]}; SSIM needs at least {MIN_SIDE}x{MIN_SIDE}"
        )
    comp = composite(gt, hole, pred)
    return {m.name: float(load(m.fn)(pred, gt, hole, comp)) for m in METRICS.entries()}


@dataclass
class ImageScore:
    """The metrics of every method on one image.

    Attributes:
        name: the ground-truth file name.
        hole_ratio: fraction of hole pixels in [0, 1].
        metrics: method name -> :func:`hole_metrics` result; empty when ``skipped``.
        skipped: why the image was left out (``""`` when it was scored).
        unreadable: one message per file of this image (ground truth, mask or a prediction)
            that could not be read; when any, the image is skipped for every method.
    """

    name: str
    hole_ratio: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: str = ""
    unreadable: list[str] = field(default_factory=list)


def score_files(
    gt_path: str | os.PathLike[str],
    mask_path: str | os.PathLike[str],
    preds: Sequence[tuple[str, str | os.PathLike[str]]],
) -> ImageScore:
    """Read one ground truth, its mask and each method's prediction, and score them.

    A file that cannot be read (any :class:`~wmi.errors.WmiError` of
    :func:`wmi.io.read_image` or :func:`wmi.io.read_mask`) does not raise: the image is
    skipped for every method (so that all methods are averaged over the same images) and each
    such file is named, with the reason, in ``unreadable``. Predictions are still opened when
    the ground truth or the mask is unreadable, so that all broken files of the image are
    named at once.

    Args:
        gt_path, mask_path: the ground-truth image and its mask file (white = hole).
        preds: ``(method name, prediction file)`` pairs.

    Returns:
        The scores, or an :class:`ImageScore` with ``skipped`` set when the mask has no hole
        or a file is unreadable (then with ``unreadable`` set and ``metrics`` empty).

    Raises:
        WmiError: a mask or prediction has another size than the ground truth (the message
            names both files and sizes), or the image is smaller than SSIM's window.
    """
    from wmi.io import read_image, read_mask

    gt_path, mask_path = Path(gt_path), Path(mask_path)
    unreadable: list[str] = []
    gt = hole = None
    try:
        gt = read_image(gt_path)
    except WmiError as exc:
        unreadable.append(str(exc))
    try:
        hole = read_mask(mask_path)
    except WmiError as exc:
        unreadable.append(str(exc))
    if gt is None or hole is None:
        for _, pred_path in preds:
            try:
                read_image(pred_path)
            except WmiError as exc:
                unreadable.append(str(exc))
        return ImageScore(
            gt_path.name,
            float(hole.mean()) if hole is not None else 0.0,
            skipped="unreadable file",
            unreadable=unreadable,
        )
    size = f"{gt.shape[1]}x{gt.shape[0]}"
    if hole.shape != gt.shape[:2]:
        raise WmiError(
            f"{mask_path}: mask is {hole.shape[1]}x{hole.shape[0]}, its ground truth "
            f"{gt_path} is {size}"
        )
    score = ImageScore(gt_path.name, float(hole.mean()))
    if not hole.any():
        score.skipped = "mask has no hole"
        return score
    if min(gt.shape[:2]) < MIN_SIDE:
        raise WmiError(f"{gt_path}: image is {size}; SSIM needs at least {MIN_SIDE}x{MIN_SIDE}")
    for name, pred_path in preds:
        try:
            pred = read_image(pred_path)
        except WmiError as exc:
            score.unreadable.append(str(exc))
            continue
        if pred.shape != gt.shape:
            raise WmiError(
                f"{pred_path}: prediction is {pred.shape[1]}x{pred.shape[0]}, its ground "
                f"truth {gt_path} is {size}"
            )
        if not score.unreadable:  # once one is unreadable, the others are only checked
            score.metrics[name] = hole_metrics(pred, gt, hole)
    if score.unreadable:
        score.metrics = {}
        score.skipped = "unreadable file"
    return score


def _mean(values: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([v[key] for v in values])) for key in values[0]}


def _count_inf(values: Sequence[dict[str, float]]) -> int:
    return sum(math.isinf(v.get("psnr", 0.0)) for v in values)


def summarize_scores(
    scores: Iterable[ImageScore], methods: Sequence[str], buckets: bool = True
) -> Results:
    """Average per-image metrics over images, per method and per hole-ratio bucket.

    Images are sorted by name first, so the result does not depend on the order in which
    parallel workers finished. One image with an infinite PSNR makes the average PSNR
    infinite; ``psnr_infinite`` counts such images.

    Args:
        scores: per-image results; skipped ones are ignored.
        methods: method names in column order.
        buckets: also average per hole-ratio bucket (only buckets that have images).

    Returns:
        The results structure of the JSON report (see :mod:`wmi.report`).

    Raises:
        WmiError: a method has no scored image.
    """
    scored = sorted((s for s in scores if not s.skipped), key=lambda s: s.name)
    out: Results = {"methods": []}
    for method in methods:
        rows = [(s.hole_ratio, s.metrics[method]) for s in scored if method in s.metrics]
        values = [m for _, m in rows]
        if not values:
            raise WmiError(f"method {method!r}: no image with a hole was scored")
        bucket_rows: list[BucketResult] = []
        if buckets:
            grouped: dict[str, list[dict[str, float]]] = {}
            for ratio, m in rows:
                grouped.setdefault(hole_ratio_bucket(ratio), []).append(m)
            bucket_rows = [
                {
                    "range": b,
                    "images": len(grouped[b]),
                    "psnr_infinite": _count_inf(grouped[b]),
                    "metrics": _mean(grouped[b]),
                }
                for b in BUCKETS
                if b in grouped
            ]
        out["methods"].append(
            {
                "name": method,
                "images": len(values),
                "psnr_infinite": _count_inf(values),
                "metrics": _mean(values),
                "buckets": bucket_rows,
            }
        )
    return out


# ------------------------------------------------------------------------------ folders


def _has(n: int, noun: str) -> str:
    """``1 mask has``, ``2 masks have``."""
    return f"1 {noun} has" if n == 1 else f"{n} {noun}s have"


def _quiet(level: str, message: str) -> None:
    """The default ``notify``: say nothing (the result carries what matters)."""


def _pair_for_scoring(
    gt_dir: Path, mask_dir: Path, preds: Mapping[str, Path], strict: bool, notify: Notify
) -> list[PairedImage]:
    """Ground truths that have a mask and a prediction from every method; others are named."""
    from wmi.io import DEFAULT_MASK_PATTERNS, pair_folders

    pairing = pair_folders(gt_dir, mask_dir, preds)
    found: list[tuple[str, list[Path]]] = [
        (f"{_has(len(pairing.images_without_mask), 'ground truth')} no mask in {mask_dir}",
         pairing.images_without_mask),
        (f"{_has(len(pairing.masks_without_image), 'mask')} no ground truth in {gt_dir}",
         pairing.masks_without_image),
    ]  # fmt: skip
    for name, folder in preds.items():
        missing, stray = pairing.missing_predictions[name], pairing.stray_predictions[name]
        found += [
            (f"{_has(len(missing), 'ground truth')} no prediction in {folder} ({name})", missing),
            (
                f"{_has(len(stray), 'prediction')} no ground truth with a mask, in {folder} "
                f"({name})",
                stray,
            ),
        ]
    problems = [message for message, paths in found if paths]
    for message, paths in found:
        if paths:
            notify("warning", f"{message}: {format_names(paths)}")
    if not pairing.complete:
        folders = ", ".join(str(folder) for folder in preds.values())
        raise WmiError(
            f"nothing to evaluate: no image in {gt_dir} has a mask in {mask_dir} (looked for "
            f"{' or '.join(DEFAULT_MASK_PATTERNS)}) and a prediction named {{stem}}.<image "
            f"extension> in each of {folders}"
        )
    if strict and problems:
        raise WmiError(f"--strict: {'; '.join(problems)}")
    if problems:
        count = len(pairing.complete)
        notify("warning", f"evaluating the {count} images that have every counterpart")
    return pairing.complete


def _score_all(
    jobs: Sequence[PairedImage], workers: int, progress: Progress | None
) -> list[ImageScore]:
    """Score every image, in a thread pool when ``workers`` > 1."""

    def score(job: PairedImage) -> ImageScore:
        return score_files(job.image, job.mask, list(job.predictions.items()))

    report = progress or (lambda done, total: None)
    report(0, len(jobs))
    if workers == 1:
        scores = []
        for job in jobs:
            scores.append(score(job))
            report(len(scores), len(jobs))
        return scores
    scores = []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(score, job) for job in jobs]
        try:
            for future in as_completed(futures):
                scores.append(future.result())
                report(len(scores), len(jobs))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return scores


def _keep_freed_memory() -> None:
    """Stop glibc from giving freed image-sized arrays back to the OS after every image.

    By default it unmaps or trims them and the next image faults the pages in again: for 1,000
    images at 256² that was 3.5 million page faults and a third of the run time
    (docs/benchmarks.md). Not glibc: nothing to do.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks up to 32 MiB come from the heap
    mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD: keep up to 128 MiB of free heap


@dataclass
class FolderScores:
    """What :func:`score_folders` returns.

    Attributes:
        results: the Table I averages (:func:`summarize_scores`), what the reports render.
        scores: one :class:`ImageScore` per paired image, in completion order.
        unreadable: the scores of images with a file that could not be read, by name; they
            are in no average.
        no_hole: names of the images whose mask has no hole (in no average).
        seconds: time spent scoring.
    """

    results: Results
    scores: list[ImageScore]
    unreadable: list[ImageScore]
    no_hole: list[str]
    seconds: float


def score_folders(
    gt_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    preds: Mapping[str, str | os.PathLike[str]],
    *,
    buckets: bool = True,
    workers: int = 0,
    strict: bool = False,
    progress: Progress | None = None,
    notify: Notify | None = None,
) -> FolderScores:
    """Table I metrics of one or more folders of predictions (``wmi eval``).

    Files pair by stem (:func:`wmi.io.pair_folders`); every method is scored on the same
    images: those with a mask and a prediction from every method. Unmatched files are named
    through ``notify("warning", ...)``; an unreadable file through ``notify("error", ...)``,
    and its image is left out for every method.

    Args:
        gt_dir: ground-truth images; mask_dir: their masks (may be ``gt_dir``, LaMa layout).
        preds: method name -> folder of its predictions, in report column order.
        buckets: also average per hole-ratio bucket.
        workers: parallel image workers; 0 = one per CPU core.
        strict: any unmatched file is an error before scoring.
        progress: ``progress(done, total)``; notify: ``notify(level, message)``.

    Raises:
        WmiError: nothing pairs, (``strict``) something is unmatched, a size mismatch, or no
            image could be scored at all.
    """
    gt_dir, mask_dir = Path(gt_dir), Path(mask_dir)
    preds = {name: Path(folder) for name, folder in preds.items()}
    notify = notify or _quiet
    jobs = _pair_for_scoring(gt_dir, mask_dir, preds, strict, notify)
    _keep_freed_memory()
    start = time.perf_counter()
    scores = _score_all(jobs, workers or os.cpu_count() or 1, progress)
    seconds = time.perf_counter() - start
    broken = sorted((s for s in scores if s.unreadable), key=lambda s: s.name)
    scored = f"{len(jobs) - len(broken)} of {len(jobs)}" if broken else f"{len(jobs)}"
    notify(
        "info",
        f"scored {scored} images x {len(preds)} method{'s' * (len(preds) > 1)} in "
        f"{seconds:.1f} s ({len(jobs) / seconds:.1f} images/s)",
    )
    for score in broken:
        for message in score.unreadable:
            notify("error", f"{message} ({score.name} left out for every method)")
    empty = sorted(s.name for s in scores if s.skipped and not s.unreadable)
    if empty:
        notify(
            "warning",
            f"{_has(len(empty), 'mask')} no hole, left out of the hole metrics: "
            f"{format_names(empty)}",
        )
    if len(empty) + len(broken) == len(scores):
        if not broken:
            raise WmiError(f"{mask_dir}: no mask of the {len(scores)} paired images has a hole")
        raise WmiError(
            f"nothing could be scored: {_has(len(broken), 'paired image')} a file that could "
            "not be read (named above)"
            + (f" and {_has(len(empty), 'mask')} no hole" if empty else "")
        )
    results = summarize_scores(scores, list(preds), buckets=buckets)
    return FolderScores(results, scores, broken, empty, seconds)
