"""Inpainting a whole folder: :func:`inpaint_folder`, the work of ``wmi inpaint folder``.

Pairing (one mask per image, several masks per image, or one mask file for every image),
grey-level thresholds and soft blending, metadata carried to each result, a record of the
method in the output folder, results verified before a re-run skips them, stale temporary
files removed, and a small thread pool so decoding and encoding overlap the work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmi.errors import WmiError
from wmi.inpaint.classical import ClassicalInpainter
from wmi.inpaint.pixels import dilate_hole_ellipse
from wmi.inpaint.record import (
    BUSY,
    IN_PROGRESS,
    REPLACING,
    STATE,
    check_record,
    remove_stale_temps,
    result_ok,
    write_record,
)
from wmi.inpaint.record import (
    RECORD_NAME as RECORD_NAME,  # re-exported: wmi.inpaint.folder.RECORD_NAME
)
from wmi.inpaint.strategies import Inpainter, inpaint_images
from wmi.io import DEFAULT_MASK_PATTERNS, ImageInfo
from wmi.kinds import DEFAULT_MAX_PIXELS, MASK_THRESHOLD, PNG_LEVEL, Blend, OutputFormat, Strategy
from wmi.procs import Shard, shard_lock
from wmi.progress import Notify, Progress


def as_inpainter(inpainter: Any, radius: int = 3, batch_size: int = 8) -> Inpainter:
    """An :class:`~wmi.inpaint.strategies.Inpainter` from what :func:`inpaint_folder` accepts.

    Args:
        inpainter: an object with ``inpaint_batch`` (returned as is); a classical method's
            name (a :class:`ClassicalInpainter` with ``radius``); a ``torch.nn.Module`` with
            the U-Net's signature and a ``multiple`` attribute, e.g. a loaded
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
        from wmi.inpaint.network import ModelInpainter  # torch: only for a torch model

        return ModelInpainter(inpainter, batch_size=batch_size)
    if callable(inpainter):
        return as_inpainter(inpainter(), radius, batch_size)
    raise WmiError(f"not an inpainter: {inpainter!r}")


@dataclass
class FolderOptions:
    """How :func:`inpaint_folder` reads masks and writes results.

    Attributes:
        threshold: a mask pixel above this grey level (0-254) is hole.
        blend: ``hard`` or ``soft`` (feather hole pixels by grey level, see
            :func:`wmi.inpaint.pixels.blend_soft`).
        real_validity: give the inpainter ``1 - level / 255`` as validity in the hole (a
            weighted-conv network with ``blend="soft"``).
        dilate: grow every hole by this many pixels first (dilated pixels are full hole).
        strategy, max_size: large images, see :func:`wmi.inpaint.strategies.plan`.
        fmt: ``png``, ``jpg``, ``webp`` or ``same`` (each input's extension).
        quality: JPEG/WebP quality, 1-100.
        max_pixels: refuse (per file) an image or mask over this many pixels; 0: no limit.
        workers: threads that read, inpaint (classical methods) and write; 0: up to 4.
    """

    threshold: int = MASK_THRESHOLD
    blend: Blend | str = Blend.hard
    real_validity: bool = False
    dilate: int = 0
    strategy: Strategy | str = Strategy.resize
    max_size: int = 1024
    fmt: OutputFormat | str = OutputFormat.png
    quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 0

    def check(self) -> None:
        """Raise :class:`WmiError` for an option out of range."""
        if not 0 <= self.threshold <= 254:
            raise WmiError(f"--threshold: must be in 0..254, got {self.threshold}")
        if not 1 <= self.quality <= 100:
            raise WmiError(f"--quality: must be in 1..100, got {self.quality}")
        if self.max_pixels < 0:
            raise WmiError(f"--max-pixels: must be 0 (no limit) or more, got {self.max_pixels}")
        Blend(self.blend), Strategy(self.strategy), OutputFormat(self.fmt)


@dataclass
class InpaintFolderResult:
    """What :func:`inpaint_folder` did.

    Attributes:
        processed: results written (with a hole).
        skipped_existing: results that existed, decode and have the right size (no overwrite).
        failed: ``{"image": path, "error": message}`` per image that could not be done.
        no_hole: images whose mask selects nothing; each was written unchanged, with a warning.
        redone: existing results that did not decode (truncated by a kill) and were redone.
        unmatched_images: images without a mask; ``unmatched_masks``: masks without an image.
        masks_resized: masks resized (nearest neighbour) to their image's size;
            ``masks_stretched``: of those, how many onto another aspect ratio.
        alpha_dropped: images whose alpha channel was dropped (results are RGB).
        stale_temp_removed: temporary files of an interrupted run that were removed.
        seconds: time spent inpainting and writing.
    """

    processed: int = 0
    skipped_existing: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    no_hole: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    unmatched_images: list[str] = field(default_factory=list)
    unmatched_masks: list[str] = field(default_factory=list)
    masks_resized: int = 0
    masks_stretched: int = 0
    alpha_dropped: int = 0
    stale_temp_removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` summary, with ``images_per_second``."""
        data = {k: v for k, v in self.__dict__.items() if k != "seconds"}
        data["seconds"] = round(self.seconds, 3)
        rate = self.processed / self.seconds if self.seconds else 0.0
        data["images_per_second"] = round(rate, 3)
        return data


@dataclass
class _Job:
    """One result to make: ``image`` with ``mask`` (None: the shared mask) into ``target``."""

    image: Path
    mask: Path | None
    target: Path


@dataclass
class Loaded:
    """A job read and ready: pixels, hole, grey levels, metadata, and what the reading saw."""

    job: _Job
    image: np.ndarray
    hole: np.ndarray
    levels: np.ndarray
    info: ImageInfo
    resized: bool = False
    stretched: bool = False


@dataclass
class _Outcome:
    """What became of one job (made in a worker, counted on the main thread)."""

    job: _Job
    error: str | None = None
    has_hole: bool = True
    resized: bool = False
    stretched: bool = False
    had_alpha: bool = False
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, loaded: Loaded) -> _Outcome:
        """The summary of a job that was read (its pixels are not kept)."""
        return cls(
            loaded.job,
            has_hole=bool(loaded.hole.any()),
            resized=loaded.resized,
            stretched=loaded.stretched,
            had_alpha=loaded.info.had_alpha,
        )


# --------------------------------------------------------------------------- planning


def _is_within(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _check_folders(image_dir: Path, mask: Path, out_dir: Path) -> None:
    if not image_dir.is_dir():
        raise WmiError(f"{image_dir}: IMAGE_DIR is not a folder")
    if not mask.exists():
        raise WmiError(f"{mask}: MASK is neither a folder nor a file")
    for d in (image_dir, mask if mask.is_dir() else None):
        if d is not None and _is_within(out_dir, d):
            raise WmiError(f"{out_dir}: OUT_DIR must not be or lie inside input folder {d}")
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: OUT_DIR exists and is not a folder")


def _suffix(image: Path, fmt: OutputFormat) -> str:
    return image.suffix.lower() if fmt is OutputFormat.same else f".{fmt.value}"


def _pairs(
    image_dir: Path,
    mask: Path,
    patterns: Sequence[str],
    strict: bool,
    notify: Notify,
    shard: Shard,
) -> tuple[list[tuple[Path, list[Path | None]]], InpaintFolderResult]:
    """Each image with its masks (``[None]``: the one MASK file), and the unmatched files of
    ``shard`` (so that a shard does not name files that other shards are still writing)."""
    from wmi.io import format_names, list_images, pair_folders

    if mask.is_file():
        images = [p for p in list_images(image_dir) if p.resolve() != mask.resolve()]
        if not images:
            raise WmiError(f"{image_dir}: no image files found")
        return [(p, [None]) for p in images], InpaintFolderResult()
    # every_mask: LaMa's layout, an image with several masks gets one result per mask
    pairing = pair_folders(image_dir, mask, mask_patterns=patterns, every_mask=True)
    if not pairing.images:
        raise WmiError(f"{image_dir}: no image files found")
    tried = ", ".join(repr(p) for p in patterns)
    if not pairing.complete:
        raise WmiError(
            f"no image in {image_dir} ({pairing.images} files) matched a mask in {mask} "
            f"({pairing.masks} files); mask patterns tried: {tried}"
        )
    masks_of: dict[Path, list[Path | None]] = {}
    for paired in pairing.complete:
        masks_of.setdefault(paired.image, []).append(paired.mask)
    lonely = shard.take(pairing.images_without_mask, lambda p: p.stem)
    spare = shard.take(pairing.masks_without_image, lambda p: p.stem)
    result = InpaintFolderResult(
        unmatched_images=[str(p) for p in lonely], unmatched_masks=[str(p) for p in spare]
    )
    for what, paths in (("images without a mask", lonely), ("masks without an image", spare)):
        if paths and strict:
            raise WmiError(
                f"--strict: {what}: {len(paths)} ({format_names(paths)}); patterns: {tried}"
            )
        if paths:
            notify("warning", f"{what}: {len(paths)} ({format_names(paths)})")
    return list(masks_of.items()), result


def _jobs(
    pairs: Sequence[tuple[Path, list[Path | None]]], out_dir: Path, fmt: OutputFormat
) -> list[_Job]:
    """One job per mask: the image's name with one mask, each mask's name with several."""
    jobs: list[_Job] = []
    owners: dict[Path, Path] = {}
    for image, masks in pairs:
        for mask in masks:
            stem = image.stem if len(masks) == 1 or mask is None else mask.stem
            target = out_dir / f"{stem}{_suffix(image, fmt)}"
            if target in owners:
                raise WmiError(
                    f"{image}: its result {target.name} would overwrite the one of "
                    f"{owners[target].name}; use --format same or rename one"
                )
            owners[target] = image
            jobs.append(_Job(image, mask, target))
    return jobs


# ---------------------------------------------------------------------------- the work


def _read_levels(path: Path, options: FolderOptions) -> np.ndarray:
    from wmi.io import read_mask_levels

    return read_mask_levels(path, options.max_pixels)


def _load(job: _Job, shared: np.ndarray | None, options: FolderOptions) -> Loaded:
    """Read one job's image and mask, resize the mask (nearest), threshold and dilate."""
    from wmi.io import load_image

    image, info = load_image(job.image, options.max_pixels)
    levels = shared if job.mask is None else _read_levels(job.mask, options)
    assert levels is not None
    h, w = image.shape[:2]
    resized = levels.shape != (h, w)
    stretched = resized and abs(levels.shape[1] / levels.shape[0] - w / h) > 0.01 * w / h
    hole, levels = hole_of(levels, (h, w), options)
    if hole.all():
        raise WmiError(
            f"{job.mask or 'MASK'}: the hole covers all of {job.image.name}, nothing to keep"
        )
    return Loaded(job, image, hole, levels, info, resized, stretched)


def hole_of(
    levels: np.ndarray, size: tuple[int, int], options: FolderOptions
) -> tuple[np.ndarray, np.ndarray]:
    """A mask's uint8 grey levels ``(h, w)`` (255 = hole) as the image of ``size`` = (H, W)
    needs them: resized (nearest neighbour), thresholded and dilated as ``options`` say.

    Returns:
        ``(hole, levels)``: bool ``(H, W)``, True = hole, and the grey levels with dilated
        pixels at 255.
    """
    import cv2

    h, w = size
    if levels.shape != (h, w):
        levels = cv2.resize(levels, (w, h), interpolation=cv2.INTER_NEAREST)
    hole = levels > options.threshold
    if options.dilate:
        hole = dilate_hole_ellipse(hole, options.dilate)
        levels = np.where(hole & (levels <= options.threshold), np.uint8(255), levels)
    return hole, levels


def _write(target: Path, result: np.ndarray, info: ImageInfo, options: FolderOptions) -> list[str]:
    """Write one result; notes on metadata left out (see :func:`wmi.io.write_image`)."""
    from wmi.io import write_image

    return write_image(target, result, options.quality, PNG_LEVEL, info)


def _fill(model: Inpainter, batch: Sequence[Loaded], options: FolderOptions) -> list[np.ndarray]:
    return inpaint_images(
        [x.image for x in batch],
        [x.hole for x in batch],
        model,
        options.strategy,
        options.max_size,
        [x.levels for x in batch],
        options.blend,
        options.real_validity,
    )


def _one(
    job: _Job, model: Inpainter, shared: np.ndarray | None, options: FolderOptions
) -> _Outcome:
    """Read, inpaint and write one job (a worker thread's whole task for classical methods)."""
    try:
        loaded = _load(job, shared, options)
        result = _fill(model, [loaded], options)[0]
        outcome, info = _Outcome.of(loaded), loaded.info
        del loaded  # the input's pixels go before the encoder's copy of the result comes
        outcome.notes = _write(job.target, result, info, options)
    except WmiError as exc:
        return _Outcome(job, str(exc))
    return outcome


def _per_image(
    pool: ThreadPoolExecutor,
    todo: Sequence[_Job],
    model: Inpainter,
    shared: np.ndarray | None,
    options: FolderOptions,
    workers: int,
) -> Iterator[_Outcome]:
    """Every job as one task, at most ``2 * workers`` in flight (memory stays bounded)."""
    pending: deque[Future[_Outcome]] = deque()
    for job in todo:
        pending.append(pool.submit(_one, job, model, shared, options))
        if len(pending) >= 2 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _try_load(job: _Job, shared: np.ndarray | None, options: FolderOptions) -> Loaded | _Outcome:
    """The job read, or the outcome of a job that could not be."""
    try:
        return _load(job, shared, options)
    except WmiError as exc:
        return _Outcome(job, str(exc))


def _batched(
    pool: ThreadPoolExecutor,
    todo: Sequence[_Job],
    model: Inpainter,
    shared: np.ndarray | None,
    options: FolderOptions,
    batch: int,
) -> Iterator[_Outcome]:
    """A network's batches on this thread; meanwhile the pool decodes the next batch and
    writes the previous one."""
    chunks = [todo[i : i + batch] for i in range(0, len(todo), batch)]
    ahead = [pool.submit(_try_load, job, shared, options) for job in chunks[0]] if chunks else []
    writing: list[tuple[Loaded, Future[list[str]]]] = []
    for k in range(len(chunks)):
        read = [f.result() for f in ahead]
        nxt = chunks[k + 1] if k + 1 < len(chunks) else []
        ahead = [pool.submit(_try_load, job, shared, options) for job in nxt]
        ready = [x for x in read if isinstance(x, Loaded)]
        results = _fill(model, ready, options) if ready else []
        yield from (_written(x, f) for x, f in writing)
        writing = [
            (x, pool.submit(_write, x.job.target, r, x.info, options))
            for x, r in zip(ready, results, strict=True)
        ]
        yield from (x for x in read if isinstance(x, _Outcome))
    yield from (_written(x, f) for x, f in writing)


def _written(loaded: Loaded, write: Future[list[str]]) -> _Outcome:
    """The outcome of ``loaded`` once its write finished (a failed write is its error)."""
    try:
        notes = write.result()
    except WmiError as exc:
        return _Outcome(loaded.job, str(exc))
    outcome = _Outcome.of(loaded)
    outcome.notes = notes
    return outcome


def _count(
    outcome: _Outcome, result: InpaintFolderResult, options: FolderOptions, notify: Notify
) -> None:
    job = outcome.job
    for note in outcome.notes:
        notify("warning", note)
    if outcome.error is not None:
        notify("error", f"{outcome.error} (skipped)")
        result.failed.append({"image": str(job.image), "error": outcome.error})
        return
    result.masks_resized += outcome.resized
    result.masks_stretched += outcome.stretched
    result.alpha_dropped += outcome.had_alpha
    if not outcome.has_hole:
        notify(
            "warning",
            f"{job.mask or 'MASK'}: no hole (no pixel above {options.threshold}) for "
            f"{job.image.name}; written unchanged",
        )
        result.no_hole.append(str(job.image))
    else:
        result.processed += 1


def _notes(result: InpaintFolderResult, single: bool, notify: Notify) -> None:
    """The once-per-run notes: resized masks, dropped alpha, removed temporary files."""
    if result.masks_resized:
        what = "the mask was resized for" if single else "masks resized to the size of"
        stretched = (
            f" ({result.masks_stretched} of them stretched to another aspect ratio)"
            if result.masks_stretched
            else ""
        )
        notify("info", f"{what} {result.masks_resized} images (nearest neighbour){stretched}")
    if result.alpha_dropped:
        notify("info", f"dropped the alpha channel of {result.alpha_dropped} images")


def _skip_existing(
    jobs: Sequence[_Job],
    overwrite: bool,
    options: FolderOptions,
    pool: ThreadPoolExecutor,
    result: InpaintFolderResult,
    notify: Notify,
) -> list[_Job]:
    """The jobs to do: all with ``overwrite``, else those without a sound result."""
    existing = [j for j in jobs if not overwrite and j.target.exists()]
    checks = pool.map(lambda j: result_ok(j.image, j.target, options.max_pixels), existing)
    sound = dict(zip(map(id, existing), checks, strict=True))
    todo = []
    for job in jobs:
        if id(job) not in sound:
            todo.append(job)
        elif sound[id(job)]:
            result.skipped_existing += 1
        else:
            notify("warning", f"{job.target}: an earlier result does not decode; making it again")
            result.redone.append(str(job.target))
            todo.append(job)
    return todo


def _prepare(
    image_dir: Path,
    mask: Path,
    out_dir: Path,
    patterns: Sequence[str],
    options: FolderOptions,
    strict: bool,
    notify: Notify,
    shard: Shard,
) -> tuple[list[_Job], InpaintFolderResult, np.ndarray | None]:
    """Every check that can fail before anything is written; the jobs (of ``shard``'s images)
    and the shared mask."""
    options.check()
    _check_folders(image_dir, mask, out_dir)
    shared = None
    if mask.is_file():
        shared = _read_levels(mask, options)
        if (shared > options.threshold).all():
            raise WmiError(f"{mask}: every pixel is hole (above {options.threshold})")
        if not (shared > options.threshold).any():
            raise WmiError(f"{mask}: no hole (no pixel above {options.threshold})")
    pairs, result = _pairs(image_dir, mask, patterns, strict, notify, shard)
    # every image's results are checked for clashes, then the shard keeps its own images
    jobs = _jobs(pairs, out_dir, OutputFormat(options.fmt))
    return shard.take(jobs, lambda job: job.image.stem), result, shared


def inpaint_folder(
    image_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    inpainter: Any,
    *,
    mask_patterns: Sequence[str] | None = None,
    options: FolderOptions | None = None,
    overwrite: bool = False,
    strict: bool = False,
    radius: int = 3,
    record: Mapping[str, Any] | None = None,
    shard: Shard | None = None,
    progress: Progress | None = None,
    notify: Notify | None = None,
    **settings: Any,
) -> InpaintFolderResult:
    """Inpaint every image of ``image_dir`` that has a mask into ``out_dir``.

    ``mask_dir`` is a folder (files pair by stem, :func:`wmi.io.pair_folders`; an image with
    several masks, LaMa's ``x_mask000.png``, ``x_mask001.png``, gets one result per mask,
    named after the mask) or one mask file for every image. A mask of another size is resized
    to its image (nearest neighbour; counted and said once). Existing results that decode are
    skipped unless ``overwrite``; every result is written atomically (PNG: pixels outside the
    hole exact), with the input's EXIF, ICC profile and DPI. A file that cannot be read, a
    mask that covers its whole image, or one over the pixel limit is reported through
    ``notify("error", ...)`` and listed in ``failed``; the others are still written.

    Args:
        inpainter: see :func:`as_inpainter` (an inpainter, a method name, a loaded model, or
            a zero-argument callable returning one).
        mask_patterns: mask file names for ``{stem}`` (default ``{stem}.png``,
            ``{stem}_mask*.png``).
        options: a :class:`FolderOptions`; or give its fields as keywords (``settings``).
        strict: an unmatched image or mask is an error before anything is written.
        radius: of a classical method given by name.
        record: what makes the results (method or checkpoint and the settings that change
            pixels), stored in ``out_dir/.wmi-inpaint.json``; an ``out_dir`` made with a
            different record is refused unless ``overwrite``. Default for a method name:
            the method, ``radius`` and :func:`output_settings`; otherwise no record is kept.
            A run that changes the record marks it "in progress" until it is done (see
            :mod:`wmi.inpaint.record`).
        shard: do only the images of this shard (:class:`wmi.procs.Shard`, by the image's
            stem; all of an image's masks go with it). The shards of one job may write
            ``out_dir`` at once; together they write what one run writes.
        progress: ``progress(done, total)``, see :data:`wmi.progress.Progress`.
        notify: ``notify(level, message)`` for notes, warnings and per-file errors.

    Raises:
        WmiError: a folder is missing, OUT_DIR lies inside an input, nothing pairs, two jobs
            would write one result, OUT_DIR holds another method's results (or an interrupted
            run's), another process is writing OUT_DIR (or this shard of it), an option is out
            of range, the one mask file is unreadable or selects all or nothing, or
            (``strict``) something is unmatched.
        OSError: OUT_DIR cannot be written, or the disk is full (naming the result file).
    """
    options = options or FolderOptions(**settings)
    notify = notify or (lambda level, message: None)
    progress = progress or (lambda done, total: None)
    image_dir, mask, out = Path(image_dir), Path(mask_dir), Path(out_dir)
    patterns = tuple(mask_patterns or DEFAULT_MASK_PATTERNS)
    shard = shard or Shard()
    jobs, result, shared = _prepare(image_dir, mask, out, patterns, options, strict, notify, shard)
    if record is None and isinstance(inpainter, str):
        record = {"method": inpainter, "radius": radius, **output_settings(options)}
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with shard_lock(out, shard, BUSY):
            given = _Given(inpainter, radius, record, overwrite)
            _work(out, jobs, shared, given, options, result, progress, notify)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if nothing was written
        raise
    _notes(result, shared is not None, notify)
    return result


def output_settings(options: FolderOptions) -> dict[str, Any]:
    """The part of OUT_DIR's record that the output options make: the format, and the quality
    where the format is lossy (or ``same``, which may be)."""
    fmt = OutputFormat(options.fmt)
    if fmt is OutputFormat.png:
        return {"format": fmt.value}
    return {"format": fmt.value, "quality": options.quality}


@dataclass
class _Given:
    """What makes the results: the inpainter as given, and OUT_DIR's record of it."""

    inpainter: Any
    radius: int
    record: Mapping[str, Any] | None
    overwrite: bool


def _work(
    out: Path,
    jobs: Sequence[_Job],
    shared: np.ndarray | None,
    given: _Given,
    options: FolderOptions,
    result: InpaintFolderResult,
    progress: Progress,
    notify: Notify,
) -> None:
    """Everything that happens in OUT_DIR, under its lock.

    A run that changes the record writes it "in progress" first and the record itself only
    once every job was done (or failed); an interrupted run leaves "in progress", so the next
    run neither trusts another method's results nor claims them.
    """
    record, overwrite = given.record, given.overwrite
    write, replacing = (False, False)
    if record is not None:
        write, replacing = check_record(out, record, overwrite, notify)
    workers = options.workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers, thread_name_prefix="wmi-inpaint") as pool:
        result.stale_temp_removed = remove_stale_temps(out, (j.target for j in jobs))
        if result.stale_temp_removed:
            notify(
                "info", f"removed {result.stale_temp_removed} temporary files of an interrupted run"
            )
        todo = _skip_existing(jobs, overwrite or replacing, options, pool, result, notify)
        model = as_inpainter(given.inpainter, given.radius)
        if write and record is not None:
            write_record(out, {**record, STATE: IN_PROGRESS, REPLACING: replacing})
        _run(pool, todo, model, shared, options, workers, result, progress, notify, replacing)
    if write and record is not None:
        write_record(out, record)


def _run(
    pool: ThreadPoolExecutor,
    todo: Sequence[_Job],
    model: Inpainter,
    shared: np.ndarray | None,
    options: FolderOptions,
    workers: int,
    result: InpaintFolderResult,
    progress: Progress,
    notify: Notify,
    replacing: bool = False,
) -> None:
    """Do ``todo``: per image in the pool, or in a network's batches.

    ``replacing``: the results are another record's; a job that fails removes its old result
    (the folder's record will not be true of it).
    """
    start = time.perf_counter()
    progress(0, len(todo))
    batch_size = getattr(model, "batch_size", 0)  # a network: batches of images per pass
    if batch_size:
        outcomes = _batched(pool, todo, model, shared, options, batch_size)
    else:
        outcomes = _per_image(pool, todo, model, shared, options, workers)
    for done, outcome in enumerate(outcomes, 1):
        _count(outcome, result, options, notify)
        if replacing and outcome.error is not None:
            outcome.job.target.unlink(missing_ok=True)
        progress(done, len(todo))
    result.seconds = time.perf_counter() - start


def read_pair(
    image_path: str | os.PathLike[str], mask_path: str | os.PathLike[str], options: FolderOptions
) -> Loaded:
    """Read one image and its mask as :func:`inpaint_folder` does (``wmi inpaint image``).

    Raises:
        WmiError: a file is unreadable or over the pixel limit, or the hole covers the whole
            image.
    """
    return _load(_Job(Path(image_path), Path(mask_path), Path()), None, options)
