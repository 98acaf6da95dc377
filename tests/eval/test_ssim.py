"""wmi.eval.ssim against a transcription of LaMa's SSIM, and how it differs from scikit-image's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from skimage.metrics import structural_similarity

import wmi.eval.ssim as lama
from wmi.eval.ssim import lama_composite_ssim, lama_ssim, lama_ssim_map, lama_window


class LamaSSIM(torch.nn.Module):
    """advimman/lama ``saicinpainting/evaluation/losses/ssim.py`` class ``SSIM``, transcribed
    (``size_average=False``, as ``SSIMScore`` uses it)."""

    def __init__(self, window_size: int = 11, size_average: bool = False) -> None:
        super().__init__()
        self.window_size = window_size
        self.size_average = size_average
        self.channel = 1
        self.register_buffer("window", self._create_window(window_size, self.channel))

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        assert len(img1.shape) == 4
        channel = img1.size()[1]
        if channel == self.channel and self.window.data.type() == img1.data.type():
            window = self.window
        else:
            window = self._create_window(self.window_size, channel)
            window = window.type_as(img1)
            self.window = window
            self.channel = channel
        return self._ssim(img1, img2, window, self.window_size, channel, self.size_average)

    def _gaussian(self, window_size: int, sigma: float) -> torch.Tensor:
        gauss = torch.Tensor(
            [
                np.exp(-((x - (window_size // 2)) ** 2) / float(2 * sigma**2))
                for x in range(window_size)
            ]
        )
        return gauss / gauss.sum()

    def _create_window(self, window_size: int, channel: int) -> torch.Tensor:
        _1d_window = self._gaussian(window_size, 1.5).unsqueeze(1)
        _2d_window = _1d_window.mm(_1d_window.t()).float().unsqueeze(0).unsqueeze(0)
        return _2d_window.expand(channel, 1, window_size, window_size).contiguous()

    def _ssim(
        self,
        img1: torch.Tensor,
        img2: torch.Tensor,
        window: torch.Tensor,
        window_size: int,
        channel: int,
        size_average: bool = True,
    ) -> torch.Tensor:
        mu1 = F.conv2d(img1, window, padding=(window_size // 2), groups=channel)
        mu2 = F.conv2d(img2, window, padding=(window_size // 2), groups=channel)
        mu1_sq = mu1.pow(2)
        mu2_sq = mu2.pow(2)
        mu1_mu2 = mu1 * mu2
        sigma1_sq = (
            F.conv2d(img1 * img1, window, padding=(window_size // 2), groups=channel) - mu1_sq
        )
        sigma2_sq = (
            F.conv2d(img2 * img2, window, padding=(window_size // 2), groups=channel) - mu2_sq
        )
        sigma12 = (
            F.conv2d(img1 * img2, window, padding=(window_size // 2), groups=channel) - mu1_mu2
        )
        c1 = 0.01**2
        c2 = 0.03**2
        ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
            (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
        )
        if size_average:
            return ssim_map.mean()
        return ssim_map.mean(1).mean(1).mean(1)


def lama_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    """LaMa's score of one ``(H, W, 3)`` pair, in float64 (uint8 read as float32 / 255)."""

    def tensor(image: np.ndarray) -> torch.Tensor:
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].double()

    return float(LamaSSIM()(tensor(pred), tensor(gt))[0])


def _noisy(image: np.ndarray, sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sd, size=image.shape), 0.0, 1.0)


def _photo(name: str, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """A top-left-centred crop of a scikit-image sample photo (shipped with it), float64."""
    image = getattr(data, name)().astype(np.float64) / 255
    return image[40 : 40 + size[0], 60 : 60 + size[1]]


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:64] / 95.0
    gradient = np.stack([yy, xx[:, ::-1], (yy + xx) / 2], axis=-1)
    checker = np.kron((np.indices((8, 5)).sum(0) % 2), np.ones((12, 13)))[..., None]
    checker = np.repeat(checker, 3, axis=-1) * 0.8 + 0.1
    return [
        ("random 256x256", rng.random((256, 256, 3)), rng.random((256, 256, 3))),
        ("random 37x53", rng.random((37, 53, 3)), rng.random((37, 53, 3))),
        ("random 11x11", rng.random((11, 11, 3)), rng.random((11, 11, 3))),
        ("gradient 96x64", gradient, _noisy(gradient, 0.05, 1)),
        ("checker 96x65", checker, _noisy(checker, 0.1, 2)),
        ("astronaut 256x256", _photo("astronaut"), _noisy(_photo("astronaut"), 0.05, 3)),
        (
            "coffee 200x300",
            _photo("coffee", (200, 300)),
            _noisy(_photo("coffee", (200, 300)), 0.1, 4),
        ),
        ("chelsea 256x256 vs 0", _photo("chelsea"), np.zeros((256, 256, 3))),
    ]


def test_window_is_lamas_bit_for_bit() -> None:
    want = LamaSSIM()._create_window(11, 1)[0, 0].double().numpy()
    np.testing.assert_array_equal(lama_window(), want)


PAIRS = _pairs()


@pytest.mark.parametrize(("name", "pred", "gt"), PAIRS, ids=[p[0] for p in PAIRS])
def test_matches_lamas_code(name: str, pred: np.ndarray, gt: np.ndarray) -> None:
    want = lama_reference(pred, gt)
    assert lama_ssim(pred, gt) == pytest.approx(want, abs=1e-6)
    assert lama_ssim(gt, pred) == pytest.approx(want, abs=1e-6)
    assert float(lama_ssim_map(pred, gt).mean()) == pytest.approx(want, abs=1e-6)


def test_float32_and_uint8_inputs() -> None:
    rng = np.random.default_rng(1)
    pred8 = rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8)
    gt8 = np.clip(pred8.astype(int) + rng.integers(-20, 21, size=pred8.shape), 0, 255).astype(
        np.uint8
    )
    want = lama_reference(pred8, gt8)
    assert lama_ssim(pred8, gt8) == pytest.approx(want, abs=1e-6)
    as32 = (pred8.astype(np.float32) / 255, gt8.astype(np.float32) / 255)
    assert lama_ssim(*as32) == pytest.approx(want, abs=1e-6)


def test_strips_give_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips of 7 rows (with 5 rows of context each side) sum to the whole map's mean."""
    pred, gt = _photo("astronaut", (100, 120)), _noisy(_photo("astronaut", (100, 120)), 0.1, 5)
    whole = lama_ssim(pred, gt)
    monkeypatch.setattr(lama, "STRIP_PIXELS", 7 * 120)
    assert lama_ssim(pred, gt) == pytest.approx(whole, abs=1e-12)
    assert whole == pytest.approx(lama_reference(pred, gt), abs=1e-6)


def test_identical_images_score_one() -> None:
    image = _photo("coffee", (64, 64))
    assert lama_ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_composite_signature() -> None:
    gt = _photo("chelsea", (64, 64))
    pred = _noisy(gt, 0.2, 6)
    hole = np.zeros((64, 64), dtype=bool)
    hole[20:40, 10:50] = True
    comp = np.where(hole[..., None], pred, gt)
    assert lama_composite_ssim(pred, gt, hole, comp) == lama_ssim(comp, gt)


@pytest.mark.parametrize(
    ("pred", "gt", "match"),
    [
        (np.zeros((16, 16, 3)), np.zeros((16, 17, 3)), "ground truth is"),
        (np.zeros((16, 16)), np.zeros((16, 16)), r"\(H, W, C\)"),
        (np.zeros((16, 16, 3), dtype=np.int32), np.zeros((16, 16, 3)), "uint8 or float"),
    ],
)
def test_rejects(pred: np.ndarray, gt: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lama_ssim(pred, gt)


def _skimage_gaussian(pred: np.ndarray, gt: np.ndarray, full: bool = False) -> Any:
    """scikit-image's SSIM with wmi's ``gaussian`` window (float, or (float, map) if full)."""
    return structural_similarity(
        pred,
        gt,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=-1,
        full=full,
    )


def test_differs_from_scikit_image_only_by_the_border() -> None:
    gt = _photo("astronaut")
    pred = _noisy(gt, 0.1, 7)
    ours = lama_ssim(pred, gt)
    theirs = _skimage_gaussian(pred, gt)
    assert abs(ours - theirs) > 1e-3
    # Same window (up to LaMa's float32 weights) and constants: the maps agree away from the
    # 5-pixel border band, and scikit-image's score is the mean over that inner part.
    _, their_map = _skimage_gaussian(pred, gt, full=True)
    inner = (slice(5, -5), slice(5, -5))
    our_map = lama_ssim_map(pred, gt)
    np.testing.assert_allclose(our_map[inner], their_map[inner], atol=1e-4)
    assert float(our_map[inner].mean()) == pytest.approx(theirs, abs=1e-5)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_ssim_window_lama_in_the_table_i_metrics_is_lamas(dtype: str) -> None:
    """``--ssim-window lama`` scores the composite with LaMa's SSIM (the transcription above),
    whatever the image size: the strips of the other windows do not cut it."""
    from wmi.eval.metrics import STRIP_PIXELS, hole_metrics

    gt = _photo("coffee", (48, 40))
    pred = _noisy(gt, 0.2, 8)
    hole = np.zeros(gt.shape[:2], dtype=bool)
    hole[:20, 5:30] = True  # touches the border, where LaMa's zero padding counts
    if dtype == "uint8":
        gt, pred = (np.round(x * 255).astype(np.uint8) for x in (gt, pred))
    else:
        gt, pred = gt.astype(np.float32), pred.astype(np.float32)
    comp = np.where(hole[..., None], pred, gt)
    got = hole_metrics(pred, gt, hole, ssim_window="lama")["ssim"]
    assert got == pytest.approx(lama_reference(comp, gt), abs=1e-6)
    assert abs(got - hole_metrics(pred, gt, hole, ssim_window="gaussian")["ssim"]) > 1e-4
    assert gt.shape[0] * gt.shape[1] < STRIP_PIXELS  # one strip; many strips: below
    import wmi.eval.metrics as metrics

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "STRIP_PIXELS", 40 * 5)
        assert hole_metrics(pred, gt, hole, ssim_window="lama")["ssim"] == pytest.approx(got)
