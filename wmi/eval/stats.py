"""Statistics for comparing inpainting methods over several runs (seeds) and images.

Two questions a results table leaves open:

* How much does a method's mean score move between training runs? :func:`t_interval` gives
  the Student-t confidence interval of the mean over runs, from each run's mean score.
* Is method A really better than baseline B on these images? :func:`paired_bootstrap` gives a
  percentile bootstrap interval of the mean per-item difference ``A - B``, resampling items
  (images, or (image, mask) pairs as in LaMa's evaluation layout) so that the comparison is
  paired: both methods are judged on the same items, and the items' own difficulty cancels.

Randomness comes only from ``np.random.default_rng(seed)``: the same inputs and seed give the
same interval, bit for bit. Only numpy and scipy (``scipy.stats.t``) are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from wmi.kinds import DEFAULT_RESAMPLES

#: Upper bound on the number of bootstrap indices drawn at once (resamples x items): 4 Mi,
#: about 32 MB of int64 indices and as much for the gathered scores.
_CHUNK_ELEMENTS = 1 << 22


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def t_interval(
    values: Sequence[float] | ArrayLike, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Student-t confidence interval of the mean of ``values``.

    Meant for the means of one method's score over several runs (one value per run / seed):
    ``mean ± t_{(1 + confidence) / 2, n - 1} · sd / sqrt(n)``, with ``sd`` the sample standard
    deviation (``ddof=1``).

    Args:
        values: ``(n,)`` finite numbers, ``n >= 1`` (any shape is flattened).
        confidence: coverage of the interval, in (0, 1).

    Returns:
        ``(mean, low, high)`` as Python floats. With a single value the spread is unknown and
        the result is ``(value, nan, nan)``: a report shows the mean without a ``±``. With
        identical values it is ``(value, value, value)``.

    Raises:
        ValueError: ``values`` is empty or not all finite, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("t_interval needs at least one value, got none")
    if not np.isfinite(x).all():
        raise ValueError(f"t_interval needs finite values, got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf((1.0 + confidence) / 2.0, x.size - 1)) * float(x.std(ddof=1))
    half /= math.sqrt(x.size)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class PairedDifference:
    """The outcome of :func:`paired_bootstrap`.

    Attributes:
        difference: mean over items of (``a``'s mean over runs − ``b``'s mean over runs).
        low, high: percentile bootstrap interval of ``difference`` at the requested
            confidence.
        significant: the interval excludes 0 (``low > 0`` or ``high < 0``).
        items: how many items were compared (after dropping those with NaN).
        dropped: how many items were left out because a score of either method was NaN.
    """

    difference: float
    low: float
    high: float
    significant: bool
    items: int
    dropped: int


def _runs_by_items(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a float64 ``(runs, items)`` array; ``(items,)`` is one run."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(
            f"{name}: expected scores of shape (runs, items) or (items,), got {arr.shape}"
        )
    return arr


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDifference:
    """Paired bootstrap interval of the mean per-item difference between two methods.

    Each item's difference is ``mean_r a[r, i] − mean_r b[r, i]`` (runs averaged first; ``a``
    and ``b`` may have different numbers of runs). The items are then resampled with
    replacement ``resamples`` times and the mean difference of every resample is taken; the
    interval is the ``(1 ∓ confidence) / 2`` quantiles of those means (percentile bootstrap).
    Items are the unit of resampling, so the interval reflects which images happened to be in
    the test set, not the noise between runs.

    NaN handling: an item with a NaN score in any run of either method is dropped from the
    comparison (for both methods) and counted in :attr:`PairedDifference.dropped`.

    Cost: ``resamples × items`` random indices, drawn in chunks of at most 4 Mi so memory stays
    under ~100 MB; 10,000 × 10,000 takes about half a second on one core.

    Args:
        a: per-item scores of the method, ``(runs, items)`` or ``(items,)``.
        b: per-item scores of the baseline on the same items in the same order,
            ``(runs_b, items)`` or ``(items,)``.
        resamples: number of bootstrap resamples, ``>= 1``.
        seed: seed of ``np.random.default_rng``; the result is a function of the inputs and
            the seed.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        A :class:`PairedDifference`. For a lower-is-better score (L1, LPIPS, FID) a
        significant negative ``difference`` means ``a`` is better; for higher-is-better
        (PSNR, SSIM) a significant positive one does.

    Raises:
        ValueError: the item counts of ``a`` and ``b`` differ, an array has another shape
            or no runs, a score is infinite, fewer than 2 items are left after dropping NaN,
            ``resamples < 1``, or ``confidence`` is not in (0, 1).
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    a2, b2 = _runs_by_items(a, "a"), _runs_by_items(b, "b")
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(
            f"paired scores need the same items: a has {a2.shape[1]} items, "
            f"b has {b2.shape[1]} items"
        )
    if np.isinf(a2).any() or np.isinf(b2).any():
        raise ValueError("paired_bootstrap: scores must be finite or NaN, got an infinity")
    keep = ~(np.isnan(a2).any(axis=0) | np.isnan(b2).any(axis=0))
    diff = a2[:, keep].mean(axis=0) - b2[:, keep].mean(axis=0)
    n = diff.size
    if n < 2:
        raise ValueError(
            f"paired_bootstrap needs at least 2 items without NaN, got {n} (of {a2.shape[1]})"
        )
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    # The chunk depends on n only, so the result does not depend on the machine.
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[index].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = (float(q) for q in np.quantile(means, [alpha, 1.0 - alpha]))
    return PairedDifference(
        difference=float(diff.mean()),
        low=low,
        high=high,
        significant=bool(low > 0.0 or high < 0.0),
        items=n,
        dropped=int(a2.shape[1] - n),
    )
