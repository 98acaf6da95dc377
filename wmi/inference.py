"""Inpainting whole images: classical methods, a trained model, any image size.

An *inpainter* fills holes in a list of images: ``inpainter.inpaint_batch(images, holes)``
takes float32 ``(H, W, 3)`` images in [0, 1] and boolean ``(H, W)`` holes (True = hole) and
returns float32 ``(H, W, 3)`` predictions in [0, 1]. Two kinds exist:

- :class:`ClassicalInpainter`: a method of :data:`wmi.kinds.CLASSICAL_METHODS` (OpenCV Telea /
  Navier-Stokes, scikit-image biharmonic, see :mod:`wmi.classical`); no checkpoint needed.
- :class:`ModelInpainter`: any ``torch.nn.Module`` with the U-Net's signature
  ``forward(image (N, 3, H, W) in [0, 1], validity (N, 1, H, W), 1 = known) -> (N, 3, H, W)``.
  Inputs are padded (reflect) to a multiple of ``multiple`` (``2 ** layers``), run in batches
  of equal padded size under ``torch.inference_mode`` (with autocast when asked), and cropped
  back.

:func:`inpaint_image` / :func:`inpaint_images` handle large images with a *strategy*
(``original``, ``resize`` or ``crop``) and always composite at the end, so every known pixel of
the result equals the input exactly. :func:`wmi.folder.inpaint_folder` (also importable from
here) does a whole folder: pairing, skipping existing results, atomic writes and per-file
errors (``wmi inpaint folder``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from wmi.errors import WmiError
from wmi.kinds import AMP_MODES, AUTO, CLASSICAL_METHODS, Blend, Strategy
from wmi.registry import load

if TYPE_CHECKING:
    import torch


class Inpainter(Protocol):
    """Anything that fills the holes of a list of images."""

    #: Inputs are padded to a multiple of this (1 = any size works as is).
    multiple: int

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
    _paste(out, hole, prediction)
    return out


def _paste(target: np.ndarray, hole: np.ndarray, prediction: np.ndarray) -> None:
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
    """Grow a bool hole by ``pixels`` with an elliptical ``(2 * pixels + 1)``² kernel."""
    if pixels <= 0:
        return hole
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel) > 0


def resize_hole(hole: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a bool hole to ``(height, width)`` with nearest neighbour (a mask file's size)."""
    if hole.shape == (height, width):
        return hole
    import cv2

    return cv2.resize(hole.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0


class ClassicalInpainter:
    """A method of :data:`wmi.kinds.CLASSICAL_METHODS`: OpenCV Telea / Navier-Stokes,
    scikit-image biharmonic, or one you registered.

    Args:
        method: its name (``telea``, ``ns``, ``biharmonic``, ...).
        radius: neighbourhood radius in pixels of ``cv2.inpaint`` (telea and ns only).

    Raises:
        WmiError: an unknown method or a radius below 1.
    """

    multiple = 1
    #: uint8 images are filled as uint8 (OpenCV methods) or converted once (others).
    accepts_uint8 = True

    def __init__(self, method: str, radius: int = 3) -> None:
        self.method = CLASSICAL_METHODS[method]
        if radius < 1:
            raise WmiError(f"--radius: must be at least 1, got {radius}")
        self.radius = radius

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        validities: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Inpaint each image on its own (``validities`` are not used).

        Float32 ``(H, W, 3)`` in [0, 1] in and out; uint8 in, uint8 out (the OpenCV methods
        work on uint8 anyway, so this is the same result without two full-size float copies).
        """
        return [self._one(img, hole) for img, hole in zip(images, holes, strict=True)]

    def _one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from wmi.classical import opencv_flag
        from wmi.io import to_uint8

        if not hole.any():
            return image.copy() if image.dtype == np.uint8 else image.astype(np.float32)
        fill = load(self.method.fill)
        if image.dtype != np.uint8:
            return fill(image, hole, self.radius)
        flag = opencv_flag(fill)
        if flag is not None:
            import cv2

            return cv2.inpaint(image, hole.astype(np.uint8) * 255, self.radius, flag)
        return to_uint8(fill(image.astype(np.float32) / 255.0, hole, self.radius))


def _amp_dtype(amp: str) -> str | None:
    """The torch dtype name of a resolved AMP mode (not "auto"), from :data:`AMP_MODES`."""
    if amp == AUTO or amp not in AMP_MODES:
        modes = ", ".join(n for n in AMP_MODES if n != AUTO)
        raise WmiError(f"amp: expected one of {modes}, got {amp!r}")
    return AMP_MODES[amp].dtype


class ModelInpainter:
    """Batched inference of a network with the U-Net's forward signature.

    Args:
        model: ``forward(image (N, 3, H, W) in [0, 1], validity (N, 1, H, W) 1 = known)
            -> (N, 3, H, W)``; hole pixels of ``image`` are passed as 0.
        multiple: inputs are padded (reflect) to a multiple of this, e.g. ``2 ** layers``.
        amp: ``bf16``, ``fp16`` or ``off``: autocast dtype during the forward pass.
        device: where to run; default: the device of the model's first parameter (or CPU).
        batch_size: at most this many images per forward pass.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        multiple: int,
        amp: str = "off",
        device: torch.device | str | None = None,
        batch_size: int = 8,
    ) -> None:
        import torch

        _amp_dtype(amp)
        if multiple < 1 or batch_size < 1:
            raise WmiError("multiple and batch_size must be at least 1")
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.multiple = multiple
        self.amp = amp
        self.batch_size = batch_size

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        validities: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]:
        """Inpaint images of any sizes; equal padded sizes share a forward pass.

        Args:
            images: float32 ``(H, W, 3)`` in [0, 1].
            holes: bool ``(H, W)``, True = hole.
            validities: optional float32 ``(H, W)`` validity in [0, 1] (1 = known) given to
                the network instead of ``~hole`` (soft masks on a weighted-conv network).

        Returns:
            float32 ``(H, W, 3)`` predictions in [0, 1] (not yet composited).
        """
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            key = (h + (-h) % self.multiple, w + (-w) % self.multiple)
            groups.setdefault(key, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                valid = [
                    validities[i]
                    if validities is not None and validities[i] is not None
                    else (~holes[i]).astype(np.float32)
                    for i in chunk
                ]
                preds = self._forward([images[i] for i in chunk], valid)
                for i, pred in zip(chunk, preds, strict=True):
                    results[i] = pred
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _forward(self, images: list[np.ndarray], validity: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        valid = np.stack([pad_to_multiple(v, self.multiple) for v in validity])
        x = np.stack([pad_to_multiple(img.astype(np.float32), self.multiple) for img in images])
        x_t = torch.from_numpy(x).permute(0, 3, 1, 2).to(self.device)
        m_t = torch.from_numpy(valid)[:, None].to(self.device)
        dtype = _amp_dtype(self.amp)
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=self.device.type,
                dtype=getattr(torch, dtype) if dtype else None,
                enabled=dtype is not None,
            ),
        ):
            y = self.model(x_t * m_t, m_t)
        y = y.float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        return [y[i, : img.shape[0], : img.shape[1]] for i, img in enumerate(images)]


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
        pred = _like(pred, image.dtype)
        if pred.shape[:2] != (th, tw):
            # composite first, so pixels at the hole's edge interpolate towards the true ones
            pred = composite(_like(patch.image, image.dtype), patch.hole, pred)
            pred = cv2.resize(pred, (tw, th), interpolation=cv2.INTER_CUBIC)
            if pred.dtype != np.uint8:
                np.clip(pred, 0.0, 1.0, out=pred)
        _paste(target, patch.paste, pred)
    return out


def _like(array: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
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
    inputs = [p.image if uint8_ok else _like(p.image, np.dtype(np.float32)) for p in flat]
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


#: ``progress(done, total)``: called with ``done = 0`` once the work is known, then per image.
Progress = Callable[[int, int], None]
#: ``notify(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``.
Notify = Callable[[str, str], None]

#: Folder work lives in :mod:`wmi.folder`; these names stay importable from here.
_FOLDER_NAMES = ("inpaint_folder", "InpaintFolderResult", "as_inpainter")


def __getattr__(name: str) -> Any:
    """``wmi.inference.inpaint_folder`` and friends, from :mod:`wmi.folder` (imported lazily)."""
    if name in _FOLDER_NAMES:
        import wmi.folder

        return getattr(wmi.folder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
