from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.metrics import structural_similarity

from wmi.errors import WmiError
from wmi.eval.metrics import (
    BUCKETS,
    PSNR_CAP,
    ImageScore,
    dilate_hole_3x3,
    hole_metrics,
    score_files,
    summarize_scores,
    total_variation,
)
from wmi.inpaint.pixels import composite
from wmi.masks import hole_ratio_bucket


def _two_pixel_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8x8 grey ground truth; two hole pixels off by (0.1, 0, 0) and (0, -0.2, 0)."""
    gt = np.full((8, 8, 3), 0.5)
    pred = np.ones((8, 8, 3))  # outside the hole: far off, must not count
    hole = np.zeros((8, 8), bool)
    hole[2, 3] = hole[5, 6] = True
    pred[2, 3] = (0.6, 0.5, 0.5)
    pred[5, 6] = (0.5, 0.3, 0.5)
    return pred, gt, hole


def test_l1_l2_psnr_by_hand() -> None:
    pred, gt, hole = _two_pixel_case()
    m = hole_metrics(pred, gt, hole, ssim_window="uniform")
    # 6 values over the hole: |d| = 0.1, 0.2 and four zeros; d² = 0.01, 0.04.
    assert m["l1"] == pytest.approx(100 * 0.3 / 6)
    assert m["l2"] == pytest.approx(100 * 0.05 / 6)
    assert m["psnr"] == pytest.approx(10 * math.log10(6 / 0.05))


def test_pixels_outside_the_hole_do_not_count() -> None:
    pred, gt, hole = _two_pixel_case()
    other = np.where(hole[..., None], pred, 0.0)  # same hole pixels, different elsewhere
    assert hole_metrics(other, gt, hole, ssim_window="uniform") == hole_metrics(
        pred, gt, hole, ssim_window="uniform"
    )


def test_ssim_is_scikit_image_on_the_composite() -> None:
    rng = np.random.default_rng(1)
    gt = rng.random((24, 20, 3))
    pred = rng.random((24, 20, 3))
    hole = np.zeros((24, 20), bool)
    hole[5:15, 4:12] = True
    comp = np.where(hole[..., None], pred, gt)
    expected = structural_similarity(comp, gt, data_range=1.0, channel_axis=2)
    got = hole_metrics(pred, gt, hole, ssim_window="uniform")["ssim"]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got != pytest.approx(structural_similarity(pred, gt, data_range=1.0, channel_axis=2))
    np.testing.assert_array_equal(composite(gt, hole, pred), comp)


GAUSSIAN = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gaussian_ssim_is_scikit_image_wang_et_al(dtype: type) -> None:
    rng = np.random.default_rng(11)
    gt = rng.random((40, 33, 3)).astype(dtype)
    pred = rng.random((40, 33, 3)).astype(dtype)
    hole = np.zeros((40, 33), bool)
    hole[8:30, 5:20] = True
    comp = np.where(hole[..., None], pred, gt)
    expected = structural_similarity(comp, gt, data_range=1, channel_axis=2, **GAUSSIAN)
    got = hole_metrics(pred, gt, hole, ssim_window="gaussian")["ssim"]
    assert got == pytest.approx(expected, rel=1e-6)
    uniform = structural_similarity(comp, gt, data_range=1, channel_axis=2)
    assert abs(expected - uniform) > 1e-3  # the two windows do differ here
    # the default is scikit-image's own default window (docs/paper.md#metrics-of-table-i)
    assert hole_metrics(pred, gt, hole)["ssim"] == pytest.approx(uniform, rel=1e-6)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_strips_give_the_whole_image_numbers(window: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tall image measured in many strips of rows equals the one-strip measurement."""
    import wmi.eval.metrics

    rng = np.random.default_rng(12)
    gt = rng.integers(0, 256, (97, 31, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, (97, 31, 3), dtype=np.uint8)
    hole = rng.random((97, 31)) < 0.3
    whole = hole_metrics(pred, gt, hole, ssim_window=window)
    floats = hole_metrics(pred / np.float32(255), gt / np.float32(255), hole, ssim_window=window)
    monkeypatch.setattr(wmi.eval.metrics, "STRIP_PIXELS", 31 * 5)  # 20 strips of 5 rows
    strips = hole_metrics(pred, gt, hole, ssim_window=window)
    for key, value in whole.items():
        assert strips[key] == pytest.approx(value, rel=1e-9), key
        assert floats[key] == pytest.approx(value, rel=1e-9), key
    kwargs = GAUSSIAN if window == "gaussian" else {}
    comp = composite(gt, hole, pred).astype(np.float32) / 255
    expected = structural_similarity(
        comp, gt.astype(np.float32) / 255, data_range=1, channel_axis=2, **kwargs
    )
    assert strips["ssim"] == pytest.approx(expected, rel=1e-6)


def test_each_registered_function_gives_hole_metrics_value() -> None:
    from wmi.kinds import METRICS
    from wmi.registry import load

    rng = np.random.default_rng(13)
    gt, pred = rng.random((20, 20, 3)), rng.random((20, 20, 3))
    hole = rng.random((20, 20)) < 0.4
    comp = composite(gt, hole, pred)
    values = hole_metrics(pred, gt, hole)
    for metric in METRICS.entries():
        assert load(metric.fn)(pred, gt, hole, comp) == pytest.approx(values[metric.name])


def test_exact_reproduction_gives_the_capped_psnr() -> None:
    rng = np.random.default_rng(2)
    gt = rng.random((9, 9, 3)).astype(np.float32)
    hole = np.zeros((9, 9), bool)
    hole[3:6, 3:6] = True
    pred = np.where(hole[..., None], gt, 0.0).astype(np.float32)
    m = hole_metrics(pred, gt, hole, ssim_window="uniform")
    assert m["psnr"] == PSNR_CAP == 100.0
    tiny = pred.copy()
    tiny[4, 4, 0] += 1e-7  # not exact, but above the cap
    assert hole_metrics(tiny, gt, hole, ssim_window="uniform")["psnr"] == PSNR_CAP
    assert m["l1"] == 0.0 and m["l2"] == 0.0
    assert m["ssim"] == pytest.approx(1.0)


def test_dilate_hole_is_a_3x3_square_dilation() -> None:
    hole = np.zeros((5, 6), bool)
    hole[2, 3] = True
    hole[0, 0] = True  # at the corner: the dilation stops at the border
    expected = np.zeros((5, 6), bool)
    expected[1:4, 2:5] = True
    expected[0:2, 0:2] = True
    np.testing.assert_array_equal(dilate_hole_3x3(hole), expected)
    rng = np.random.default_rng(3)
    for _ in range(5):
        random_hole = rng.random((13, 17)) < 0.1
        np.testing.assert_array_equal(
            dilate_hole_3x3(random_hole),
            ndimage.binary_dilation(random_hole, structure=np.ones((3, 3), bool)),
        )


def test_total_variation_by_hand() -> None:
    # One channel: horizontal pair (0,0)-(0,1) gives |1 - 0| = 1, vertical pair (0,0)-(1,0)
    # gives |2 - 0| = 2; pairs with a pixel outside the region do not count.
    base = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 9.0]])
    region = np.array([[True, True, False], [True, False, False]])
    assert total_variation(base, region) == pytest.approx(3 / (1 * 2 * 3))
    # Three channels scaled 1, 2, 3: differences summed over channels, divided by C·H·W.
    image = base[..., None] * np.array([1.0, 2.0, 3.0])
    assert total_variation(image, region) == pytest.approx(3 * 6 / (3 * 2 * 3))
    assert total_variation(image, np.zeros((2, 3), bool)) == 0.0


def test_tv_metric_on_a_single_hole_pixel() -> None:
    # A spike of height v at one hole pixel of a black 8x8 image: the dilated hole holds its
    # four neighbours, so 4 pairs x 3 channels x v, over 3·8·8.
    v = 0.8
    gt = np.zeros((8, 8, 3))
    pred = np.full((8, 8, 3), 0.3)  # outside the hole, ignored: TV is on the composite
    pred[4, 4] = v
    hole = np.zeros((8, 8), bool)
    hole[4, 4] = True
    m = hole_metrics(pred, gt, hole, ssim_window="uniform")
    assert m["tv"] == pytest.approx(100 * 4 * 3 * v / (3 * 64))
    comp = composite(gt, hole, pred)
    assert m["tv"] == pytest.approx(100 * total_variation(comp, dilate_hole_3x3(hole)))


@pytest.mark.parametrize(
    ("pred_shape", "hole_value", "dtype", "match"),
    [
        ((8, 9, 3), True, np.float64, "prediction is"),
        ((8, 8, 3), False, np.float64, "hole is empty"),
        ((8, 8, 3), True, np.int64, "expected a float image"),
    ],
)
def test_hole_metrics_rejects_bad_input(
    pred_shape: tuple[int, ...], hole_value: bool, dtype: type, match: str
) -> None:
    gt = np.zeros((8, 8, 3))
    pred = np.zeros(pred_shape, dtype)
    hole = np.full((8, 8), hole_value)
    with pytest.raises(WmiError, match=match):
        hole_metrics(pred, gt, hole, ssim_window="uniform")


def test_hole_metrics_rejects_values_outside_unit_range_and_tiny_images() -> None:
    with pytest.raises(WmiError, match=r"outside \[0, 1\]"):
        hole_metrics(np.full((8, 8, 3), 255.0), np.zeros((8, 8, 3)), np.ones((8, 8), bool))
    with pytest.raises(WmiError, match="uniform window needs at least 7x7"):
        hole_metrics(
            np.zeros((6, 8, 3)), np.zeros((6, 8, 3)), np.ones((6, 8), bool), ssim_window="uniform"
        )
    with pytest.raises(WmiError, match="gaussian window needs at least 11x11"):
        hole_metrics(
            np.zeros((10, 12, 3)), np.zeros((10, 12, 3)), np.ones((10, 12), bool),
            ssim_window="gaussian",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("ratio", "bucket"),
    [
        (0.004, "0-10%"),
        (0.1, "0-10%"),
        (0.1001, "10-20%"),
        (3 / 10, "20-30%"),
        (76800 / 256000, "20-30%"),  # a pixel count over the image size: exactly 30 %
        (0.35, "30-40%"),
        (0.6, "50-60%"),
        (0.61, ">60%"),
        (1.0, ">60%"),
    ],
)
def test_bucket_boundaries(ratio: float, bucket: str) -> None:
    assert hole_ratio_bucket(ratio) == bucket


def _score(
    name: str, ratio: float, exact: tuple[str, ...] = (), **metrics: dict[str, float]
) -> ImageScore:
    return ImageScore(name, ratio, dict(metrics), exact=list(exact))


def _m(value: float, psnr: float = 20.0) -> dict[str, float]:
    return {"l1": value, "l2": value / 10, "tv": value / 2, "ssim": 1 - value / 100, "psnr": psnr}


def test_summarize_scores_averages_over_images_per_bucket() -> None:
    scores = [
        _score("a.png", 0.05, A=_m(1.0), B=_m(2.0)),
        _score("b.png", 0.08, ("B",), A=_m(3.0), B=_m(4.0, psnr=PSNR_CAP)),
        _score("c.png", 0.45, A=_m(8.0), B=_m(8.0)),
        ImageScore("d.png", 0.0, skipped="mask has no hole"),
    ]
    results = summarize_scores(scores, ["A", "B"])
    a, b = results["methods"]
    assert (a["name"], a["images"], b["images"]) == ("A", 3, 3)
    assert a["metrics"]["l1"] == pytest.approx(4.0)  # (1 + 3 + 8) / 3, a mean over images
    assert a["metrics"]["ssim"] == pytest.approx(0.96)
    assert [bk["range"] for bk in a["buckets"]] == ["0-10%", "40-50%"]
    assert [bk["images"] for bk in a["buckets"]] == [2, 1]
    assert a["buckets"][0]["metrics"]["l1"] == pytest.approx(2.0)
    assert a["psnr_infinite"] == 0 and a["metrics"]["psnr"] == pytest.approx(20.0)
    # One exact reproduction counts as 100 dB, so the mean stays finite; it is counted.
    assert b["metrics"]["psnr"] == pytest.approx((20 + 100 + 20) / 3) and b["psnr_infinite"] == 1
    assert b["buckets"][0]["psnr_infinite"] == 1 and b["buckets"][1]["psnr_infinite"] == 0
    assert results["ssim_window"] == "uniform"  # the default
    assert b["buckets"][1]["metrics"]["psnr"] == pytest.approx(20.0)


def test_summarize_scores_is_independent_of_completion_order() -> None:
    rng = np.random.default_rng(4)
    scores = [
        _score(f"{i}.png", float(rng.random()), A=_m(float(v)))
        for i, v in enumerate(rng.random(50) * 10)
    ]
    shuffled = scores[:]
    random.Random(0).shuffle(shuffled)
    assert summarize_scores(shuffled, ["A"]) == summarize_scores(scores, ["A"])
    assert summarize_scores(scores, ["A"], buckets=False)["methods"][0]["buckets"] == []
    assert {b["range"] for b in summarize_scores(scores, ["A"])["methods"][0]["buckets"]} <= set(
        BUCKETS
    )


def test_summarize_scores_without_images_is_an_error() -> None:
    with pytest.raises(WmiError, match="'A'"):
        summarize_scores([ImageScore("a.png", 0.0, skipped="mask has no hole")], ["A"])


def _write(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_score_files_reads_16bit_png_and_jpeg(tmp_path: Path) -> None:
    import cv2

    rng = np.random.default_rng(5)
    deep = rng.integers(0, 65536, (12, 11, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "gt.png"), deep[..., ::-1])  # OpenCV writes BGR
    hole = np.zeros((12, 11), bool)
    hole[2:9, 3:8] = True
    mask = _write(tmp_path / "mask.png", (hole * 255).astype(np.uint8))
    pred8 = rng.integers(0, 256, (12, 11, 3), dtype=np.uint8)
    Image.fromarray(pred8).save(tmp_path / "pred.jpg", quality=90)
    decoded = np.asarray(Image.open(tmp_path / "pred.jpg").convert("RGB"))

    score = score_files(tmp_path / "gt.png", mask, [("jpeg", tmp_path / "pred.jpg")])
    expected = hole_metrics(decoded / 255.0, deep / 65535.0, hole)
    for key, value in expected.items():
        assert score.metrics["jpeg"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    # 16-bit precision is kept: an 8-bit reading of the ground truth gives another L1.
    eight_bit = hole_metrics(decoded / 255.0, np.round(deep / 257.0) / 255.0, hole)
    assert abs(eight_bit["l1"] - score.metrics["jpeg"]["l1"]) > 1e-4
    assert score.hole_ratio == pytest.approx(hole.mean())


def test_score_files_wrong_sized_prediction_is_a_per_file_problem(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.png", np.zeros((12, 12, 3), np.uint8))
    mask = _write(tmp_path / "m.png", np.full((12, 12), 255, np.uint8))
    pred = _write(tmp_path / "pred.png", np.zeros((12, 14, 3), np.uint8))
    score = score_files(gt, mask, [("ok", gt), ("m", pred)])
    assert score.skipped == "unreadable file" and score.metrics == {}
    (message,) = score.unreadable
    assert re.search(r"pred\.png: prediction is 14x12, .*gt\.png is 12x12", message)


def test_score_files_resizes_a_mask_of_another_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    gt = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    pred = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    small = np.zeros((12, 12), bool)
    small[3:7, 2:9] = True
    big = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # nearest neighbour, x2
    paths = [_write(tmp_path / n, a) for n, a in (("gt.png", gt), ("p.png", pred))]
    mask = _write(tmp_path / "m.png", (small * 255).astype(np.uint8))
    score = score_files(paths[0], mask, [("m", paths[1])])
    assert score.mask_resized and score.hole_ratio == pytest.approx(big.mean())
    assert score.metrics["m"] == hole_metrics(pred, gt, big)
    same = _write(tmp_path / "m2.png", (big * 255).astype(np.uint8))
    assert not score_files(paths[0], same, [("m", paths[1])]).mask_resized


def test_score_files_counts_exact_holes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    gt = _write(tmp_path / "gt.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    mask = _write(tmp_path / "m.png", np.full((16, 16), 255, np.uint8))
    noisy = _write(tmp_path / "n.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    score = score_files(gt, mask, [("copy", gt), ("noisy", noisy)])
    assert score.exact == ["copy"] and score.metrics["copy"]["psnr"] == PSNR_CAP
    assert score.metrics["noisy"]["psnr"] < 20


def test_score_files_skips_a_mask_without_hole(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.png", np.zeros((10, 10, 3), np.uint8))
    mask = _write(tmp_path / "m.png", np.zeros((10, 10), np.uint8))
    score = score_files(gt, mask, [("m", gt)])
    assert score.skipped == "mask has no hole" and score.metrics == {}
    assert score.hole_ratio == 0.0
