"""Whole folders scored the way ``wmi eval`` does: pairing, workers, messages, averages.

:func:`score_folders` is ``wmi eval`` without the printing: it pairs the files
(:func:`wmi.io.pair_folders`, one row per mask), scores each image with
:func:`wmi.eval.metrics.score_files` in threads, names every file it leaves out through ``notify``
and averages with :func:`wmi.eval.metrics.summarize_scores`.
"""

from __future__ import annotations

import copy
import ctypes
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wmi.errors import WmiError
from wmi.eval.compare import check_baseline, combine_runs, run_keys
from wmi.eval.metrics import DEFAULT_SSIM_WINDOW, ImageScore, Results, score_files, summarize_scores
from wmi.io import PairedImage, format_names
from wmi.kinds import DEFAULT_RESAMPLES
from wmi.procs import Shard
from wmi.progress import Notify, Progress

if TYPE_CHECKING:
    from wmi.eval.perceptual import PerceptualNets


def _has(n: int, noun: str) -> str:
    """``1 mask has``, ``2 masks have``."""
    return f"1 {noun} has" if n == 1 else f"{n} {noun}s have"


def _quiet(level: str, message: str) -> None:
    """The default ``notify``: say nothing (the result carries what matters)."""


def _pair_for_scoring(
    gt_dir: Path,
    mask_dir: Path,
    preds: Mapping[str, Path],
    strict: bool,
    notify: Notify,
    shard: Shard,
) -> list[PairedImage]:
    """Ground truths of ``shard`` that have a mask and a prediction from every method; the
    shard's others are named (so a shard does not name files that other shards are writing)."""
    from wmi.io import DEFAULT_MASK_PATTERNS, pair_folders

    pairing = pair_folders(gt_dir, mask_dir, preds, every_mask=True)

    def mine(paths: list[Path]) -> list[Path]:
        return shard.take(paths, lambda path: path.stem)

    without_mask, without_image = (
        mine(pairing.images_without_mask),
        mine(pairing.masks_without_image),
    )
    found: list[tuple[str, list[Path]]] = [
        (f"{_has(len(without_mask), 'ground truth')} no mask in {mask_dir}", without_mask),
        (f"{_has(len(without_image), 'mask')} no ground truth in {gt_dir}", without_image),
    ]
    for name, folder in preds.items():
        missing = mine(pairing.missing_predictions[name])
        stray = mine(pairing.stray_predictions[name])
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
    complete = shard.take(pairing.complete, lambda paired: paired.image.stem)
    if strict and problems:
        raise WmiError(f"--strict: {'; '.join(problems)}")
    if problems:
        notify("warning", f"evaluating the {len(complete)} images that have every counterpart")
    return complete


def _score_all(
    jobs: Sequence[PairedImage], workers: int, ssim_window: str, progress: Progress | None
) -> list[ImageScore]:
    """Score every image, in a thread pool when ``workers`` > 1."""

    def score(job: PairedImage) -> ImageScore:
        return score_files(
            job.image,
            job.mask,
            list(job.predictions.items()),
            ssim_window=ssim_window,
            name=job.name,
        )

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
        results: the Table I averages (:func:`wmi.eval.metrics.summarize_scores`) with each
            method's runs folded in and the comparisons
            (:func:`wmi.eval.compare.combine_runs`), what the reports render.
        scores: one :class:`~wmi.eval.metrics.ImageScore` per paired image (per mask, for an
            image with several), in completion order, keyed by method name (a method's
            metrics are the mean over its runs).
        unreadable: the scores of images with a file that could not be used (unreadable, or
            a prediction of the wrong size), by name; they are in no average.
        no_hole: names of the images whose mask has no hole (in no average).
        seconds: time spent scoring.
        fid_rows: the names of the images whose FID features are ``fid_features``' rows.
        fid_features: ``"gt"`` and each run -> FID features ``(images, 2048)`` float64;
            empty without FID. What :mod:`wmi.eval.parts` keeps so that shards merge exactly.
        run_scores: ``scores`` before the runs were folded: keyed by run
            (:func:`wmi.eval.compare.run_keys`), what a part keeps so that a merge computes the
            intervals over runs as an unsharded run does.
        runs: method name -> its run keys, in report order.
    """

    results: Results
    scores: list[ImageScore]
    unreadable: list[ImageScore]
    no_hole: list[str]
    seconds: float
    fid_rows: list[str] = field(default_factory=list)
    fid_features: dict[str, np.ndarray] = field(default_factory=dict)
    run_scores: list[ImageScore] = field(default_factory=list)
    runs: dict[str, list[str]] = field(default_factory=dict)


def _tell(
    scores: Sequence[ImageScore], jobs: int, methods: int, seconds: float, notify: Notify
) -> None:
    """The run's messages: the count and speed, each unusable file, each empty mask, the
    resized masks."""
    broken = sorted((s for s in scores if s.unreadable), key=lambda s: s.name)
    scored = f"{jobs - len(broken)} of {jobs}" if broken else f"{jobs}"
    notify(
        "info",
        f"scored {scored} images x {methods} method{'s' * (methods > 1)} in "
        f"{seconds:.1f} s ({jobs / max(seconds, 1e-9):.1f} images/s)",
    )
    for score in broken:
        for message in score.unreadable:
            notify("error", f"{message} ({score.name} left out for every method)")
    for score in sorted(scores, key=lambda s: s.name):
        if score.skipped and not score.unreadable:
            notify(
                "warning",
                f"{score.paths['mask']}: the mask selects nothing (no pixel above 127); "
                f"{score.name} is left out of the hole metrics",
            )
    resized = sorted(s.paths["mask"] for s in scores if s.mask_resized)
    if resized:
        n = len(resized)
        notify(
            "warning",
            f"{n} mask{'s' * (n > 1)} had another size than {'their' if n > 1 else 'its'} "
            f"ground truth and {'were' if n > 1 else 'was'} resized to it (nearest neighbour, "
            f"as wmi inpaint does): {format_names(resized)}",
        )


def score_folders(
    gt_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    preds: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    *,
    buckets: bool = True,
    workers: int = 0,
    strict: bool = False,
    ssim_window: str = DEFAULT_SSIM_WINDOW,
    perceptual: PerceptualNets | None = None,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    progress: Progress | None = None,
    notify: Notify | None = None,
    shard: Shard | None = None,
) -> FolderScores:
    """Table I metrics of one or more folders of predictions (``wmi eval``), with intervals.

    Files pair by stem (:func:`wmi.io.pair_folders` with ``every_mask``: an image with
    several masks gives one row per mask, LaMa's layout); every method is scored on the same
    images: those with a mask and a prediction from every method (every run of it). A method
    with several folders (runs, e.g. training seeds) is scored per run under the name
    ``NAME run i`` (what the messages say) and folded into one row by
    :func:`wmi.eval.compare.combine_runs`: mean over runs, 95% t interval, and every method's
    paired difference to ``baseline`` with a bootstrap interval. Unmatched files are named
    through ``notify("warning", ...)``, as is each mask that selects nothing; a file that
    cannot be used (unreadable, or a prediction of another size) through
    ``notify("error", ...)``, and its image is left out for every method. Masks of another
    size than their ground truth are resized (nearest neighbour), said once per run.

    Args:
        gt_dir: ground-truth images; mask_dir: their masks (may be ``gt_dir``, LaMa layout).
        preds: method name -> folder of its predictions, or a sequence of folders (one per
            run), in report column order.
        buckets: also average per hole-ratio bucket.
        workers: parallel image workers; 0 = one per CPU core.
        strict: any unmatched file is an error before scoring.
        ssim_window: a name of :data:`wmi.kinds.SSIM_WINDOWS`.
        perceptual: the LPIPS and FID networks (:meth:`wmi.eval.perceptual.PerceptualNets.load`);
            each runs once per scored image, in batches, after the Table I metrics: ``lpips``
            joins every image's metrics (and so the means), ``fid`` each method's and each
            bucket's metrics. None: neither.
        baseline: the method the others are compared with (default: the first).
        resamples: bootstrap resamples of each comparison; 0: no comparisons.
        seed: the bootstrap's seed.
        progress: ``progress(done, total)``; notify: ``notify(level, message)``.
        shard: score only the paired images of this shard (:class:`wmi.procs.Shard`, by the
            ground truth's stem); a shard may then hold no image to score, and its results
            no method (:mod:`wmi.eval.parts` merges the shards).

    Raises:
        WmiError: ``baseline`` is not a method, nothing pairs, (``strict``) something is
            unmatched, two predictions of one image, an image smaller than the SSIM window, or
            no image could be scored at all (in an unsharded run).
    """
    gt_dir, mask_dir = Path(gt_dir), Path(mask_dir)
    runs = {
        name: [Path(f)] if isinstance(f, str | os.PathLike) else [Path(x) for x in f]
        for name, f in preds.items()
    }
    keys = run_keys(runs)
    baseline = check_baseline(keys, baseline)  # before the long part
    preds = {
        key: folder for name in runs for key, folder in zip(keys[name], runs[name], strict=True)
    }
    notify = notify or _quiet
    shard = shard or Shard()
    jobs = _pair_for_scoring(gt_dir, mask_dir, preds, strict, notify, shard)
    _keep_freed_memory()
    start = time.perf_counter()
    scores = _score_all(jobs, workers or os.cpu_count() or 1, ssim_window, progress)
    seconds = time.perf_counter() - start
    _tell(scores, len(jobs), len(preds), seconds, notify)
    broken = sorted((s for s in scores if s.unreadable), key=lambda s: s.name)
    empty = sorted(s.name for s in scores if s.skipped and not s.unreadable)
    if not shard.whole and len(empty) + len(broken) == len(scores):
        # nothing to average in this shard: its images (if any) still go to the merge
        no_methods: Results = {"ssim_window": ssim_window, "methods": []}
        return FolderScores(no_methods, scores, broken, empty, seconds)
    if len(empty) + len(broken) == len(scores):
        if not broken:
            raise WmiError(f"{mask_dir}: no mask of the {len(scores)} paired images has a hole")
        raise WmiError(
            f"nothing could be scored: {_has(len(broken), 'paired image')} a file that could "
            "not be used (named above)"
            + (f" and {_has(len(empty), 'mask')} no hole" if empty else "")
        )
    order, features = [], {}
    if perceptual is not None and perceptual.metrics:
        start = time.perf_counter()
        order, features = _perceptual(scores, list(preds), perceptual)
        notify(
            "info",
            f"{' and '.join(perceptual.metrics).upper()} in {time.perf_counter() - start:.1f} s",
        )
    per_run = summarize_scores(scores, list(preds), buckets=buckets, ssim_window=ssim_window)
    if features:
        _add_fid(per_run, order, features)
    run_scores = copy.deepcopy(scores)  # combine_runs folds ``scores`` into one row per method
    results = combine_runs(per_run, scores, keys, baseline=baseline, resamples=resamples, seed=seed)
    rows = [s.name for s in order]
    return FolderScores(results, scores, broken, empty, seconds, rows, features, run_scores, keys)


# ---------------------------------------------------------------------------- LPIPS and FID


@dataclass
class _Batch:
    """Images of one size waiting for the networks: ground truths and each method's composite."""

    scores: list[ImageScore]
    gts: list[np.ndarray]
    comps: dict[str, list[np.ndarray]]


def _load_for_networks(
    score: ImageScore, methods: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ground truth (float32) and each method's composite of a scored image."""
    from wmi.inpaint.pixels import composite, resize_hole
    from wmi.io import read_image, read_mask

    gt = read_image(score.paths["gt"])
    hole = resize_hole(read_mask(score.paths["mask"]), gt.shape[0], gt.shape[1])
    return gt, {m: composite(gt, hole, read_image(score.paths[m])) for m in methods}


def _run_networks(
    batch: _Batch, nets: PerceptualNets, features: dict[str, list[np.ndarray]]
) -> None:
    """LPIPS of each composite into its score; FID features appended to ``features``.

    Each network sees a ground truth once for every method and run (LPIPS: its backbone
    features serve every composite of the batch; FID: :meth:`PerceptualNets.gt_fid_features`
    caches them by the file's content).
    """
    gts = np.stack(batch.gts)
    if "fid" in nets.metrics:
        features["gt"].append(nets.gt_fid_features([s.paths["gt"] for s in batch.scores], gts))
    stacked = {method: np.stack(comps) for method, comps in batch.comps.items()}
    if "lpips" in nets.metrics:
        for method, values in nets.lpips_many(stacked, gts).items():
            for score, value in zip(batch.scores, values, strict=True):
                score.metrics[method]["lpips"] = float(value)
    if "fid" in nets.metrics:
        for method, comps in stacked.items():
            features[method].append(nets.fid_features(comps))


def _perceptual(
    scores: Sequence[ImageScore], methods: Sequence[str], nets: PerceptualNets
) -> tuple[list[ImageScore], dict[str, np.ndarray]]:
    """Run the networks once per image, in batches of one image size.

    Returns:
        The scored images in the order of the FID feature rows, and the FID features of the
        ground truths (``"gt"``) and of each method's composites (empty without FID).
    """
    scored = sorted((s for s in scores if not s.skipped), key=lambda s: s.name)
    pending: dict[tuple[int, ...], _Batch] = {}
    order: list[ImageScore] = []
    features: dict[str, list[np.ndarray]] = {key: [] for key in ("gt", *methods)}
    for score in scored:
        gt, comps = _load_for_networks(score, methods)
        batch = pending.setdefault(gt.shape, _Batch([], [], {m: [] for m in methods}))
        batch.scores.append(score)
        batch.gts.append(gt)
        for method in methods:
            batch.comps[method].append(comps[method])
        if len(batch.scores) == nets.batch_size:
            _run_networks(pending.pop(gt.shape), nets, features)
            order += batch.scores
    for batch in pending.values():
        _run_networks(batch, nets, features)
        order += batch.scores
    return order, {k: np.concatenate(v) for k, v in features.items() if v}


def _add_fid(
    results: Results, order: Sequence[ImageScore], features: Mapping[str, np.ndarray]
) -> None:
    """FID per method, overall and per hole-ratio bucket, into ``results``."""
    from wmi.eval.perceptual import fid_by_group, frechet_distance
    from wmi.masks import hole_ratio_bucket

    buckets = [hole_ratio_bucket(s.hole_ratio) for s in order]
    for method in results["methods"]:
        pred = features[method["name"]]
        method["metrics"]["fid"] = frechet_distance(pred, features["gt"])
        by_bucket = fid_by_group(pred, features["gt"], buckets)
        for bucket in method["buckets"]:
            bucket["metrics"]["fid"] = by_bucket[bucket["range"]]
