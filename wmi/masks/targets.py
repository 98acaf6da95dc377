"""Masks made for a folder of images: one ``{stem}.png`` per image, at that image's size.

``wmi masks generate OUT --for IMAGE_DIR`` lists the images of IMAGE_DIR as
``wmi inpaint folder`` and ``wmi eval`` do (not sub-folders, hidden files skipped), reads each
one's size from its header (EXIF orientation applied, as the readers apply it) and draws its
mask from :func:`rng_for_name`, a generator seeded by the base seed and the file's stem: adding
or removing photographs never changes the masks of the others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wmi.errors import WmiError
from wmi.io import MASK_SET_PREVIEW, list_images, oriented_size
from wmi.kinds import DEFAULT_MAX_PIXELS
from wmi.masks.generators import MIN_SIZE
from wmi.procs import Shard


@dataclass(frozen=True)
class MaskTarget:
    """One mask of a set made for images: ``{stem}.png``, ``height`` x ``width`` pixels."""

    stem: str
    height: int
    width: int

    @property
    def filename(self) -> str:
        """The mask's file name, ``{stem}.png``: what ``inpaint`` and ``eval`` pair by."""
        return f"{self.stem}.png"


def rng_for_name(seed: int, stem: str) -> np.random.Generator:
    """The generator of the mask of the image named ``stem`` in a set made with ``seed``.

    Seeded by ``seed`` and the SHA-256 of the stem (UTF-8), so it is the same on every machine
    and does not depend on which other images are in the folder.
    """
    digest = hashlib.sha256(stem.encode("utf-8", "surrogateescape")).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng([seed, *words])


def image_targets(
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shard: Shard | None = None,
) -> tuple[tuple[MaskTarget, ...], tuple[str, ...]]:
    """The masks to draw for the images of ``image_dir``, and the images left out.

    Sizes come from the files' headers with EXIF orientation applied, by the same rule and
    pixel limit (``max_pixels``, 0 = none) as every reader of :mod:`wmi.io`. With ``shard``
    only the images of that shard (by stem, :meth:`wmi.procs.Shard.take`) are read and
    returned; the whole folder is still listed and its stems checked.

    Returns:
        ``(targets, problems)``: targets sorted by stem; one message per image left out,
        naming it (unreadable, smaller than :data:`MIN_SIZE`, or named ``preview``, whose mask
        would be the set's contact sheet).

    Raises:
        WmiError: ``image_dir`` is missing, is ``out_dir``, holds no images, or two images
            share a stem (``a.jpg`` and ``a.png`` cannot both be paired with ``a.png``).
    """
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    if not image_dir.is_dir():
        raise WmiError(f"{image_dir}: no such folder (--for)")
    if out_dir.exists() and out_dir.resolve() == image_dir.resolve():
        raise WmiError(f"{out_dir}: OUT_DIR must differ from the --for folder")
    files = list_images(image_dir)
    if not files:
        raise WmiError(f"{image_dir}: no images (.jpg .jpeg .png .bmp .webp .tif .tiff) (--for)")
    _check_stems(files)
    targets, problems = [], []
    for path in files if shard is None else shard.take(files, lambda p: p.stem):
        try:
            height, width = oriented_size(path, max_pixels)
        except WmiError as exc:
            problems.append(str(exc))
            continue
        if path.stem + ".png" == MASK_SET_PREVIEW:
            problems.append(f"{path}: its mask would be named {MASK_SET_PREVIEW}, the set's "
                            "contact sheet; rename the image")  # fmt: skip
        elif min(height, width) < MIN_SIZE:
            problems.append(
                f"{path}: {width}x{height} pixels, smaller than the smallest mask "
                f"({MIN_SIZE}x{MIN_SIZE})"
            )
        else:
            targets.append(MaskTarget(path.stem, height, width))
    return tuple(sorted(targets, key=lambda t: t.stem)), tuple(problems)


def _check_stems(files: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise WmiError(
                f"{seen[path.stem]} and {path.name} share the stem {path.stem!r}: one mask "
                f"{path.stem}.png cannot serve both; rename one (--for)"
            )
        seen[path.stem] = path
