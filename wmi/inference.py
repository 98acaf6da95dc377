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
the result equals the input exactly. :func:`inpaint_folder` does a whole folder: pairing,
skipping existing results, atomic writes and per-file errors (``wmi inpaint folder``).
"""

from __future__ import annotations

import enum
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from wmi.errors import WmiError
from wmi.kinds import AMP_MODES, AUTO, CLASSICAL_METHODS
from wmi.registry import load

if TYPE_CHECKING:
    import torch


class Strategy(str, enum.Enum):
    """How images larger than ``max_size`` are handled."""

    resize = "resize"
    crop = "crop"
    original = "original"


class OutputFormat(str, enum.Enum):
    """File format of :func:`inpaint_folder`'s results; ``same`` keeps the input's."""

    png = "png"
    jpg = "jpg"
    same = "same"


class Inpainter(Protocol):
    """Anything that fills the holes of a list of images."""

    #: Inputs are padded to a multiple of this (1 = any size works as is).
    multiple: int

    def inpaint_batch(
        self, images: Sequence[np.ndarray], holes: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Fill ``holes`` (bool ``(H, W)``, True = hole) of ``images`` (float32 ``(H, W, 3)``)."""
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
    # one, or as np.where: this runs once per image, next to a ~10 ms cv2.inpaint.
    np.copyto(target, prediction, where=np.repeat(hole[..., None], target.shape[2], axis=2))


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

    def __init__(self, method: str, radius: int = 3) -> None:
        self.method = CLASSICAL_METHODS[method]
        if radius < 1:
            raise WmiError(f"--radius: must be at least 1, got {radius}")
        self.radius = radius

    def inpaint_batch(
        self, images: Sequence[np.ndarray], holes: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Inpaint each image on its own; float32 ``(H, W, 3)`` in [0, 1] in and out."""
        return [self._one(img, hole) for img, hole in zip(images, holes, strict=True)]

    def _one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if not hole.any():
            return image.astype(np.float32, copy=True)
        return load(self.method.fill)(image, hole, self.radius)


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
        self, images: Sequence[np.ndarray], holes: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Inpaint images of any sizes; equal padded sizes share a forward pass.

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
                preds = self._forward([images[i] for i in chunk], [holes[i] for i in chunk])
                for i, pred in zip(chunk, preds, strict=True):
                    results[i] = pred
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    def _forward(self, images: list[np.ndarray], holes: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        valid = np.stack([pad_to_multiple((~h).astype(np.float32), self.multiple) for h in holes])
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


def _downscale(image: np.ndarray, hole: np.ndarray, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink so the longer side is ``max_size``; a small pixel touching any hole is a hole.

    The conservative hole keeps thin holes from vanishing and keeps hole content from leaking
    into known pixels of the small image.
    """
    import cv2

    h, w = hole.shape
    scale = max_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    return small, small_hole


def _patch(
    image: np.ndarray,
    hole: np.ndarray,
    region: tuple[slice, slice],
    paste: np.ndarray,
    max_size: int,
) -> _Patch:
    crop, crop_hole = image[region], hole[region]
    if max(crop_hole.shape) > max_size:
        crop, crop_hole = _downscale(crop, crop_hole, max_size)
    return _Patch(region, crop, crop_hole, paste)


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
) -> list[_Patch]:
    """Split the work of inpainting one image per ``strategy``.

    Images whose longer side is at most ``max_size`` run at full size whatever the strategy.
    Larger ones: ``resize`` inpaints the whole image shrunk to ``max_size`` and pastes the
    upscaled hole back; ``crop`` inpaints boxes around the holes (grown by ``crop_margin``, and
    shrunk to ``max_size`` when still too large); ``original`` runs at full size.

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
        return [_Patch(whole, image, hole, hole)]
    if strategy is Strategy.resize:
        return [_patch(image, hole, whole, hole, max_size)]
    return [
        _patch(image, hole, region, paste, max_size)
        for region, paste in _crop_regions(hole, crop_margin)
    ]


def _assemble(
    image: np.ndarray, patches: list[_Patch], predictions: list[np.ndarray]
) -> np.ndarray:
    """Paste each patch's hole pixels (upscaled if it was shrunk) into a copy of ``image``.

    Only ``paste`` pixels, a subset of the hole, are written: the result is a composite.
    """
    import cv2

    out = image.copy()
    for patch, pred in zip(patches, predictions, strict=True):
        target = out[patch.region]
        th, tw = target.shape[:2]
        if pred.shape[:2] != (th, tw):
            # composite first, so pixels at the hole's edge interpolate towards the true ones
            pred = composite(patch.image, patch.hole, pred)
            pred = np.clip(cv2.resize(pred, (tw, th), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        _paste(target, patch.paste, pred)
    return out


def inpaint_images(
    images: Sequence[np.ndarray],
    holes: Sequence[np.ndarray],
    inpainter: Inpainter,
    strategy: Strategy | str = Strategy.resize,
    max_size: int = 1024,
) -> list[np.ndarray]:
    """Inpaint several images with one ``inpaint_batch`` call (so a model can batch them).

    Args:
        images: float ``(H, W, 3)`` images in [0, 1] (uint8 is scaled by 1/255), any sizes.
        holes: bool ``(H, W)`` each, True = hole, same size as its image.
        inpainter: a :class:`ClassicalInpainter`, :class:`ModelInpainter` or alike.
        strategy: what to do with images larger than ``max_size``, see :func:`plan`.
        max_size: longest side inpainted in one piece by ``resize`` and ``crop``.

    Returns:
        float32 ``(H, W, 3)`` images in [0, 1]; known pixels equal the input exactly.
    """
    images = [
        img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
        for img in images
    ]
    plans = []
    for img, hole in zip(images, holes, strict=True):
        if img.shape[:2] != hole.shape:
            raise WmiError(f"image of size {img.shape[:2]} but hole of size {hole.shape}")
        plans.append(plan(img, hole, strategy, max_size))
    flat = [p for patches in plans for p in patches]
    preds = inpainter.inpaint_batch([p.image for p in flat], [p.hole for p in flat]) if flat else []
    outputs, start = [], 0
    for img, patches in zip(images, plans, strict=True):
        outputs.append(_assemble(img, patches, preds[start : start + len(patches)]))
        start += len(patches)
    return outputs


def inpaint_image(
    image: np.ndarray,
    hole: np.ndarray,
    inpainter: Inpainter,
    strategy: Strategy | str = Strategy.resize,
    max_size: int = 1024,
) -> np.ndarray:
    """Inpaint one float ``(H, W, 3)`` image in [0, 1]; see :func:`inpaint_images`."""
    return inpaint_images([image], [hole], inpainter, strategy, max_size)[0]


# ------------------------------------------------------------------------------ folders

#: zlib level of PNG results: OpenCV's (and IOPaint's) default, ~3x faster than Pillow's 6.
PNG_LEVEL = 1

#: ``progress(done, total)``: called with ``done = 0`` once the work is known, then per image.
Progress = Callable[[int, int], None]
#: ``notify(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``.
Notify = Callable[[str, str], None]


def as_inpainter(inpainter: Any, radius: int = 3, batch_size: int = 8) -> Inpainter:
    """An :class:`Inpainter` from what :func:`inpaint_folder` accepts.

    Args:
        inpainter: an object with ``inpaint_batch`` (returned as is); a classical method's
            name (a :class:`ClassicalInpainter` with ``radius``); a ``torch.nn.Module`` with
            the U-Net's signature and a ``multiple`` (or ``layers``) attribute, e.g. a loaded
            checkpoint (a :class:`ModelInpainter`, float32, ``batch_size`` per pass); or a
            zero-argument callable returning one of these (called once, after the folders
            were paired, so a slow checkpoint load comes after the cheap checks).
    """
    if hasattr(inpainter, "inpaint_batch"):
        return inpainter
    if isinstance(inpainter, str):
        return ClassicalInpainter(inpainter, radius)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(inpainter, torch.nn.Module):
        multiple = getattr(inpainter, "multiple", None) or 2 ** int(inpainter.layers)
        return ModelInpainter(inpainter, multiple, batch_size=batch_size)
    if callable(inpainter):
        return as_inpainter(inpainter(), radius, batch_size)
    raise WmiError(f"not an inpainter: {inpainter!r}")


@dataclass
class InpaintFolderResult:
    """What :func:`inpaint_folder` did.

    Attributes:
        processed: results written.
        skipped_existing: images whose result existed (and ``overwrite`` was off).
        failed: ``{"image": path, "error": message}`` per image that could not be done.
        unmatched_images: images without a mask; ``unmatched_masks``: masks without an image.
        seconds: time spent inpainting and writing.
    """

    processed: int = 0
    skipped_existing: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    unmatched_images: list[str] = field(default_factory=list)
    unmatched_masks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` summary, with ``images_per_second``."""
        return {
            "processed": self.processed,
            "skipped_existing": self.skipped_existing,
            "failed": self.failed,
            "unmatched_images": self.unmatched_images,
            "unmatched_masks": self.unmatched_masks,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.processed / self.seconds, 3) if self.seconds else 0.0,
        }


def load_pair(
    image_path: str | os.PathLike[str], mask_path: str | os.PathLike[str], dilate: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Image as float32 ``(H, W, 3)`` and hole as bool ``(H, W)`` resized to it, dilated.

    Raises:
        WmiError: a file is unreadable, or the hole covers the whole image.
    """
    from wmi.io import read_image, read_mask

    image_path, mask_path = Path(image_path), Path(mask_path)
    image = read_image(image_path)
    hole = read_mask(mask_path)
    hole = dilate_hole_ellipse(resize_hole(hole, *image.shape[:2]), dilate)
    if hole.all():
        raise WmiError(f"{mask_path}: the hole covers all of {image_path.name}, nothing to keep")
    return image, hole


def _is_within(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _output_path(out_dir: Path, image: Path, fmt: OutputFormat) -> Path:
    suffix = image.suffix.lower() if fmt is OutputFormat.same else f".{fmt.value}"
    return out_dir / f"{image.stem}{suffix}"


def _check_folders(image_dir: Path, mask_dir: Path, out_dir: Path) -> None:
    for name, d in (("IMAGE_DIR", image_dir), ("MASK_DIR", mask_dir)):
        if not d.is_dir():
            raise WmiError(f"{d}: {name} is not a folder")
    for d in (image_dir, mask_dir):
        if _is_within(out_dir, d):
            raise WmiError(f"{out_dir}: OUT_DIR must not be or lie inside input folder {d}")
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: OUT_DIR exists and is not a folder")


def _plan_folder(
    image_dir: Path,
    mask_dir: Path,
    out_dir: Path,
    patterns: Sequence[str],
    fmt: OutputFormat,
    strict: bool,
    notify: Notify,
) -> tuple[list[tuple[Path, Path, Path]], InpaintFolderResult]:
    """Pair, report the unmatched, refuse output collisions: ``(image, mask, target)`` jobs."""
    from wmi.io import format_names, pair_folders

    pairing = pair_folders(image_dir, mask_dir, mask_patterns=patterns)
    if not pairing.images:
        raise WmiError(f"{image_dir}: no image files found")
    tried = ", ".join(repr(p) for p in patterns)
    if not pairing.complete:
        raise WmiError(
            f"no image in {image_dir} ({pairing.images} files) matched a mask in {mask_dir} "
            f"({pairing.masks} files); mask patterns tried: {tried}"
        )
    result = InpaintFolderResult(
        unmatched_images=[str(p) for p in pairing.images_without_mask],
        unmatched_masks=[str(p) for p in pairing.masks_without_image],
    )
    for what, paths in (
        ("images without a mask", pairing.images_without_mask),
        ("masks without an image", pairing.masks_without_image),
    ):
        if paths and strict:
            raise WmiError(
                f"--strict: {what}: {len(paths)} ({format_names(paths)}); patterns: {tried}"
            )
        if paths:
            notify("warning", f"{what}: {len(paths)} ({format_names(paths)})")
    outputs: dict[Path, Path] = {}
    jobs = []
    for pair in pairing.complete:
        target = _output_path(out_dir, pair.image, fmt)
        if target in outputs:
            raise WmiError(
                f"{pair.image}: its result {target.name} would overwrite the one of "
                f"{outputs[target].name}; use --format same or rename one"
            )
        outputs[target] = pair.image
        jobs.append((pair.image, pair.mask, target))
    return jobs, result


def inpaint_folder(
    image_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    inpainter: Any,
    *,
    mask_patterns: Sequence[str] | None = None,
    dilate: int = 0,
    max_size: int = 1024,
    strategy: Strategy | str = Strategy.resize,
    fmt: OutputFormat | str = OutputFormat.png,
    overwrite: bool = False,
    strict: bool = False,
    radius: int = 3,
    progress: Progress | None = None,
    notify: Notify | None = None,
) -> InpaintFolderResult:
    """Inpaint every image of ``image_dir`` that has a mask in ``mask_dir`` into ``out_dir``.

    Files pair by stem (:func:`wmi.io.pair_folders`); a mask of another size is resized to
    its image (nearest neighbour) and grown by ``dilate`` pixels. Existing results are skipped
    unless ``overwrite``; every result is written atomically (PNG: known pixels exact). A file
    that cannot be read, or a mask that covers its whole image, is reported through
    ``notify("error", ...)`` and listed in ``failed``; the others are still written.

    Args:
        inpainter: see :func:`as_inpainter` (an inpainter, a method name, a loaded model, or
            a zero-argument callable returning one). A :class:`ModelInpainter` gets its
            ``batch_size`` images per call, any other inpainter one.
        mask_patterns: mask file names for ``{stem}`` (default ``{stem}.png``,
            ``{stem}_mask*.png``).
        strategy, max_size: large images, see :func:`plan`.
        fmt: ``png``, ``jpg`` or ``same`` (each input's extension).
        strict: an unmatched image or mask is an error before anything is written.
        radius: of a classical method given by name.
        progress: ``progress(done, total)``, see :data:`Progress`.
        notify: ``notify(level, message)`` for warnings and per-file errors.

    Raises:
        WmiError: a folder is missing, OUT_DIR lies inside an input, nothing pairs, two
            images would write one result, or (``strict``) something is unmatched.
    """
    from wmi.io import DEFAULT_MASK_PATTERNS, write_image

    image_dir, mask_dir, out_dir = Path(image_dir), Path(mask_dir), Path(out_dir)
    notify = notify or (lambda level, message: None)
    progress = progress or (lambda done, total: None)
    _check_folders(image_dir, mask_dir, out_dir)
    patterns = tuple(mask_patterns or DEFAULT_MASK_PATTERNS)
    jobs, result = _plan_folder(
        image_dir, mask_dir, out_dir, patterns, OutputFormat(fmt), strict, notify
    )
    todo = [job for job in jobs if overwrite or not job[2].exists()]
    result.skipped_existing = len(jobs) - len(todo)
    model = as_inpainter(inpainter, radius)
    chunk = model.batch_size if isinstance(model, ModelInpainter) else 1
    start, done = time.perf_counter(), 0
    progress(0, len(todo))
    for first in range(0, len(todo), chunk):
        loaded = []
        for image_path, mask_path, target in todo[first : first + chunk]:
            try:
                image, hole = load_pair(image_path, mask_path, dilate)
            except WmiError as exc:
                notify("error", f"{exc} (skipped)")
                result.failed.append({"image": str(image_path), "error": str(exc)})
                progress(done := done + 1, len(todo))
                continue
            loaded.append((image, hole, target))
        results = inpaint_images(
            [x[0] for x in loaded], [x[1] for x in loaded], model, strategy, max_size
        )
        for (_, _, target), filled in zip(loaded, results, strict=True):
            write_image(target, filled, png_compress_level=PNG_LEVEL)
            result.processed += 1
            progress(done := done + 1, len(todo))
    result.seconds = time.perf_counter() - start
    return result
