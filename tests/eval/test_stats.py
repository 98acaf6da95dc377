"""wmi.eval.stats: t intervals over runs and the paired bootstrap over items."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from wmi.eval.stats import PairedDifference, paired_bootstrap, t_interval

# --- t_interval -------------------------------------------------------------------------------


def test_t_interval_by_hand() -> None:
    values = [30.1, 30.4, 29.8, 30.6, 30.2]
    mean = sum(values) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    half = stats.t.ppf(0.975, 4) * sd / math.sqrt(5)
    assert stats.t.ppf(0.975, 4) == pytest.approx(2.7764451, abs=1e-6)  # the table's value
    got = t_interval(values)
    assert got == pytest.approx((mean, mean - half, mean + half), rel=1e-12)
    half90 = stats.t.ppf(0.95, 4) * sd / math.sqrt(5)
    assert t_interval(np.array(values), confidence=0.9) == pytest.approx(
        (mean, mean - half90, mean + half90), rel=1e-12
    )


def test_t_interval_two_runs_uses_one_degree_of_freedom() -> None:
    mean, low, high = t_interval([1.0, 2.0])
    assert mean == 1.5
    # sd = 1/sqrt(2), so the half width is t_{0.975, 1} * 0.5 = 12.706 * 0.5
    assert high - mean == pytest.approx(12.7062047 * 0.5, rel=1e-7)
    assert mean - low == pytest.approx(high - mean)


def test_t_interval_one_run_has_no_spread() -> None:
    mean, low, high = t_interval([0.83])
    assert mean == 0.83
    assert math.isnan(low) and math.isnan(high)


def test_t_interval_identical_runs() -> None:
    assert t_interval([2.5, 2.5, 2.5]) == (2.5, 2.5, 2.5)


@pytest.mark.parametrize(
    ("values", "confidence", "match"),
    [
        ([], 0.95, "at least one value"),
        ([1.0, float("nan")], 0.95, "finite"),
        ([1.0, 2.0], 1.0, "confidence"),
        ([1.0, 2.0], 0.0, "confidence"),
    ],
)
def test_t_interval_rejects(values: list[float], confidence: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        t_interval(values, confidence=confidence)


# --- paired_bootstrap: mechanics ------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 300)), rng.normal(size=(2, 300))
    first = paired_bootstrap(a, b, resamples=2000, seed=11)
    assert paired_bootstrap(a, b, resamples=2000, seed=11) == first
    other = paired_bootstrap(a, b, resamples=2000, seed=12)
    assert other.difference == first.difference
    assert (other.low, other.high) != (first.low, first.high)


def test_bootstrap_difference_averages_runs_first() -> None:
    a = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])  # per-item means 2, 3, 4
    b = np.array([0.5, 1.0, 1.5])  # one run
    got = paired_bootstrap(a, b, resamples=500)
    assert got.difference == pytest.approx(np.mean([1.5, 2.0, 2.5]))
    assert 1.5 <= got.low <= got.difference <= got.high <= 2.5
    assert got.significant and got.items == 3 and got.dropped == 0


def test_bootstrap_interval_matches_the_standard_error() -> None:
    """For a large sample the percentile interval is close to mean ± 1.96 SE."""
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 2.0, size=5000)
    got = paired_bootstrap(d, np.zeros_like(d), resamples=4000, seed=1)
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert got.high - got.low == pytest.approx(2 * 1.959964 * se, rel=0.06)
    assert (got.low + got.high) / 2 == pytest.approx(d.mean(), abs=0.1 * se)


def test_bootstrap_drops_items_with_nan() -> None:
    a = np.array([[1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([0.0, 0.0, 0.0, np.nan])
    got = paired_bootstrap(a, b, resamples=200)
    assert (got.items, got.dropped) == (2, 2)
    assert got.difference == pytest.approx(2.0)  # items 0 and 2: 1 and 3


def test_bootstrap_rejects_mismatched_items() -> None:
    with pytest.raises(ValueError, match="a has 5 items, b has 4 items"):
        paired_bootstrap(np.zeros((2, 5)), np.zeros(4))


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "match"),
    [
        (np.zeros((2, 2, 2)), np.zeros(2), {}, "shape"),
        (np.zeros((0, 3)), np.zeros(3), {}, "shape"),
        ([1.0, np.nan], [0.0, 0.0], {}, "at least 2 items"),
        ([1.0, np.inf], [0.0, 0.0], {}, "infinity"),
        ([1.0, 2.0], [0.0, 0.0], {"resamples": 0}, "resamples"),
        ([1.0, 2.0], [0.0, 0.0], {"confidence": 1.5}, "confidence"),
    ],
)
def test_bootstrap_rejects(a: object, b: object, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(a, b, **kwargs)  # type: ignore[arg-type]


# --- paired_bootstrap: the requirement -----------------------------------------------
# "A paired test must call 3x the noise clearly worse and the same noise with other seeds not
# different." Per-image scores are an L1-like error: the image's own error e_i, which varies a
# lot between images, plus |noise| from the method (so 3x the noise is 3x the extra error).

IMAGES, RUNS, NOISE = 200, 3, 0.02


def _scores(rng: np.random.Generator, e: np.ndarray, sd: float, runs: int) -> np.ndarray:
    """``(runs, images)`` scores ``e_i + |N(0, sd)|``."""
    return e + np.abs(rng.normal(0.0, sd, size=(runs, e.size)))


def _trial(seed: int) -> tuple[PairedDifference, PairedDifference]:
    """(B vs A, C vs A) for one synthetic test set: B has 3x A's noise, C is A with other
    seeds."""
    rng = np.random.default_rng(seed)
    e = rng.uniform(0.0, 1.0, size=IMAGES)  # sd 0.29: much larger than the methods' gap
    a = _scores(rng, e, NOISE, RUNS)
    b = _scores(rng, e, 3 * NOISE, RUNS)
    c = _scores(rng, e, NOISE, RUNS - 1)  # another method's runs need not match in count
    return (
        paired_bootstrap(b, a, resamples=2000, seed=seed),
        paired_bootstrap(c, a, resamples=2000, seed=seed),
    )


def test_three_times_the_noise_is_clearly_worse_and_other_seeds_are_not_different() -> None:
    trials = [_trial(seed) for seed in range(20)]
    gap = 2 * NOISE * math.sqrt(2 / math.pi)  # E|N(0, 3s)| - E|N(0, s)|
    for worse, _ in trials:
        assert worse.significant and worse.low > 0  # B's error is higher
        assert worse.low < gap < worse.high
    false_positives = sum(same.significant for _, same in trials)
    assert false_positives <= 3, f"{false_positives}/20 false positives"
    # The intervals are not trivially wide: each is within a third of ±1.96 paired SEs, and
    # far narrower than the spread between images (which an unpaired test would have to beat).
    for _, same in trials:
        width = same.high - same.low
        se = NOISE * math.sqrt((1 - 2 / math.pi) * (1 / RUNS + 1 / (RUNS - 1)) / IMAGES)
        assert width == pytest.approx(2 * 1.96 * se, rel=0.33)


def test_pairing_matters() -> None:
    """Shuffling B's images (breaking the pairing) leaves the gap hidden in e_i's spread."""
    rng = np.random.default_rng(3)
    e = rng.uniform(0.0, 1.0, size=IMAGES)
    a = _scores(rng, e, NOISE, RUNS)
    b = _scores(rng, e, 3 * NOISE, RUNS)
    unpaired = paired_bootstrap(b[:, rng.permutation(IMAGES)], a, resamples=2000, seed=0)
    assert not unpaired.significant
    assert paired_bootstrap(b, a, resamples=2000, seed=0).significant
