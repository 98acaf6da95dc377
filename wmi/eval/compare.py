"""Several runs per method and paired comparisons with a baseline: Table I with confidence.

``wmi eval --pred NAME=DIR1,DIR2,DIR3`` scores each run (one folder of predictions per training
seed) like a method of its own, under a run key (:func:`run_keys`); :func:`combine_runs` then
folds the runs of every method into one row of the results:

* ``metrics``: the mean over runs of each run's mean (every run is scored on the same images,
  so this is also the mean over images of each image's mean over runs);
* ``runs``: how many runs; ``ci95``: ``{metric: [low, high]}``, the 95% Student-t interval of
  the mean over the runs' means (:func:`wmi.eval.stats.t_interval`; ``[nan, nan]``, JSON
  ``null``, with one run); the same per hole-ratio bucket;
* ``comparisons`` (on the results): for every method but the baseline and every per-image
  metric, the mean per-image difference ``method - baseline`` (runs averaged per image first),
  with a 95% paired bootstrap interval over the images (:func:`wmi.eval.stats.paired_bootstrap`)
  and ``significant`` when it excludes 0; overall (``range`` ``"all"``) and per bucket with at
  least :data:`MIN_ITEMS` images. FID is one number per run, not per image, and has no paired
  comparison.

Pure numpy: no torch, no file access.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wmi.errors import WmiError
from wmi.eval.stats import paired_bootstrap, t_interval
from wmi.kinds import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    from wmi.eval.metrics import ImageScore, Results

#: The coverage of every interval in the reports.
CONFIDENCE = 0.95
#: The fewest images (items) a paired comparison is made on: a percentile bootstrap over a
#: handful of items calls nearly any consistent difference significant (over 2 items, any two
#: differences of one sign), so smaller groups (often a hole-ratio bucket) get no comparison.
MIN_ITEMS = 10
#: How the reports mark a cell significantly better / worse than the baseline's.
MARKS = {"better": "▲", "worse": "▼"}


def comparison_marks(
    results: Mapping[str, Any], higher_is_better: Callable[[str], bool]
) -> dict[tuple[str, str, str], str]:
    """``(method, range, metric) -> "better" | "worse"`` for each significant comparison.

    Args:
        results: the results structure, with or without ``comparisons``.
        higher_is_better: a metric key -> its direction (the metric's registry entry).
    """
    marks = {}
    for c in results.get("comparisons", []):
        if c["significant"]:
            better = (c["difference"] > 0) == higher_is_better(c["metric"])
            marks[(c["method"], c["range"], c["metric"])] = "better" if better else "worse"
    return marks


def run_keys(runs: Mapping[str, Sequence[Any]]) -> dict[str, list[str]]:
    """The name each run is scored under: the method's own for one run, ``NAME run i`` else.

    Args:
        runs: method name -> its runs (folders), in order.

    Raises:
        WmiError: a method has no run, or a run key equals another method's name.
    """
    keys = {
        name: [name] if len(folders) == 1 else [f"{name} run {i + 1}" for i in range(len(folders))]
        for name, folders in runs.items()
    }
    for name, folders in runs.items():
        if not folders:
            raise WmiError(f"method {name!r}: no prediction folder")
    taken = [key for ks in keys.values() for key in ks]
    for key in taken:
        if taken.count(key) > 1:
            raise WmiError(f"method name {key!r} is used twice (a run of a method is named so)")
    return keys


def check_baseline(keys: Mapping[str, Any], baseline: str | None) -> str:
    """``baseline``, or the first method when None.

    Args:
        keys: method name -> its runs (anything), in report order.
        baseline: a method name or None.

    Raises:
        WmiError: ``baseline`` is not a method of ``keys``.
    """
    if baseline is None:
        return next(iter(keys))
    if baseline not in keys:
        raise WmiError(f"--baseline {baseline!r}: not a method (methods: {', '.join(keys)})")
    return baseline


def _interval(values: Sequence[float]) -> tuple[float, list[float]]:
    """Mean and ``[low, high]`` of ``values`` (one per run); NaN bounds with one run or a
    value that is not finite (then a NaN mean too, unless there is one run)."""
    if len(values) == 1 or not all(math.isfinite(v) for v in values):
        return (values[0] if len(values) == 1 else math.nan), [math.nan, math.nan]
    mean, low, high = t_interval(values, CONFIDENCE)
    return mean, [low, high]


def _fold(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One block (``images``, ``psnr_infinite``, ``metrics``, ``runs``, ``ci95``) from each
    run's block of the same range."""
    metrics: dict[str, float] = {}
    ci95: dict[str, list[float]] = {}
    for key in blocks[0]["metrics"]:
        metrics[key], ci95[key] = _interval([b["metrics"][key] for b in blocks])
    return {
        "images": blocks[0]["images"],
        # exact holes over every (image, run): what the note under the table counts
        "psnr_infinite": sum(b["psnr_infinite"] for b in blocks),
        "metrics": metrics,
        "runs": len(blocks),
        "ci95": ci95,
    }


def _per_image(scored: Sequence[ImageScore], keys: Sequence[str], metric: str) -> np.ndarray:
    """``(runs, items)`` scores of one metric; NaN where an image has none."""
    return np.array(
        [[s.metrics[k].get(metric, math.nan) for s in scored] for k in keys], dtype=np.float64
    )


def _comparisons(
    scored: Sequence[ImageScore],
    keys: Mapping[str, Sequence[str]],
    baseline: str,
    range_of: Mapping[str, str],
    resamples: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Every method against ``baseline``, per metric held per image, overall and per bucket."""
    from wmi.masks import BUCKET_LABELS

    metrics = [m for m in scored[0].metrics[keys[baseline][0]] if m != "fid"]
    groups = [("all", list(scored))] + [
        (label, [s for s in scored if range_of[s.name] == label]) for label in BUCKET_LABELS
    ]
    out = []
    for label, items in groups:
        if len(items) < MIN_ITEMS:
            continue
        for method, method_keys in keys.items():
            if method == baseline:
                continue
            for metric in metrics:
                try:
                    diff = paired_bootstrap(
                        _per_image(items, method_keys, metric),
                        _per_image(items, keys[baseline], metric),
                        resamples=resamples,
                        seed=seed,
                        confidence=CONFIDENCE,
                    )
                except ValueError:  # fewer than 2 images with a value of this metric
                    continue
                if diff.items < MIN_ITEMS:
                    continue
                out.append(
                    {
                        "method": method,
                        "baseline": baseline,
                        "metric": metric,
                        "range": label,
                        "difference": diff.difference,
                        "ci95": [diff.low, diff.high],
                        "significant": diff.significant,
                        "items": diff.items,
                    }
                )
    return out


def combine_runs(
    per_run: Results,
    scores: Sequence[ImageScore],
    keys: Mapping[str, Sequence[str]],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Results:
    """Fold each method's runs into one row, and compare every method with the baseline.

    Also rewrites ``scores`` in place so that each image's ``metrics``, ``paths`` and
    ``exact`` are keyed by method name: a method's per-image metrics become the mean over its
    runs (what the paired comparison uses), its path the first run's file (what the HTML
    report shows), and it is exact when every run was.

    Args:
        per_run: :func:`wmi.eval.metrics.summarize_scores` of every run key (FID included).
        scores: the per-image scores of every run key.
        keys: method name -> its run keys (:func:`run_keys`), in report order.
        baseline: the method the others are compared with (default: the first); no
            comparisons with a single method.
        resamples: bootstrap resamples per comparison (>= 1); 0: no comparisons.
        seed: the bootstrap's seed.

    Returns:
        The results structure of :mod:`wmi.eval.report`, each method (and bucket) with
        ``runs`` and ``ci95``, and ``comparisons`` (see the module docstring).

    Raises:
        WmiError: ``baseline`` is not a method.
    """
    from wmi.masks import hole_ratio_bucket

    baseline = check_baseline(keys, baseline)
    by_key = {m["name"]: m for m in per_run["methods"]}
    methods = []
    for name, run_names in keys.items():
        runs = [by_key[k] for k in run_names]
        # every run is scored on the same images, so each has the same buckets
        buckets = [
            {"range": b["range"], **_fold([r["buckets"][i] for r in runs])}
            for i, b in enumerate(runs[0]["buckets"])
        ]
        methods.append({"name": name, **_fold(runs), "buckets": buckets})
    scored = sorted((s for s in scores if not s.skipped), key=lambda s: s.name)
    range_of = {s.name: hole_ratio_bucket(s.hole_ratio) for s in scored}
    comparisons = (
        _comparisons(scored, keys, baseline, range_of, resamples, seed)
        if len(keys) > 1 and resamples > 0 and scored
        else []
    )
    for score in scores:
        _rekey(score, keys)
    out: dict[str, Any] = {
        "ssim_window": per_run["ssim_window"],
        "methods": methods,
        "baseline": baseline,
        "comparisons": comparisons,
    }
    return out  # type: ignore[return-value]


def _rekey(score: ImageScore, keys: Mapping[str, Sequence[str]]) -> None:
    """A score's per-run entries folded into one per method (see :func:`combine_runs`)."""
    for name, run_names in keys.items():
        if run_names == [name]:
            continue
        runs = [score.metrics.pop(k) for k in run_names if k in score.metrics]
        if runs:
            score.metrics[name] = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
        if run_names[0] in score.paths:
            score.paths[name] = score.paths[run_names[0]]
        for k in run_names:
            score.paths.pop(k, None)
        exact = all(k in score.exact for k in run_names)
        score.exact = [e for e in score.exact if e not in run_names] + [name] * exact
