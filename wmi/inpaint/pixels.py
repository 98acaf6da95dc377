"""Pixel operations of inpainting, numpy only: composite, pad, grow and resize holes, feather.

Images are ``(H, W, 3)`` uint8 or float32 in [0, 1]; holes are bool ``(H, W)``, True = hole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def composite(image: np.ndarray, hole: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Hole pixels from ``prediction``, every other pixel from ``image`` (bit-exact).

    The one composite of wmi: inference pastes a network's output into the input, the metrics
    paste a prediction into the ground truth (``composite(gt, hole, pred)``).

    Args:
        image: ``(H, W, 3)`` input (or ground truth).
        hole: bool ``(H, W)``, True = hole.
        prediction: ``(H, W, 3)``.

    Returns:
        ``(H, W, 3)`` array of the two inputs' common dtype (``image``'s when they agree).
    """
    out = image.astype(np.result_type(image, prediction), copy=True)
    paste(out, hole, prediction)
    return out


def paste(target: np.ndarray, hole: np.ndarray, prediction: np.ndarray) -> None:
    """Write ``prediction`` into ``target`` (a view is fine) where ``hole`` is True."""
    # copyto with a full (H, W, C) mask is about twice as fast as with a broadcast (H, W, 1)
    # one, or as np.where: this runs once per image, next to a ~10 ms cv2.inpaint. In strips
    # of rows, so the repeated mask of a large image stays small.
    rows = max(1, (1 << 20) // max(1, hole.shape[1]))
    for r0 in range(0, hole.shape[0], rows):
        part = hole[r0 : r0 + rows]
        full = np.repeat(part[..., None], target.shape[2], axis=2)
        np.copyto(target[r0 : r0 + rows], prediction[r0 : r0 + rows], where=full)


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """Pad the first two axes at the bottom/right (reflect) up to a multiple of ``multiple``.

    Works for any size, also one smaller than the padding (the reflection repeats).
    """
    h, w = array.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return array
    widths = [(0, ph), (0, pw)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="reflect")


def dilate_hole_ellipse(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a bool hole by ``pixels`` with an elliptical ``(2 * pixels + 1)``² kernel.

    A disc as wide as the image's diagonal reaches every pixel from any hole pixel, so a
    larger ``pixels`` gives the same result: it is capped there (the kernel, and OpenCV's
    memory, then stay bounded by the image instead of growing with ``pixels`` squared).
    """
    if pixels <= 0 or not hole.any():
        return hole
    import cv2

    h, w = hole.shape[:2]
    if pixels >= math.hypot(h, w):
        return np.ones_like(hole, dtype=bool)

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel) > 0


def resize_hole(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a bool hole to ``(height, width)`` with nearest neighbour (a mask file's size)."""
    if hole.shape == (height, width):
        return hole
    import cv2

    return cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0


def like_dtype(array: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """``array`` as uint8 (rounded) or float32 in [0, 1], whichever ``dtype`` is."""
    from wmi.io import to_uint8

    if dtype == np.uint8:
        return to_uint8(array)
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array


def blend_soft(
    out: np.ndarray, image: np.ndarray, hole: np.ndarray, levels: np.ndarray, rows: int = 256
) -> None:
    """Feather ``out`` in place: ``a * image + (1 - a) * out`` on hole pixels.

    ``a = 1 - level / 255`` from the mask's grey ``levels`` (255 = hole).

    ``--blend soft``: a grey mask level keeps that much of the input. Works in strips of
    ``rows`` rows, so a large image needs no full-size float copy.
    """
    for r0 in range(0, hole.shape[0], rows):
        sel = hole[r0 : r0 + rows]
        if not sel.any():
            continue
        a = (1.0 - levels[r0 : r0 + rows][sel] / np.float32(255.0))[:, None]
        mixed = a * image[r0 : r0 + rows][sel] + (1.0 - a) * out[r0 : r0 + rows][sel]
        out[r0 : r0 + rows][sel] = np.rint(mixed) if out.dtype == np.uint8 else mixed
