"""Pairing images with their masks and predictions by file stem (the one rule)."""

from __future__ import annotations

import bisect
import fnmatch
import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wmi.errors import WmiError
from wmi.io.files import DEFAULT_MASK_PATTERNS, list_images, list_masks


@dataclass
class Pairing:
    """Images matched with their masks by file stem."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    unmatched_images: list[Path] = field(default_factory=list)
    unmatched_masks: list[Path] = field(default_factory=list)


def match_pattern(pattern: str, stem: str, names: Sequence[str]) -> list[str]:
    """The file names that fit ``pattern.format(stem=stem)``, case-sensitive.

    Wildcards (``*?[``) count only in the pattern: a file stem such as ``photo[1]`` is matched
    literally. ``names`` must be sorted; the search looks only at names starting with the
    pattern's literal prefix, so pairing a large folder stays fast.
    """
    wild = [i for i, ch in enumerate(pattern) if ch in "*?["]
    if not wild:
        wanted = pattern.format(stem=stem)
        i = bisect.bisect_left(names, wanted)
        return [wanted] if i < len(names) and names[i] == wanted else []
    prefix = pattern[: wild[0]].format(stem=stem)
    wanted = pattern.format(stem=glob.escape(stem))
    hits = []
    for i in range(bisect.bisect_left(names, prefix), len(names)):
        if not names[i].startswith(prefix):
            break
        if fnmatch.fnmatchcase(names[i], wanted):
            hits.append(names[i])
    return hits


def pair_by_stem(
    images: Sequence[Path],
    masks: Sequence[Path],
    patterns: Sequence[str] = DEFAULT_MASK_PATTERNS,
) -> Pairing:
    """Match each image to a mask whose file name fits ``pattern.format(stem=image.stem)``.

    Patterns are tried in order and may hold shell wildcards (LaMa's ``{stem}_mask*.png``);
    the first pattern that matches wins, and among several matches the first in sorted order.
    A mask is used at most once.
    """
    by_name = {m.name: m for m in masks}
    names = sorted(by_name)
    used: set[str] = set()
    result = Pairing()
    for image in images:
        match = None
        for pattern in patterns:
            hits = [n for n in match_pattern(pattern, image.stem, names) if n not in used]
            if hits:
                match = hits[0]
                break
        if match is None:
            result.unmatched_images.append(image)
        else:
            used.add(match)
            result.pairs.append((image, by_name[match]))
    result.unmatched_masks = [by_name[n] for n in names if n not in used]
    return result


def format_names(paths: Sequence[str | os.PathLike[str]], limit: int = 5) -> str:
    """``a.png, b.png and 3 more``: the first ``limit`` file names, for a message."""
    names = [Path(p).name for p in paths]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def split_one_folder(
    files: Sequence[Path], patterns: Sequence[str] = DEFAULT_MASK_PATTERNS
) -> tuple[list[Path], list[Path]]:
    """Split one folder (LaMa's layout) into images and masks.

    A file is a mask when its name fits a pattern for the stem of *another* file of the folder
    (``x_mask000.png`` beside ``x.png``, ``y.png`` beside ``y.jpg``); every other file is an
    image. Returns ``(images, masks)``, each in the order of ``files``.
    """
    names = sorted(f.name for f in files)
    mask_names: set[str] = set()
    for f in files:
        for pattern in patterns:
            mask_names.update(n for n in match_pattern(pattern, f.stem, names) if n != f.name)
    images = [f for f in files if f.name not in mask_names]
    return images, [f for f in files if f.name in mask_names]


@dataclass
class PairedImage:
    """One image with its mask and, for each prediction folder, its prediction.

    ``name`` is what reports call it: the image's file name, or the mask's when the image has
    several masks (LaMa's layout, one row per mask; ``pair_folders(every_mask=True)``).
    """

    image: Path
    mask: Path
    predictions: dict[str, Path] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.image.name


@dataclass
class FolderPairing:
    """What :func:`pair_folders` found.

    Attributes:
        complete: images with a mask and a prediction in every prediction folder, in order.
        images: how many image files the image folder holds (masks of LaMa's layout excluded).
        masks: how many mask files were found.
        images_without_mask: images that no mask fits.
        masks_without_image: masks that fit no image.
        missing_predictions: folder name -> images with a mask but no prediction there (the
            mask, for an image with several masks under ``every_mask``).
        stray_predictions: folder name -> predictions of no image with a mask.
    """

    complete: list[PairedImage] = field(default_factory=list)
    images: int = 0
    masks: int = 0
    images_without_mask: list[Path] = field(default_factory=list)
    masks_without_image: list[Path] = field(default_factory=list)
    missing_predictions: dict[str, list[Path]] = field(default_factory=dict)
    stray_predictions: dict[str, list[Path]] = field(default_factory=dict)


def _more_masks(
    pairs: Sequence[tuple[Path, Path]], masks: Sequence[Path], patterns: Sequence[str]
) -> list[tuple[Path, Path, bool]]:
    """Every (image, mask) pair: each image's first mask plus the unused masks that fit it.

    The third item says whether the image has several masks.
    """
    used = {mask.name for _, mask in pairs}
    names = sorted(m.name for m in masks if m.name not in used)
    by_name = {m.name: m for m in masks}
    out = []
    for image, first in pairs:
        more = [n for p in patterns for n in match_pattern(p, image.stem, names) if n not in used]
        used.update(more)
        out += [(image, mask, bool(more)) for mask in (first, *(by_name[n] for n in more))]
    return out


def match_predictions(
    stems: Sequence[Sequence[str]], files: Sequence[Path]
) -> tuple[list[Path | None], list[Path]]:
    """The prediction of each job: the one file whose stem is one of the job's stems.

    Args:
        stems: per job, the stems its prediction may have (any image extension).
        files: the prediction folder's image files.

    Returns:
        The file of each job (None when there is none) and the files of no job.

    Raises:
        WmiError: two files fit one job (``g1.png`` and ``g1.jpg``): never a silent pick.
    """
    by_stem: dict[str, list[Path]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    used: set[Path] = set()
    found: list[Path | None] = []
    for job in stems:
        hits = [f for stem in dict.fromkeys(job) for f in by_stem.get(stem, [])]
        if len(hits) > 1:
            raise WmiError(
                f"{hits[0].parent}: {' and '.join(h.name for h in hits)} are predictions of the "
                "same image; keep one"
            )
        found.append(hits[0] if hits else None)
        used.update(hits)
    return found, [f for f in files if f not in used]


def pair_folders(
    image_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    predictions: Mapping[str, str | os.PathLike[str]] | None = None,
    mask_patterns: Sequence[str] = DEFAULT_MASK_PATTERNS,
    every_mask: bool = False,
) -> FolderPairing:
    """Pair the images of a folder with their masks and predictions, by file stem.

    The rule, used by ``wmi inpaint folder``, ``wmi eval`` and ``wmi demo`` alike:

    - an image ``STEM.ext`` takes the first mask that fits one of ``mask_patterns``, tried in
      order (:func:`pair_by_stem`); a mask is used once;
    - ``image_dir`` and ``mask_dir`` may be one folder (LaMa's layout, ``x.png`` beside
      ``x_mask000.png``): then a file that fits a pattern for another file's stem is a mask,
      every other file an image (:func:`split_one_folder`);
    - with ``every_mask``, an image with several masks (``x_mask000.png``, ``x_mask001.png``)
      gives one :class:`PairedImage` per mask, named after the mask;
    - a prediction is ``STEM`` with any image extension, where STEM is the mask's stem
      (LaMa names a prediction after its mask) or, for an image with one mask, the image's;
      two files that fit one image are an error (:func:`match_predictions`);
    - a mask set's ``preview.png`` (beside its ``manifest.csv``) is never a mask.

    Args:
        image_dir: folder of images (ground truths, for evaluation).
        mask_dir: folder of masks (white = hole); may be ``image_dir``.
        predictions: name -> folder of predictions; an image is complete only with all.
        mask_patterns: mask file names for ``{stem}``, shell wildcards allowed.
        every_mask: one pair per mask instead of per image (``wmi eval``).

    Raises:
        WmiError: a prediction folder holds two predictions of one image.
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    if image_dir.resolve() == mask_dir.resolve():
        images, masks = split_one_folder(list_masks(image_dir), mask_patterns)
    else:
        images, masks = list_images(image_dir), list_masks(mask_dir)
    pairing = pair_by_stem(images, masks, mask_patterns)
    jobs = (
        _more_masks(pairing.pairs, masks, mask_patterns)
        if every_mask
        else [(image, mask, False) for image, mask in pairing.pairs]
    )
    in_jobs = {mask for _, mask, _ in jobs}
    result = FolderPairing(
        images=len(images),
        masks=len(masks),
        images_without_mask=pairing.unmatched_images,
        masks_without_image=[m for m in pairing.unmatched_masks if m not in in_jobs],
    )
    paired = [
        PairedImage(image, mask, name=mask.name if several else "") for image, mask, several in jobs
    ]
    stems = [
        [p.mask.stem] if several else [p.image.stem, p.mask.stem]
        for p, (_, _, several) in zip(paired, jobs, strict=True)
    ]
    for name, folder in (predictions or {}).items():
        found, stray = match_predictions(stems, list_images(folder))
        missing = result.missing_predictions[name] = []
        for job, pred in zip(paired, found, strict=True):
            if pred is None:
                missing.append(job.image if job.name == job.image.name else job.mask)
            else:
                job.predictions[name] = pred
        result.stray_predictions[name] = stray
    result.complete = [p for p in paired if len(p.predictions) == len(predictions or {})]
    return result
