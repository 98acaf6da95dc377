"""One photo in, the filled photo out: the object :func:`wmi.load_inpainter` returns.

:class:`PhotoInpainter` is called as ``inpainter(image, mask)`` with a PIL image or an
``(H, W, 3)`` uint8 array and returns the filled image in the same type and size. It reads the
mask, resizes, thresholds and dilates it, handles large images and blends exactly as
``wmi inpaint image`` does (the same functions), so both give the same pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from PIL import Image

from wmi.errors import WmiError
from wmi.inpaint.folder import FolderOptions, hole_of
from wmi.inpaint.strategies import Inpainter, inpaint_image
from wmi.kinds import Blend

#: The options of ``wmi inpaint image`` that change the pixels; their defaults are
#: :class:`~wmi.inpaint.folder.FolderOptions`'.
PIXEL_OPTIONS = ("threshold", "blend", "dilate", "strategy", "max_size")


class PhotoInpainter:
    """Fills the holes of one photo per call: ``inpainter(image, mask) -> filled``.

    Attributes:
        inpainter: the batch-level :class:`~wmi.inpaint.strategies.Inpainter` (a classical
            method or a network) that does the filling.
        options: how masks are read and large images handled (threshold, blend, dilate,
            strategy, max_size).
    """

    def __init__(self, inpainter: Inpainter, options: FolderOptions) -> None:
        options.check()
        self.inpainter = inpainter
        # a weighted-conv network takes the grey levels of a feathered mask as validity
        real = Blend(options.blend) is Blend.soft and inpainter.takes_real_validity
        self.options = dataclasses.replace(options, real_validity=real)

    def __call__(self, image: Image.Image | np.ndarray, mask: Image.Image | np.ndarray) -> Any:
        """Fill the holes of ``image`` that ``mask`` marks.

        Args:
            image: a PIL image (any mode; used as RGB, alpha dropped) or an ``(H, W, 3)``
                uint8 array.
            mask: a PIL image, white (grey level above ``threshold``, 127) = hole as in mask
                files; or an ``(H, W)`` array, nonzero (True) = hole. Resized to the image
                (nearest neighbour) when its size differs.

        Returns:
            the filled image: a PIL RGB image for a PIL image, else an ``(H, W, 3)`` uint8
            array; same size; pixels outside the hole unchanged.

        Raises:
            WmiError: an image or mask of the wrong shape or type, or a hole covering the
                whole image.
        """
        pixels = _pixels(image)
        hole, levels = hole_of(_levels(mask), pixels.shape[:2], self.options)
        if hole.all():
            raise WmiError("mask: the hole covers the whole image, nothing to keep")
        o = self.options
        result = inpaint_image(
            pixels, hole, self.inpainter, o.strategy, o.max_size, levels, o.blend, o.real_validity
        )
        return Image.fromarray(result) if isinstance(image, Image.Image) else result


def make_photo_inpainter(inpainter: Inpainter, **options: Any) -> PhotoInpainter:
    """A :class:`PhotoInpainter` with the :data:`PIXEL_OPTIONS` given by name.

    Raises:
        WmiError: an unknown option (naming it) or a value out of range.
    """
    unknown = sorted(set(options) - set(PIXEL_OPTIONS))
    if unknown:
        raise WmiError(
            f"unknown option {unknown[0]!r}; expected {', '.join(PIXEL_OPTIONS)}, radius or "
            "batch_size"
        )
    return PhotoInpainter(inpainter, FolderOptions(**options))


def _pixels(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise WmiError(
            f"image: expected a PIL image or an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}"
        )
    return arr


def _levels(mask: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 grey levels, 255 = hole: a PIL mask's luminance, an array's nonzero as 255."""
    if isinstance(mask, Image.Image):
        gray = mask if mask.mode in ("L", "1") else mask.convert("RGB")
        return np.asarray(gray.convert("L"))
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise WmiError(f"mask: expected a PIL image or an (H, W) array, got shape {arr.shape}")
    return np.where(arr != 0, np.uint8(255), np.uint8(0))
