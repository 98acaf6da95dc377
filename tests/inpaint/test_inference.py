from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from wmi.bench.inpaint import benchmark_inpaint
from wmi.errors import WmiError
from wmi.inpaint.classical import ClassicalInpainter
from wmi.inpaint.network import ModelInpainter
from wmi.inpaint.pixels import composite, dilate_hole_ellipse, pad_to_multiple, resize_hole
from wmi.inpaint.strategies import inpaint_image, inpaint_images, plan
from wmi.kinds import CLASSICAL_METHODS


class MeanColour(torch.nn.Module):
    """Stand-in for the U-Net: every pixel becomes the mean colour of the known pixels.

    It records what it was called with, so tests can see batching, padding and the mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, object]] = []

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        self.calls.append(
            {
                "shape": tuple(image.shape),
                "mask_shape": tuple(valid.shape),
                "inference": torch.is_inference_mode_enabled(),
                "autocast": torch.is_autocast_enabled(image.device.type),
                "hole_content_max": float((image * (1 - valid)).abs().max()),
            }
        )
        mean = (image * valid).sum(dim=(2, 3), keepdim=True) / valid.sum(dim=(2, 3), keepdim=True)
        return mean.expand_as(image)


def astronaut(size: int) -> np.ndarray:
    """scikit-image's astronaut as float32 ``(size, size, 3)`` in [0, 1]."""
    return cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA) / np.float32(
        255.0
    )


def two_colour_image(h: int, w: int, hole: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Known pixels a flat colour, hole pixels random junk that must not survive."""
    image = np.empty((h, w, 3), np.float32)
    image[:] = (0.2, 0.5, 0.8)
    image[hole] = rng.random((int(hole.sum()), 3), dtype=np.float32)
    return image


def test_pad_to_multiple_odd_size_reflects_and_keeps_the_original() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((217, 301, 3), dtype=np.float32)
    padded = pad_to_multiple(image, 128)
    assert padded.shape == (256, 384, 3)
    np.testing.assert_array_equal(padded[:217, :301], image)
    # reflect: row 217 mirrors row 215 (the edge row itself is not repeated)
    np.testing.assert_array_equal(padded[217], padded[215])
    assert pad_to_multiple(image, 1) is image
    # smaller than the padding: the reflection repeats, shape still right
    assert pad_to_multiple(image[:3, :5], 16).shape == (16, 16, 3)


def test_composite_is_bit_exact_outside_the_hole() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((31, 17, 3), dtype=np.float32)
    pred = rng.random((31, 17, 3), dtype=np.float32)
    hole = rng.random((31, 17)) < 0.3
    out = composite(image, hole, pred)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_array_equal(out[hole], pred[hole])


def test_dilate_and_resize_hole() -> None:
    hole = np.zeros((9, 9), bool)
    hole[4, 4] = True
    grown = dilate_hole_ellipse(hole, 2)
    assert grown[4, 2] and grown[2, 4] and grown[6, 4] and grown[4, 6]
    assert not grown[2, 2]  # elliptical, not square
    assert dilate_hole_ellipse(hole, 0) is hole
    small = np.array([[True, False], [False, True]])
    # issue 21, item 5: beyond the image a dilation is the image (the kernel of 10**6 pixels
    # would be a terabyte); just below the cap, the kernel's own result is the same
    corner = np.zeros((20, 30), bool)
    corner[0, 0] = True
    assert dilate_hole_ellipse(corner, 10**6).all()
    assert dilate_hole_ellipse(corner, 37).all()  # 37 > hypot(19, 29): by the kernel
    assert not dilate_hole_ellipse(corner, 30).all()
    assert not dilate_hole_ellipse(np.zeros((5, 5), bool), 10**6).any()  # no hole, none grown
    big = resize_hole(small, 4, 6)
    assert big.shape == (4, 6)
    assert big[:2, :3].all() and not big[:2, 3:].any() and big[2:, 3:].all()


@pytest.mark.parametrize("method", CLASSICAL_METHODS.names())
def test_classical_methods_fill_the_hole(method: str) -> None:
    gt = astronaut(96)
    hole = np.zeros((96, 96), bool)
    hole[20:30, 30:60] = True  # a bar
    hole[50:80, 70:76] = True  # a thin column
    cv2.circle(hole.view(np.uint8), (30, 70), 6, 1, -1)  # a disc
    damaged = gt.copy()
    damaged[hole] = 0.0
    out = inpaint_image(damaged, hole, ClassicalInpainter(method))
    np.testing.assert_array_equal(out[~hole], gt[~hole])
    err = np.abs(out - gt)[hole].mean()
    black = np.abs(gt)[hole].mean()
    assert err < 0.4 * black, (err, black)  # measured: 0.21 (biharmonic) to 0.29 (ns)


def test_classical_inpainter_rejects_bad_radius() -> None:
    with pytest.raises(WmiError, match="--radius"):
        ClassicalInpainter("telea", radius=0)


def test_model_inpainter_batches_pads_crops_and_composites() -> None:
    rng = np.random.default_rng(2)
    model = MeanColour()
    inpainter = ModelInpainter(model, multiple=16, batch_size=2)
    holes, images = [], []
    for h, w in [(217, 301), (217, 301), (220, 300), (40, 40)]:
        hole = np.zeros((h, w), bool)
        hole[h // 3 : h // 2, w // 4 : w // 2] = True
        holes.append(hole)
        images.append(two_colour_image(h, w, hole, rng))
    outs = inpaint_images(images, holes, inpainter, strategy="original")
    # three images pad to 224x304 -> batches of 2 and 1; the 40x40 one to 48x48 on its own
    shapes = sorted(call["shape"] for call in model.calls)
    assert shapes == [(1, 3, 48, 48), (1, 3, 224, 304), (2, 3, 224, 304)]
    assert all(call["mask_shape"][1] == 1 for call in model.calls)
    assert all(call["inference"] for call in model.calls)
    assert not any(call["autocast"] for call in model.calls)
    assert all(call["hole_content_max"] == 0.0 for call in model.calls)
    for image, hole, out in zip(images, holes, outs, strict=True):
        assert out.shape == image.shape and out.dtype == np.float32
        np.testing.assert_array_equal(out[~hole], image[~hole])
        np.testing.assert_allclose(
            out[hole], np.broadcast_to((0.2, 0.5, 0.8), out[hole].shape), atol=1e-5
        )


def test_model_inpainter_autocast_bf16_on_cpu() -> None:
    model = MeanColour()
    hole = np.zeros((20, 20), bool)
    hole[5:9, 5:9] = True
    image = two_colour_image(20, 20, hole, np.random.default_rng(3))
    out = inpaint_image(image, hole, ModelInpainter(model, 8, amp="bf16", device="cpu"))
    assert model.calls[0]["autocast"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[~hole], image[~hole])
    with pytest.raises(WmiError, match="amp"):
        ModelInpainter(model, 8, amp="fp8")


def test_no_hole_means_no_work_and_an_identical_image() -> None:
    model = MeanColour()
    image = astronaut(32)
    out = inpaint_image(image, np.zeros((32, 32), bool), ModelInpainter(model, 8))
    assert model.calls == []
    np.testing.assert_array_equal(out, image)


def test_resize_strategy_runs_small_and_pastes_only_the_hole() -> None:
    rng = np.random.default_rng(4)
    hole = np.zeros((217, 301), bool)
    hole[100:120, 50:90] = True
    image = two_colour_image(217, 301, hole, rng)
    model = MeanColour()
    out = inpaint_image(image, hole, ModelInpainter(model, 8), strategy="resize", max_size=64)
    assert model.calls[0]["shape"] == (1, 3, 48, 64)  # 64x46 padded
    assert out.shape == image.shape
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_allclose(
        out[hole], np.broadcast_to((0.2, 0.5, 0.8), out[hole].shape), atol=1e-4
    )


def test_resize_strategy_does_not_lose_a_thin_hole() -> None:
    # a one-pixel red line on grey: shrunk 4x it would vanish with nearest neighbour and the
    # red would leak into the known pixels; the result would then be pink, not grey
    image = np.full((400, 400, 3), 0.5, np.float32)
    hole = np.zeros((400, 400), bool)
    hole[201, 50:350] = True
    image[hole] = (1.0, 0.0, 0.0)
    out = inpaint_image(image, hole, ClassicalInpainter("telea"), strategy="resize", max_size=100)
    assert np.abs(out[hole] - 0.5).max() < 0.02


def test_crop_strategy_inpaints_each_hole_from_its_surroundings() -> None:
    # left half blue-ish, right half orange; a hole in each half far from the boundary
    image = np.zeros((300, 800, 3), np.float32)
    image[:, :400] = (0.1, 0.2, 0.9)
    image[:, 400:] = (0.9, 0.5, 0.1)
    hole = np.zeros((300, 800), bool)
    hole[140:160, 40:60] = True
    hole[100:110, 700:760] = True
    image[hole] = 0.0
    regions = plan(image, hole, "crop", max_size=128)
    assert len(regions) == 2
    model = MeanColour()
    out = inpaint_image(image, hole, ModelInpainter(model, 8), strategy="crop", max_size=128)
    assert len(model.calls) == 2
    assert all(max(call["shape"][2:]) <= 128 for call in model.calls)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_allclose(
        out[140:160, 40:60], np.broadcast_to((0.1, 0.2, 0.9), (20, 20, 3)), atol=1e-4
    )
    np.testing.assert_allclose(
        out[100:110, 700:760], np.broadcast_to((0.9, 0.5, 0.1), (10, 60, 3)), atol=1e-4
    )


def test_crop_regions_merge_nearby_holes_and_own_every_hole_pixel() -> None:
    hole = np.zeros((600, 600), bool)
    hole[100:110, 100:110] = True
    hole[100:110, 200:210] = True  # within 2 * margin of the first: one box
    hole[500:510, 500:510] = True
    patches = plan(np.zeros((600, 600, 3), np.float32), hole, "crop", max_size=200)
    assert len(patches) == 2
    owned = np.zeros_like(hole, dtype=int)
    for patch in patches:
        owned[patch.region] += patch.paste
    np.testing.assert_array_equal(owned, hole.astype(int))


def test_original_strategy_runs_at_full_size() -> None:
    hole = np.zeros((217, 301), bool)
    hole[10:20, 10:20] = True
    model = MeanColour()
    inpaint_image(
        np.zeros((217, 301, 3), np.float32), hole, ModelInpainter(model, 8), "original", 64
    )
    assert model.calls[0]["shape"] == (1, 3, 224, 304)


def test_hole_covering_everything_is_an_error() -> None:
    with pytest.raises(WmiError, match="whole image"):
        inpaint_image(
            np.zeros((8, 8, 3), np.float32), np.ones((8, 8), bool), ClassicalInpainter("ns")
        )


def test_mismatched_hole_is_an_error() -> None:
    with pytest.raises(WmiError, match="size"):
        inpaint_image(
            np.zeros((8, 8, 3), np.float32), np.zeros((8, 9), bool), ClassicalInpainter("ns")
        )


def test_benchmark_inpaint_reports_both_paths() -> None:
    result = benchmark_inpaint(size=64, methods=["telea", "ns"], repeats=2)
    assert result["size"] == 64 and result["hole_fraction"] == pytest.approx(0.25)
    for name in ("telea", "ns"):
        entry = result["methods"][name]
        assert entry["direct_ms"] > 0 and entry["wmi_ms"] > 0
        assert entry["overhead_ms"] == pytest.approx(entry["wmi_ms"] - entry["direct_ms"])
