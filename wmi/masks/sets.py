"""Mask sets on disk: numbered PNGs, ``manifest.csv`` and ``preview.png``, and their statistics.

:func:`write_mask_set` is what ``wmi masks generate`` and ``wmi demo`` call: it draws every
mask of a :class:`MaskSetSpec` (in worker processes if asked; the files do not depend on how
many), writes them with the manifest and the preview into a hidden staging folder, and moves
the complete set into place. :func:`mask_folder_stats` is ``wmi masks stats``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from wmi.errors import WmiError
from wmi.io import MASK_SET_PREVIEW, atomic_path, read_mask
from wmi.kinds import DEFAULT_MAX_PIXELS, MASK_KINDS, MASK_THRESHOLD, MAX_MASKS, MaskKind
from wmi.masks.generators import (
    BUCKET_LABELS,
    IRREGULAR_BUCKETS,
    MIN_SIZE,
    _kinds_with,
    generate,
    hole_ratio,
    hole_ratio_bucket,
    rng_for,
    touches_border,
)
from wmi.masks.targets import MaskTarget, rng_for_name
from wmi.procs import folder_lock, starting_workers, worker_init

#: Masks per task handed to a worker process.
CHUNK = 64
#: Masks shown in preview.png.
PREVIEW_COUNT = 64
#: Largest tile side in preview.png, pixels.
PREVIEW_TILE = 128
#: The set's manifest, one row per mask, written last.
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "kind", "seed", "hole_ratio", "bucket", "touches_border")
#: A mask file a manifest may list: a plain, visible ``.png`` name.
_MASK_NAME = re.compile(r"^[^./\\][^/\\]*\.png$")
#: Prefix of the hidden staging folder a run writes its set into.
STAGING_PREFIX = ".wmi-masks-"
BUSY = "another wmi masks generate is writing here; wait for it to finish or choose another folder"

#: ``progress(done, total)``: masks written so far and in all.
Progress = Callable[[int, int], None]


def mask_filename(index: int) -> str:
    """File name of mask ``index`` in a generated set: ``000000.png``, ``000001.png``, ..."""
    return f"{index:06d}.png"


def irregular_plan(count: int, touches_border: bool | None = None) -> list[tuple[str, bool]]:
    """Bucket and border condition of each mask of an NVIDIA-style irregular test set.

    The set is split into six equal blocks, one per bucket in :data:`IRREGULAR_BUCKETS`
    order; with ``touches_border`` None the first half of each block touches the border and
    the second half does not.

    Raises:
        WmiError: ``count`` is not a multiple of 12 (6 with a fixed border condition).
    """
    unit = 6 if touches_border is not None else 12
    if count <= 0 or count % unit:
        need = "6" if touches_border is not None else "12 (6 buckets, with and without border)"
        raise WmiError(f"--count must be a positive multiple of {need} with --buckets, got {count}")
    return [_plan_entry(count, touches_border, i) for i in range(count)]


def _plan_entry(count: int, touches_border: bool | None, index: int) -> tuple[str, bool]:
    per_bucket = count // 6
    label = IRREGULAR_BUCKETS[index // per_bucket]
    if touches_border is None:
        return label, (index % per_bucket) < per_bucket // 2
    return label, touches_border


@dataclass(frozen=True)
class MaskSetSpec:
    """Everything that determines a mask set; mask ``i`` depends only on this and ``i``.

    Attributes:
        kind: a kind registered in :data:`wmi.kinds.MASK_KINDS`.
        height, width: mask size.
        count: number of masks.
        seed: base seed, >= 0; mask ``i`` uses :func:`rng_for` ``(seed, i)``.
        training: kinds with a training variant only (freeform), see
            :func:`~wmi.masks.freeform`.
        buckets: bucketed kinds only (irregular): equal counts per bucket as
            :func:`irregular_plan`.
        touches_border: border condition for every mask, or None.
        targets: a set made for images (:meth:`for_images`): mask ``i`` is
            ``targets[i].filename`` at that target's size, drawn from :func:`rng_for_name`;
            ``height`` and ``width`` are then unused (0).
    """

    kind: str
    height: int
    width: int
    count: int
    seed: int = 0
    training: bool = False
    buckets: bool = False
    touches_border: bool | None = None
    targets: tuple[MaskTarget, ...] = ()

    @classmethod
    def for_images(
        cls,
        kind: str,
        targets: Sequence[MaskTarget],
        seed: int = 0,
        training: bool = False,
        buckets: bool = False,
        touches_border: bool | None = None,
    ) -> MaskSetSpec:
        """A set with one mask per image (see :mod:`wmi.masks.targets`).

        ``buckets`` is refused by :meth:`validate`: the bucketed kinds draw each image's
        bucket from its seed, which spreads the buckets over the images.
        """
        targets = tuple(targets)
        return cls(kind, 0, 0, len(targets), seed, training, buckets, touches_border, targets)

    def filename(self, index: int) -> str:
        """File name of mask ``index``: ``000000.png``, ... or the image's ``{stem}.png``."""
        return self.targets[index].filename if self.targets else mask_filename(index)

    def shape(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of mask ``index``."""
        if self.targets:
            return self.targets[index].height, self.targets[index].width
        return self.height, self.width

    def validate(self, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """Check the options before anything is written.

        Args:
            max_pixels: the most pixels of one mask of a sized set (0 = no limit); the same
                limit as the images that masks are made for.

        Raises:
            WmiError: a count, size, kind or option combination that cannot work.
        """
        try:
            entry = MASK_KINDS[self.kind]
        except WmiError as exc:
            raise WmiError(f"--kind: {exc}") from None
        if self.seed < 0:
            raise WmiError(f"--seed must be >= 0, got {self.seed}")
        if not self.targets and self.count <= 0:
            raise WmiError(f"--count must be at least 1, got {self.count}")
        if not self.targets and self.count > MAX_MASKS:
            raise WmiError(f"--count must be at most {MAX_MASKS:,}, got {self.count}")
        if self.targets and self.count != len(self.targets):
            raise WmiError(f"--count {self.count} with {len(self.targets)} images (--for)")
        if not self.targets and (self.height < MIN_SIZE or self.width < MIN_SIZE):
            raise WmiError(
                f"--size/--height/--width must be at least {MIN_SIZE}, "
                f"got {self.height}x{self.width}"
            )
        if not self.targets and 0 < max_pixels < self.height * self.width:
            raise WmiError(
                f"--size/--height/--width: {self.height}x{self.width} masks are "
                f"{self.height * self.width:,} pixels, over --max-pixels {max_pixels:,}"
            )
        if self.training and not entry.training:
            takes = _kinds_with("training")
            raise WmiError(f"--training applies to --kind {takes} only, not {self.kind}")
        if self.buckets and self.targets:
            raise WmiError(
                "--buckets lays out a numbered set; with --for, each image's bucket is drawn "
                "from its name's seed, which spreads the buckets over the images"
            )
        if self.buckets:
            if not entry.bucketed:
                takes = _kinds_with("bucketed")
                raise WmiError(f"--buckets applies to --kind {takes} only, not {self.kind}")
            irregular_plan(self.count, self.touches_border)
        if self.kind == "center" and self.touches_border:
            raise WmiError("--border: center masks never touch the image border")

    @property
    def label(self) -> str:
        """The kind as written to the manifest ("freeform+box" for the training variant)."""
        return f"{self.kind}+box" if self.training else self.kind

    def make(self, index: int) -> np.ndarray:
        """Mask number ``index`` of the set, bool ``(height, width)``, True = hole."""
        if self.targets:
            rng = rng_for_name(self.seed, self.targets[index].stem)
        else:
            rng = rng_for(self.seed, index)
        bucket, border = None, self.touches_border
        if self.buckets:
            bucket, border = _plan_entry(self.count, self.touches_border, index)
        return generate(
            self.kind,
            *self.shape(index),
            rng,
            training=self.training,
            bucket=bucket,
            touches_border=border,
        )


@dataclass(frozen=True)
class MaskRecord:
    """What the manifest says about one mask, and its ``(height, width)``."""

    index: int
    hole_ratio: float
    touches_border: bool
    shape: tuple[int, int]


def write_mask_files(
    spec: MaskSetSpec,
    out_dir: str | os.PathLike[str],
    indices: Sequence[int],
    kind: MaskKind | None = None,
) -> list[MaskRecord]:
    """Make masks ``indices`` of ``spec`` and write them to ``out_dir`` (atomically).

    Files are 8-bit single-channel PNGs, 255 = hole, 0 = known, as ``wmi.io.write_mask``
    writes them, but encoded by OpenCV, which is about four times faster than Pillow here.
    A module-level function so that worker processes can run it.

    Args:
        kind: the registry entry of ``spec.kind``, registered here if this process does not
            know it (a kind registered at run time, in a fresh worker process).
    """
    if kind is not None and kind.name not in MASK_KINDS:
        MASK_KINDS.register(dataclasses.replace(kind, options=MappingProxyType(dict(kind.options))))
    out_dir = Path(out_dir)
    records = []
    for index in indices:
        hole = spec.make(index)
        encode_ok, png = cv2.imencode(".png", hole.astype(np.uint8) * 255)
        if not encode_ok:  # pragma: no cover - OpenCV fails only on invalid input
            raise RuntimeError(f"OpenCV could not encode mask {index} as PNG")
        with atomic_path(out_dir / spec.filename(index)) as tmp:
            tmp.write_bytes(png.tobytes())
        records.append(MaskRecord(index, hole_ratio(hole), touches_border(hole), hole.shape))
    return records


# ------------------------------------------------------------------------------ a whole set


@dataclass(frozen=True)
class MaskSetResult:
    """What :func:`write_mask_set` wrote.

    Attributes:
        out_dir: the folder holding the set.
        spec: the set's specification.
        records: one per mask, in index order (as in ``manifest.csv``).
        workers: worker processes used (1: none, the masks were drawn in this process).
        seconds: time spent drawing and writing the masks (not the preview and manifest).
        stale_masks_removed: masks of an earlier set beyond ``spec.count`` that were removed.
    """

    out_dir: Path
    spec: MaskSetSpec
    records: tuple[MaskRecord, ...]
    workers: int
    seconds: float
    stale_masks_removed: int

    def summary(self) -> dict[str, Any]:
        """:func:`mask_set_stats` of the set plus where, what and how fast (``--json``)."""
        summary = mask_set_stats(
            [r.hole_ratio for r in self.records],
            [r.touches_border for r in self.records],
            [r.shape for r in self.records],
        )
        count, seconds = len(self.records), self.seconds
        summary.update(
            out_dir=str(self.out_dir),
            kind=self.spec.label,
            seed=self.spec.seed,
            workers=self.workers,
            seconds=round(seconds, 3),
            masks_per_second=round(count / seconds, 1) if seconds > 0 else None,
            stale_masks_removed=self.stale_masks_removed,
        )
        return summary


def write_mask_set(
    out_dir: str | os.PathLike[str],
    spec: MaskSetSpec,
    *,
    overwrite: bool = False,
    workers: int = 0,
    progress: Progress | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> MaskSetResult:
    """Write the mask set ``spec`` to ``out_dir``: masks, ``manifest.csv`` and ``preview.png``.

    The set is written to a hidden ``.wmi-masks-*`` folder inside ``out_dir`` and moved into
    place only when complete, the manifest last, so a failed run leaves an earlier set as it
    was (and removes ``out_dir`` if it created it). The folder is locked while a run writes
    it; staging folders left by a killed run are removed by the next one.

    Args:
        out_dir: the folder; created if missing. A non-empty folder needs ``overwrite``.
        spec: what to draw (checked with :meth:`MaskSetSpec.validate` first).
        overwrite: replace the set an earlier call wrote there: remove the files its
            ``manifest.csv`` lists, its preview and manifest, and leave other files alone.
        workers: worker processes (spawned); 0 = one per CPU core. The files do not depend
            on it. Kinds registered at run time are handed to the workers, so their
            generators must be picklable (module-level functions or references).
        progress: called as ``progress(done, total)`` with the number of masks written.
        max_pixels: the most pixels of one mask (0 = no limit; see :meth:`MaskSetSpec.validate`).

    Raises:
        WmiError: bad options, ``out_dir`` is a file, not empty without ``overwrite``, holds
            no set written by wmi (with ``overwrite``), another run is writing it, or a mask
            cannot be drawn.
    """
    spec.validate(max_pixels)
    if workers < 0:
        raise WmiError(f"--workers must be >= 0, got {workers}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: exists and is not a folder")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    n_workers = min(workers or os.cpu_count() or 1, math.ceil(spec.count / CHUNK))
    with folder_lock(out_dir, BUSY):
        _remove_stale_staging(out_dir)
        try:
            old_files = _claim(out_dir, spec, overwrite)
        except WmiError:
            _discard(None, out_dir if created else None)
            raise
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
        start = time.perf_counter()
        try:
            records = _write_all(spec, staging, n_workers, progress)
            seconds = time.perf_counter() - start
            _write_preview(staging, spec, records)
            _write_manifest(staging, spec, records)
        except BaseException:
            _discard(staging, out_dir if created else None)
            raise
        removed = _commit(staging, out_dir, spec, old_files)
    return MaskSetResult(out_dir, spec, tuple(records), n_workers, seconds, removed)


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove the staging folders of killed runs (the caller holds the folder's lock)."""
    for entry in out_dir.iterdir():
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)


def _claim(out_dir: Path, spec: MaskSetSpec, overwrite: bool) -> list[str]:
    """Check that a set may be written to ``out_dir``; returns the earlier set's files."""
    existing = {p.name for p in out_dir.iterdir()}
    if existing and not overwrite:
        raise WmiError(
            f"{out_dir}: folder is not empty ({len(existing)} entries); "
            "pass --overwrite or choose another folder"
        )
    return _previous_set(out_dir, spec, existing) if existing else []


def _write_all(
    spec: MaskSetSpec, out_dir: Path, n_workers: int, progress: Progress | None
) -> list[MaskRecord]:
    """Write all masks of ``spec``; returns their records in index order."""
    chunks = [range(i, min(i + CHUNK, spec.count)) for i in range(0, spec.count, CHUNK)]
    records: list[MaskRecord] = []
    report = progress or (lambda done, total: None)
    report(0, spec.count)
    if n_workers <= 1:
        for chunk in chunks:
            records += write_mask_files(spec, out_dir, chunk)
            report(len(records), spec.count)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # picklable: a MappingProxyType is not
        entry = MASK_KINDS[spec.kind]
        entry = dataclasses.replace(entry, options=dict(entry.options))
        # spawn: a clean interpreter per worker, safe whatever threads the parent runs; each
        # worker exits when this process does (wmi.procs)
        context = multiprocessing.get_context("spawn")
        init = {"initializer": worker_init, "initargs": (os.getpid(),)}
        with ProcessPoolExecutor(n_workers, mp_context=context, **init) as pool:
            with starting_workers():  # the workers start at the first submit
                futures = [pool.submit(write_mask_files, spec, out_dir, c, entry) for c in chunks]
            try:
                for future in as_completed(futures):
                    records += future.result()
                    report(len(records), spec.count)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return sorted(records, key=lambda r: r.index)


def _previous_set(out_dir: Path, spec: MaskSetSpec, existing: set[str]) -> list[str]:
    """The mask files that ``overwrite`` may replace or remove in ``out_dir``.

    Args:
        out_dir: a non-empty folder.
        spec: the new set; its masks are :meth:`MaskSetSpec.filename` of ``range(count)``.
        existing: names of the entries in ``out_dir``.

    Returns:
        The file names listed in the earlier run's ``manifest.csv``.

    Raises:
        WmiError: ``out_dir`` holds no mask set written by :func:`write_mask_set` (no
            readable ``manifest.csv`` with its columns and plain ``.png`` file names), or a
            file of the new set would replace a file that set does not list.
    """
    manifest = out_dir / MANIFEST
    try:
        with open(manifest, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    files = [row[0] if row else "" for row in rows[1:]]
    if not rows or tuple(rows[0]) != MANIFEST_COLUMNS or not all(map(_MASK_NAME.match, files)):
        raise WmiError(
            f"{out_dir}: not a mask set written by wmi (no valid {MANIFEST}); --overwrite "
            "only replaces such a set, choose an empty folder"
        )
    owned = set(files) | {MANIFEST, MASK_SET_PREVIEW}
    for index in range(spec.count):
        name = spec.filename(index)
        if name in existing and name not in owned:
            raise WmiError(
                f"{out_dir / name}: not listed in {manifest}; --overwrite will not replace it"
            )
    return files


def _discard(staging: Path | None, created: Path | None) -> None:
    """After a failed run: remove its staging folder (and ``created``, the folder it made)."""
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    if created is not None:
        with contextlib.suppress(OSError):
            created.rmdir()


def _commit(staging: Path, out_dir: Path, spec: MaskSetSpec, old_files: Sequence[str]) -> int:
    """Move a complete set from ``staging`` into ``out_dir``, replacing the earlier set.

    The earlier manifest goes first and the new one comes last, so the folder never looks
    complete while it mixes the two sets. Returns how many of the earlier set's masks
    (those beyond the new ``count``) were removed.
    """
    with contextlib.suppress(FileNotFoundError):
        (out_dir / MANIFEST).unlink()
    new_files = [spec.filename(index) for index in range(spec.count)]
    keep = set(new_files)
    removed = 0
    for name in old_files:
        if name not in keep:
            with contextlib.suppress(FileNotFoundError):
                (out_dir / name).unlink()
                removed += 1
    for name in new_files:
        os.replace(staging / name, out_dir / name)
    os.replace(staging / MASK_SET_PREVIEW, out_dir / MASK_SET_PREVIEW)
    os.replace(staging / MANIFEST, out_dir / MANIFEST)
    staging.rmdir()
    return removed


def _write_preview(out_dir: Path, spec: MaskSetSpec, records: Sequence[MaskRecord]) -> None:
    from wmi.io.preview import save_contact_sheet

    tiles, labels = [], []
    for record in records[:PREVIEW_COUNT]:
        hole = read_mask(out_dir / spec.filename(record.index))
        step = math.ceil(max(hole.shape) / PREVIEW_TILE)
        tiles.append(hole[::step, ::step])
        name = spec.targets[record.index].stem[:12] if spec.targets else str(record.index)
        labels.append(f"{name} {100 * record.hole_ratio:.0f}%")
    save_contact_sheet(out_dir / MASK_SET_PREVIEW, tiles, labels=labels, columns=8)


def _write_manifest(out_dir: Path, spec: MaskSetSpec, records: Sequence[MaskRecord]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for r in records:
        writer.writerow(
            (
                spec.filename(r.index),
                spec.label,
                spec.seed,
                f"{r.hole_ratio:.6f}",
                hole_ratio_bucket(r.hole_ratio),
                "true" if r.touches_border else "false",
            )
        )
    with atomic_path(out_dir / MANIFEST) as tmp:
        # file names are bytes: one that is not UTF-8 is kept as it is on disk
        tmp.write_text(buffer.getvalue(), encoding="utf-8", errors="surrogateescape")


# ------------------------------------------------------------------------------- statistics


def mask_set_stats(
    hole_ratios: Sequence[float],
    border_flags: Sequence[bool],
    sizes: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    """The statistics ``wmi masks generate`` and ``wmi masks stats`` report.

    Args:
        hole_ratios: one ratio in [0, 1] per mask.
        border_flags: per mask, whether it touches the border.
        sizes: per mask ``(height, width)``; may be empty.

    Returns:
        A JSON-ready dict: ``count``; ``buckets`` (label -> count, every label of
        :data:`BUCKET_LABELS` in order); ``hole_ratio`` with ``mean``, ``min``, ``max``
        (None for an empty set); ``touches_border`` (count); ``sizes`` ("HxW" -> count).
    """
    buckets = dict.fromkeys(BUCKET_LABELS, 0)
    for ratio in hole_ratios:
        buckets[hole_ratio_bucket(ratio)] += 1
    size_counts: dict[str, int] = {}
    for h, w in sizes:
        size_counts[f"{h}x{w}"] = size_counts.get(f"{h}x{w}", 0) + 1
    n = len(hole_ratios)
    return {
        "count": n,
        "buckets": buckets,
        "hole_ratio": {
            "mean": float(np.mean(hole_ratios)) if n else None,
            "min": float(np.min(hole_ratios)) if n else None,
            "max": float(np.max(hole_ratios)) if n else None,
        },
        "touches_border": int(sum(bool(b) for b in border_flags)),
        "sizes": size_counts,
    }


@dataclass(frozen=True)
class MaskFolderStats:
    """What :func:`mask_folder_stats` found.

    Attributes:
        summary: :func:`mask_set_stats` of the masks with a hole plus ``mask_dir``,
            ``skipped`` (the unreadable files' paths) and ``empty`` (the paths of masks that
            select nothing), as ``wmi masks stats --json`` prints it.
        problems: one message per unreadable file, naming it.
        empty: one message per readable mask without a hole pixel, naming it.
    """

    summary: dict[str, Any]
    problems: tuple[str, ...]
    empty: tuple[str, ...] = ()


def mask_folder_stats(
    mask_dir: str | os.PathLike[str], *, progress: Progress | None = None
) -> MaskFolderStats:
    """Statistics of a folder of masks from any tool (white > 127 = hole).

    Reads every ``*.png`` in ``mask_dir``, not sub-folders and not hidden files; a
    ``preview.png`` is left out. An unreadable file (any per-file :class:`WmiError` of the
    reader: damaged, a photograph, a decompression bomb) is skipped and named in
    ``problems``; a mask that selects nothing is left out of the statistics and named in
    ``empty``.

    Args:
        progress: called as ``progress(done, total)`` with the number of files read.

    Raises:
        WmiError: no such folder, no PNG files, or none of them a readable mask with a hole.
    """
    mask_dir = Path(mask_dir)
    if not mask_dir.is_dir():
        raise WmiError(f"{mask_dir}: no such folder")
    files = sorted(
        p
        for p in mask_dir.iterdir()
        if p.suffix.lower() == ".png"
        and p.is_file()
        and not p.name.startswith(".")
        and p.name != MASK_SET_PREVIEW
    )
    if not files:
        raise WmiError(f"{mask_dir}: no PNG files to read")
    ratios: list[float] = []
    borders: list[bool] = []
    sizes: list[tuple[int, int]] = []
    skipped: list[str] = []
    problems: list[str] = []
    empty: list[str] = []
    for done, path in enumerate(files, start=1):
        try:
            hole = read_mask(path)
        except WmiError as exc:
            problems.append(str(exc))
            skipped.append(str(path))
        else:
            if not hole.any():
                empty.append(str(path))
            else:
                ratios.append(hole_ratio(hole))
                borders.append(touches_border(hole))
                sizes.append(hole.shape)
        if progress is not None:
            progress(done, len(files))
    if not ratios:
        what = "a readable mask with a hole" if empty else "readable as a mask"
        raise WmiError(f"{mask_dir}: none of the {len(files)} PNG files is {what}")
    summary = mask_set_stats(ratios, borders, sizes)
    summary.update(mask_dir=str(mask_dir), skipped=skipped, empty=empty)
    notes = tuple(f"{p}: selects nothing (no pixel brighter than {MASK_THRESHOLD} in grey; "
                  "colour and alpha are not read); left out" for p in empty)  # fmt: skip
    return MaskFolderStats(summary, tuple(problems), notes)
