"""SSIM as LaMa's evaluation computes it, so that wmi's numbers can sit next to LaMa's tables.

LaMa (Suvorov et al. 2022, advimman/lama) scores ``ssim`` with
``saicinpainting/evaluation/losses/ssim.py`` (class ``SSIM``, from Po-Hsun Su's pytorch-ssim)
through ``SSIMScore`` in ``saicinpainting/evaluation/losses/base_loss.py``, on the whole
inpainted image against the ground truth, both read as float32 ``/ 255`` in [0, 1]:

* an 11x11 Gaussian window, sigma 1.5, built in float32 (``g / g.sum()``, then ``g gᵀ``);
* each channel filtered on its own (``conv2d(..., groups=channel)``) with **zero padding**
  (``padding=window_size // 2``), so the local means near the border are pulled towards 0;
* population (co)variances ``E[xy] - E[x]E[y]``, ``C1 = 0.01²``, ``C2 = 0.03²``
  (data range 1);
* the image's score is the mean of the SSIM map over every pixel and channel, **border pixels
  included** (``ssim_map.mean(1).mean(1).mean(1)``).

scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` (wmi's ``gaussian`` window) has the same window (in float64)
and constants, but filters with reflected borders and averages only pixels at least 5 from the
border. The maps agree in the interior (to ~1e-4, LaMa's float32 weights) and the scores differ
by the border band, about 8% of a 256x256 image: LaMa's is higher, by 0.0003 to 0.03 on
256x256 crops of scikit-image's sample photos with Gaussian noise of sd 0.01 to 0.2 (less
for a composite whose hole stays away from the border).

Here the arithmetic is float64, with LaMa's float32 window weights, and the filter is applied
by FFT (as fast as scikit-image's separable filter, exact to ~1e-15); images are processed in
strips of rows so the temporaries stay bounded whatever the image size. The result matches a
float64 run of LaMa's code to ~1e-14; LaMa's own float32 run differs from both by up to
~3e-5 (its tables print 4 decimals).
"""

from __future__ import annotations

import numpy as np

#: LaMa's window: side and Gaussian sigma.
WINDOW_SIZE = 11
SIGMA = 1.5
#: LaMa's stabilising constants for data range 1.
C1 = 0.01**2
C2 = 0.03**2
#: Pixels per strip of rows (512 Ki: ~150 MB of float64 temporaries for 3 channels).
STRIP_PIXELS = 1 << 19


def lama_window(size: int = WINDOW_SIZE, sigma: float = SIGMA) -> np.ndarray:
    """LaMa's 2-D window, ``(size, size)`` float64 holding LaMa's float32 values (sum ~1).

    ``SSIM._gaussian`` and ``_create_window``: ``g = exp(-(x - size // 2)² / (2 sigma²))``
    stored as float32 and normalised in float32, then ``g gᵀ`` multiplied in float32. The
    float32 rounding of the products is kept on purpose: it moves the SSIM of smooth images by
    ~1e-5 (through ``E[x²] - E[x]²``), more than LaMa's own float32 arithmetic does.
    """
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x**2) / float(2 * sigma**2)).astype(np.float32)
    g = g / np.float32(g.sum(dtype=np.float64))  # torch's float32 sum, correctly rounded here
    return np.outer(g, g).astype(np.float32).astype(np.float64)


def _unit(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 as float32 / 255 (as LaMa's ``load_image`` and wmi's readers), float as is."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"{name}: expected uint8 or float in [0, 1], got {image.dtype}")
    return image


def _filter(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x`` ``(rows, W, C)`` filtered by the window ``w`` ``(k, k, 1)`` per channel, zeros
    outside (``conv2d(padding=k // 2, groups=C)``; the window is symmetric, so convolution and
    correlation agree). By FFT: as fast as two separable passes, and exact to ~1e-15."""
    from scipy.signal import fftconvolve

    return fftconvolve(x, w, mode="same", axes=(0, 1))


def _ssim_map(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """SSIM map of float64 ``(rows, W, C)`` blocks, zero padded at the block's edges."""
    mu1, mu2 = _filter(x, w), _filter(y, w)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter(x * x, w) - mu1_sq
    sigma2_sq = _filter(y * y, w) - mu2_sq
    sigma12 = _filter(x * y, w) - mu1_mu2
    return ((2 * mu1_mu2 + C1) * (2 * sigma12 + C2)) / (
        (mu1_sq + mu2_sq + C1) * (sigma1_sq + sigma2_sq + C2)
    )


def _check(pred: np.ndarray, gt: np.ndarray) -> None:
    if gt.ndim != 3:
        raise ValueError(f"expected (H, W, C) images, got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction is {pred.shape}, ground truth is {gt.shape}")


def lama_ssim_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """LaMa's SSIM map of two whole images (memory grows with the image: for small images).

    Args:
        pred: ``(H, W, C)`` uint8 (read as ``/ 255``) or float in [0, 1].
        gt: the same shape, likewise.

    Returns:
        ``(H, W, C)`` float64 SSIM map, values in [-1, 1]; its mean is :func:`lama_ssim`.

    Raises:
        ValueError: the shapes differ or are not ``(H, W, C)``, or a dtype is not uint8/float.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check(pred, gt)
    x = _unit(pred, "prediction").astype(np.float64)
    y = _unit(gt, "ground truth").astype(np.float64)
    return _ssim_map(x, y, lama_window()[:, :, np.newaxis])


def lama_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """SSIM of ``pred`` against ``gt`` exactly as LaMa's evaluation (``SSIMScore``) scores it.

    The mean over all ``H x W x C`` values of the zero-padded 11x11 Gaussian (sigma 1.5) SSIM
    map, see the module docstring. Symmetric in its arguments. Any size works (zero padding
    needs no minimum), though wmi's ``--ssim-window`` check asks for at least 11x11.

    Args:
        pred: ``(H, W, C)`` (C = 3 for wmi's images) uint8 (read as float32 ``/ 255``, as
            LaMa's ``load_image``) or float in [0, 1]; for inpainting, the composite.
        gt: the ground truth, same shape, likewise.

    Returns:
        The SSIM as a Python float, at most 1 (1 for identical images).

    Raises:
        ValueError: the shapes differ or are not ``(H, W, C)``, or a dtype is not uint8/float.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check(pred, gt)
    height, width, channels = gt.shape
    w = lama_window()[:, :, np.newaxis]
    pad = WINDOW_SIZE // 2
    rows = max(1, STRIP_PIXELS // max(width, 1))
    total = 0.0
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        # `pad` real rows of context on each side; at the image's top and bottom there are
        # none, and the filter's zero padding is then LaMa's.
        lo, hi = max(r0 - pad, 0), min(r1 + pad, height)
        x = _unit(pred[lo:hi], "prediction").astype(np.float64)
        y = _unit(gt[lo:hi], "ground truth").astype(np.float64)
        total += float(_ssim_map(x, y, w)[r0 - lo : r1 - lo].sum())
    return total / (height * width * channels)


def lama_composite_ssim(
    pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray
) -> float:
    """:func:`lama_ssim` of the composite and ``gt``, with the signature of a
    :data:`wmi.kinds.METRICS` function (``fn(pred, gt, hole, comp) -> float``).

    Args:
        pred: ``(H, W, 3)`` float in [0, 1], the network output (unused: ``comp`` has it).
        gt: ``(H, W, 3)`` float in [0, 1] or uint8, the ground truth.
        hole: bool ``(H, W)``, True = hole (unused: ``comp`` has it).
        comp: ``(H, W, 3)``: ``pred`` in the hole, ``gt`` elsewhere.
    """
    return lama_ssim(comp, gt)
