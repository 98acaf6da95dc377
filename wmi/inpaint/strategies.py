"""Inpainting whole images of any size with any inpainter: strategies and the Inpainter protocol.

An *inpainter* fills holes in a list of images: ``inpainter.inpaint_batch(images, holes)``
takes float32 ``(H, W, 3)`` images in [0, 1] and boolean ``(H, W)`` holes (True = hole) and
returns float32 ``(H, W, 3)`` predictions in [0, 1]. Two kinds exist:

- :class:`ClassicalInpainter`: a method of :data:`wmi.kinds.CLASSICAL_METHODS` (OpenCV Telea /
  Navier-Stokes, scikit-image biharmonic, see :mod:`wmi.inpaint.classical`); no checkpoint needed.
- :class:`ModelInpainter`: any ``torch.nn.Module`` with the U-Net's signature
  ``forward(image (N, 3, H, W) in [0, 1], validity (N, 1, H, W), 1 = known) -> (N, 3, H, W)``.
  Inputs are padded (reflect) to a multiple of ``multiple`` (``2 ** layers``), run in batches
  of equal padded size under ``torch.inference_mode`` (with autocast when asked), and cropped
  back.

:func:`inpaint_image` / :func:`inpaint_images` handle large images with a *strategy*
(``original``, ``resize`` or ``crop``) and always composite at the end, so every known pixel of
the result equals the input exactly. :func:`wmi.inpaint.folder.inpaint_folder` (also importable from
here) does a whole folder: pairing, skipping existing results, atomic writes and per-file
errors (``wmi inpaint folder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from wmi.errors import WmiError
from wmi.inpaint.pixels import blend_soft, composite, like_dtype, paste
from wmi.kinds import Blend, Strategy


class Inpainter(Protocol):
    """Anything that fills the holes of a list of images."""

    #: Inputs are padded to a multiple of this (1 = any size works as is).
    multiple: int
    #: Whether ``validities`` (real-valued, soft masks) are used rather than ignored.
    takes_real_validity: bool

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        validities: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Fill ``holes`` (bool ``(H, W)``, True = hole) of ``images`` (float32 ``(H, W, 3)``).

        ``validities``: optional float32 ``(H, W)`` real-valued validity (1 = known) per image,
        for networks that take it (soft masks); others ignore it.
        """
        ...


@dataclass
class _Patch:
    """One piece of work: inpaint ``image``/``hole``, paste ``paste`` pixels into ``region``."""

    region: tuple[slice, slice]
    image: np.ndarray
    hole: np.ndarray
    paste: np.ndarray
    validity: np.ndarray | None = None


def _small_size(shape: tuple[int, ...], max_size: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = max_size / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _downscale(image: np.ndarray, hole: np.ndarray, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink so the longer side is ``max_size``; a small pixel touching any hole is a hole.

    The conservative hole keeps thin holes from vanishing and keeps hole content from leaking
    into known pixels of the small image. A uint8 image is shrunk as uint8 (no full-size
    float copy); the hole as uint16 (any touched pixel stays above 0 up to a 362x shrink).
    """
    import cv2

    size = _small_size(hole.shape, max_size)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    hole16 = hole.astype(np.uint16) * np.uint16(65535)
    small_hole = cv2.resize(hole16, size, interpolation=cv2.INTER_AREA) > 0
    return small, small_hole


def _patch(
    image: np.ndarray,
    hole: np.ndarray,
    region: tuple[slice, slice],
    paste: np.ndarray,
    max_size: int,
    levels: np.ndarray | None = None,
) -> _Patch:
    """One patch; ``levels`` (uint8 grey, 255 = hole) become its real-valued validity."""
    import cv2

    crop, crop_hole = image[region], hole[region]
    validity = None
    if levels is not None:
        validity = np.where(crop_hole, 1.0 - levels[region] / np.float32(255.0), 1.0)
        validity = validity.astype(np.float32)
    if max(crop_hole.shape) > max_size:
        crop, crop_hole = _downscale(crop, crop_hole, max_size)
        if validity is not None:
            size = _small_size(validity.shape, max_size)
            validity = cv2.resize(validity, size, interpolation=cv2.INTER_AREA)
    return _Patch(region, crop, crop_hole, paste, validity)


def _crop_regions(hole: np.ndarray, margin: int) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Boxes around the hole's connected parts, grown by ``margin``, touching ones merged.

    Returns:
        ``(region, paste)`` pairs; ``paste`` is the bool hole inside the region that the box
        owns. Every hole pixel is owned by exactly one box and boxes do not overlap.
    """
    import cv2

    def fill_boxes(canvas: np.ndarray, grow: int) -> np.ndarray:
        _, _, stats, _ = cv2.connectedComponentsWithStats(canvas, connectivity=8)
        filled = np.zeros_like(canvas)
        for x, y, w, h in stats[1:, :4]:
            filled[max(0, y - grow) : y + h + grow, max(0, x - grow) : x + w + grow] = 1
        return filled

    # Filling the bounding boxes of merged boxes can make new overlaps: repeat until stable.
    canvas = fill_boxes(hole.astype(np.uint8), margin)
    while not np.array_equal(filled := fill_boxes(canvas, 0), canvas):
        canvas = filled
    count, labels, stats, _ = cv2.connectedComponentsWithStats(canvas, connectivity=8)
    regions = []
    for k in range(1, count):
        x, y, w, h = stats[k, :4]
        region = (slice(y, y + h), slice(x, x + w))
        regions.append((region, hole[region] & (labels[region] == k)))
    return regions


def plan(
    image: np.ndarray,
    hole: np.ndarray,
    strategy: Strategy | str = Strategy.resize,
    max_size: int = 1024,
    crop_margin: int = 128,
    levels: np.ndarray | None = None,
) -> list[_Patch]:
    """Split the work of inpainting one image per ``strategy``.

    Images whose longer side is at most ``max_size`` run at full size whatever the strategy.
    Larger ones: ``resize`` inpaints the whole image shrunk to ``max_size`` and pastes the
    upscaled hole back; ``crop`` inpaints boxes around the holes (grown by ``crop_margin``, and
    shrunk to ``max_size`` when still too large); ``original`` runs at full size. With
    ``levels`` (the mask's uint8 grey levels), each patch carries the real-valued validity
    ``1 - level / 255`` inside the hole (1 elsewhere).

    Raises:
        WmiError: the hole covers the whole image.
    """
    strategy = Strategy(strategy)
    if not hole.any():
        return []
    if hole.all():
        raise WmiError("the mask covers the whole image: no known pixel to inpaint from")
    whole = (slice(0, hole.shape[0]), slice(0, hole.shape[1]))
    if strategy is Strategy.original or max(hole.shape) <= max_size:
        return [_patch(image, hole, whole, hole, max(hole.shape), levels)]
    if strategy is Strategy.resize:
        return [_patch(image, hole, whole, hole, max_size, levels)]
    return [
        _patch(image, hole, region, paste, max_size, levels)
        for region, paste in _crop_regions(hole, crop_margin)
    ]


def _assemble(
    image: np.ndarray, patches: list[_Patch], predictions: list[np.ndarray]
) -> np.ndarray:
    """Paste each patch's hole pixels (upscaled if it was shrunk) into a copy of ``image``.

    Only ``paste`` pixels, a subset of the hole, are written: the result is a composite of
    ``image``'s dtype (a uint8 image is upscaled as uint8: no full-size float copy).
    """
    import cv2

    out = image.copy()
    for patch, pred in zip(patches, predictions, strict=True):
        target = out[patch.region]
        th, tw = target.shape[:2]
        pred = like_dtype(pred, image.dtype)
        if pred.shape[:2] != (th, tw):
            # composite first, so pixels at the hole's edge interpolate towards the true ones
            pred = composite(like_dtype(patch.image, image.dtype), patch.hole, pred)
            pred = cv2.resize(pred, (tw, th), interpolation=cv2.INTER_CUBIC)
            if pred.dtype != np.uint8:
                np.clip(pred, 0.0, 1.0, out=pred)
        paste(target, patch.paste, pred)
    return out


def inpaint_images(
    images: Sequence[np.ndarray],
    holes: Sequence[np.ndarray],
    inpainter: Inpainter,
    strategy: Strategy | str = Strategy.resize,
    max_size: int = 1024,
    levels: Sequence[np.ndarray | None] | None = None,
    blend: Blend | str = Blend.hard,
    real_validity: bool = False,
) -> list[np.ndarray]:
    """Inpaint several images with one ``inpaint_batch`` call (so a model can batch them).

    Args:
        images: uint8 ``(H, W, 3)`` or float ``(H, W, 3)`` in [0, 1], any sizes.
        holes: bool ``(H, W)`` each, True = hole, same size as its image.
        inpainter: a :class:`ClassicalInpainter`, :class:`ModelInpainter` or alike.
        strategy: what to do with images larger than ``max_size``, see :func:`plan`.
        max_size: longest side inpainted in one piece by ``resize`` and ``crop``.
        levels: per image, the mask's uint8 grey levels (255 = hole), for ``blend="soft"``
            and ``real_validity``; None = a hard mask.
        blend: ``soft`` feathers hole pixels by their grey level (:func:`blend_soft`).
        real_validity: give the inpainter ``1 - level / 255`` as validity inside the hole
            (a weighted-conv network takes real-valued masks, eq. 3).

    Returns:
        ``(H, W, 3)`` images, uint8 for uint8 input, else float32 in [0, 1]; pixels outside
        the hole equal the input exactly.
    """
    images = [img if img.dtype == np.uint8 else img.astype(np.float32) for img in images]
    levels = list(levels) if levels is not None else [None] * len(images)
    plans = []
    for img, hole, lv in zip(images, holes, levels, strict=True):
        if img.shape[:2] != hole.shape:
            raise WmiError(f"image of size {img.shape[:2]} but hole of size {hole.shape}")
        plans.append(plan(img, hole, strategy, max_size, levels=lv if real_validity else None))
    flat = [p for patches in plans for p in patches]
    uint8_ok = getattr(inpainter, "accepts_uint8", False)
    inputs = [p.image if uint8_ok else like_dtype(p.image, np.dtype(np.float32)) for p in flat]
    validities = [p.validity for p in flat] if real_validity else None
    preds = inpainter.inpaint_batch(inputs, [p.hole for p in flat], validities) if flat else []
    outputs, start = [], 0
    for img, hole, lv, patches in zip(images, holes, levels, plans, strict=True):
        out = _assemble(img, patches, preds[start : start + len(patches)])
        if Blend(blend) is Blend.soft and lv is not None:
            blend_soft(out, img, hole, lv)
        outputs.append(out)
        start += len(patches)
    return outputs


def inpaint_image(
    image: np.ndarray,
    hole: np.ndarray,
    inpainter: Inpainter,
    strategy: Strategy | str = Strategy.resize,
    max_size: int = 1024,
    levels: np.ndarray | None = None,
    blend: Blend | str = Blend.hard,
    real_validity: bool = False,
) -> np.ndarray:
    """Inpaint one ``(H, W, 3)`` image (uint8, or float in [0, 1]); see :func:`inpaint_images`."""
    return inpaint_images(
        [image], [hole], inpainter, strategy, max_size, [levels], blend, real_validity
    )[0]
