from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.metrics import structural_similarity

from wmi.errors import WmiError
from wmi.inference import composite
from wmi.masks import hole_ratio_bucket
from wmi.metrics import (
    BUCKETS,
    ImageScore,
    dilate_hole_3x3,
    hole_metrics,
    score_files,
    summarize_scores,
    total_variation,
)


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
    m = hole_metrics(pred, gt, hole)
    # 6 values over the hole: |d| = 0.1, 0.2 and four zeros; d² = 0.01, 0.04.
    assert m["l1"] == pytest.approx(100 * 0.3 / 6)
    assert m["l2"] == pytest.approx(100 * 0.05 / 6)
    assert m["psnr"] == pytest.approx(10 * math.log10(6 / 0.05))


def test_pixels_outside_the_hole_do_not_count() -> None:
    pred, gt, hole = _two_pixel_case()
    other = np.where(hole[..., None], pred, 0.0)  # same hole pixels, different elsewhere
    assert hole_metrics(other, gt, hole) == hole_metrics(pred, gt, hole)


def test_ssim_is_scikit_image_on_the_composite() -> None:
    rng = np.random.default_rng(1)
    gt = rng.random((24, 20, 3))
    pred = rng.random((24, 20, 3))
    hole = np.zeros((24, 20), bool)
    hole[5:15, 4:12] = True
    comp = np.where(hole[..., None], pred, gt)
    expected = structural_similarity(comp, gt, data_range=1.0, channel_axis=2)
    got = hole_metrics(pred, gt, hole)["ssim"]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got != pytest.approx(structural_similarity(pred, gt, data_range=1.0, channel_axis=2))
    np.testing.assert_array_equal(composite(gt, hole, pred), comp)


def test_exact_reproduction_gives_infinite_psnr() -> None:
    rng = np.random.default_rng(2)
    gt = rng.random((9, 9, 3)).astype(np.float32)
    hole = np.zeros((9, 9), bool)
    hole[3:6, 3:6] = True
    pred = np.where(hole[..., None], gt, 0.0).astype(np.float32)
    m = hole_metrics(pred, gt, hole)
    assert m["psnr"] == math.inf
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
    m = hole_metrics(pred, gt, hole)
    assert m["tv"] == pytest.approx(100 * 4 * 3 * v / (3 * 64))
    comp = composite(gt, hole, pred)
    assert m["tv"] == pytest.approx(100 * total_variation(comp, dilate_hole_3x3(hole)))


@pytest.mark.parametrize(
    ("pred_shape", "hole_value", "dtype", "match"),
    [
        ((8, 9, 3), True, np.float64, "prediction is"),
        ((8, 8, 3), False, np.float64, "hole is empty"),
        ((8, 8, 3), True, np.uint8, "expected a float image"),
    ],
)
def test_hole_metrics_rejects_bad_input(
    pred_shape: tuple[int, ...], hole_value: bool, dtype: type, match: str
) -> None:
    gt = np.zeros((8, 8, 3))
    pred = np.zeros(pred_shape, dtype)
    hole = np.full((8, 8), hole_value)
    with pytest.raises(WmiError, match=match):
        hole_metrics(pred, gt, hole)


def test_hole_metrics_rejects_values_outside_unit_range_and_tiny_images() -> None:
    with pytest.raises(WmiError, match=r"outside \[0, 1\]"):
        hole_metrics(np.full((8, 8, 3), 255.0), np.zeros((8, 8, 3)), np.ones((8, 8), bool))
    with pytest.raises(WmiError, match="SSIM needs at least 7x7"):
        hole_metrics(np.zeros((6, 8, 3)), np.zeros((6, 8, 3)), np.ones((6, 8), bool))


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


def _score(name: str, ratio: float, **metrics: dict[str, float]) -> ImageScore:
    return ImageScore(name, ratio, dict(metrics))


def _m(value: float, psnr: float = 20.0) -> dict[str, float]:
    return {"l1": value, "l2": value / 10, "tv": value / 2, "ssim": 1 - value / 100, "psnr": psnr}


def test_summarize_scores_averages_over_images_per_bucket() -> None:
    scores = [
        _score("a.png", 0.05, A=_m(1.0), B=_m(2.0)),
        _score("b.png", 0.08, A=_m(3.0), B=_m(4.0, psnr=math.inf)),
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
    # One exact reproduction makes the mean PSNR infinite; it is counted.
    assert b["metrics"]["psnr"] == math.inf and b["psnr_infinite"] == 1
    assert b["buckets"][0]["psnr_infinite"] == 1 and b["buckets"][1]["psnr_infinite"] == 0
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
    deep = rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "gt.png"), deep[..., ::-1])  # OpenCV writes BGR
    hole = np.zeros((12, 10), bool)
    hole[2:9, 3:8] = True
    mask = _write(tmp_path / "mask.png", (hole * 255).astype(np.uint8))
    pred8 = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
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


def test_score_files_size_mismatch_names_the_file(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.png", np.zeros((10, 10, 3), np.uint8))
    mask = _write(tmp_path / "m.png", np.full((10, 10), 255, np.uint8))
    pred = _write(tmp_path / "pred.png", np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(WmiError, match=r"pred\.png: prediction is 12x10, .*gt\.png is 10x10"):
        score_files(gt, mask, [("m", pred)])
    small_mask = _write(tmp_path / "small.png", np.full((8, 8), 255, np.uint8))
    with pytest.raises(WmiError, match=r"small\.png: mask is 8x8"):
        score_files(gt, small_mask, [("m", gt)])


def test_score_files_skips_a_mask_without_hole(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.png", np.zeros((10, 10, 3), np.uint8))
    mask = _write(tmp_path / "m.png", np.zeros((10, 10), np.uint8))
    score = score_files(gt, mask, [("m", gt)])
    assert score.skipped == "mask has no hole" and score.metrics == {}
    assert score.hole_ratio == 0.0
