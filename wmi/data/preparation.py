"""``wmi data prepare``: a folder of images to HDF5 shards ``OUT_DIR/{train,val,test}-NNNNN.h5``.

Each image is made what its preset (:data:`wmi.kinds.PRESETS`) stores (a square, CelebA's
256 x 313, or the unscaled centre of the image),
the files are assigned to train/val/test from a seed, and each shard is written under a
temporary name and renamed when complete (see :mod:`wmi.data.shards` for the format), so an
interrupted run never leaves a truncated shard. ``OUT_DIR/prepare.json`` (written first)
records the options, so a re-run with the same options resumes and keeps the shards already
written. ``OUT_DIR/manifest.json`` (written last) has the counts per split and every skipped
file.

This module never imports torch, so the decode workers start quickly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wmi.data.shards import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    OPTIONS_NAME,
    PREVIEW_NAME,
    SHARD_RE,
    SPLITS,
    TEMP_RE,
    VARIABLE_FORMAT_VERSION,
    ShardInfo,
    shard_info,
    shard_path,
    write_shard,
)
from wmi.errors import WmiError
from wmi.io import atomic_path, list_images, open_rgb
from wmi.kinds import COMPRESSIONS, MAX_SIDE, PRESETS, SEED_MAX, Preset
from wmi.procs import Shard, folder_lock, starting_workers, worker_init

DEFAULT_SPLIT = (0.7, 0.15, 0.15)
#: Smallest ``--size``: the smallest mask any mask kind draws (:data:`wmi.masks.MIN_SIZE`).
MIN_SIZE = 16
#: The most the long side of an image may exceed its short side (presets without an aspect):
#: 16:1 keeps every panorama; beyond it the centre square is a sliver of the image.
MAX_ASPECT = 16
#: Room a shard needs besides its pixels: HDF5 metadata, and per image its name and index.
SHARD_OVERHEAD, IMAGE_OVERHEAD = 64 * 1024, 1024
BUSY = "another wmi data prepare is writing here; wait for it to finish or choose another OUT_DIR"
#: Key of ``prepare.json`` and ``manifest.json`` in the folder of one part (``--shard K/N``):
#: ``[K, N]``.
PART_KEY = "part"

#: A decode job ``(path, preset, size)`` and its result ``(True, image)`` or ``(False, reason)``.
Job = tuple[str, str, int]
Decoded = tuple[bool, np.ndarray | str]
#: One shard of the plan: ``(split, shard index, indices into the source files)``.
PlannedShard = tuple[str, int, list[int]]


# --------------------------------------------------------------------------------------------
# Options


def parse_split(text: str) -> tuple[float, float, float]:
    """Parse ``--split`` text such as ``"0.7,0.15,0.15"`` (train, val, test).

    Raises:
        WmiError: not three non-negative numbers, or they do not sum to 1.
    """
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise WmiError(f"--split {text!r}: expected three numbers like 0.7,0.15,0.15") from None
    return check_split(values, text)


def check_split(values: Sequence[float], text: str | None = None) -> tuple[float, float, float]:
    """Validate train/val/test fractions: three finite numbers >= 0 that sum to 1."""
    shown = text if text is not None else ",".join(f"{v:g}" for v in values)
    if len(values) != 3:
        raise WmiError(f"--split {shown!r}: expected three fractions (train,val,test)")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise WmiError(f"--split {shown!r}: fractions must be non-negative numbers")
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise WmiError(f"--split {shown!r}: fractions must sum to 1 (they sum to {total:g})")
    return (float(values[0]), float(values[1]), float(values[2]))


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Split ``n`` items by ``fractions`` with the largest-remainder method (sum is exactly n).

    Ties in the remainder go to the earlier split (train, then val, then test).
    """
    exact = [n * f for f in fractions]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(3), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return (counts[0], counts[1], counts[2])


def assign_splits(n: int, fractions: Sequence[float], seed: int) -> dict[str, list[int]]:
    """Shuffle ``range(n)`` with ``seed`` and cut it into train/val/test index lists.

    The same ``(n, fractions, seed)`` always gives the same assignment, on any machine.
    """
    perm = np.random.default_rng(seed).permutation(n).tolist()
    n_train, n_val, _ = split_counts(n, fractions)
    return {
        "train": perm[:n_train],
        "val": perm[n_train : n_train + n_val],
        "test": perm[n_train + n_val :],
    }


# --------------------------------------------------------------------------------------------
# Geometry


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise WmiError(f"--preset {name!r}: expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_shape(preset: str, size: int) -> tuple[int, int] | None:
    """``(width, height)`` a preset with a fixed ``aspect`` scales to; None for "shorter side".

    The longer side is ``round(size * aspect)`` (or ``round(size / aspect)`` when the aspect
    is below 1): CelebA's 313 / 256 gives 256 x 313 at size 256.
    """
    aspect = _preset(preset).aspect
    if aspect is None:
        return None
    return (size, round(size * aspect)) if aspect >= 1 else (round(size / aspect), size)


def stored_shape(preset: str, size: int) -> tuple[int, int] | None:
    """``(height, width)`` of every image a preset stores at ``size``; None: each its own.

    ``plain``: ``(size, size)``; ``celeba``: ``(round(size * 313 / 256), size)``, 313 x 256 at
    256; ``imagenet`` and ``places``: None (unscaled, between ``size`` and ``2 * size`` a side).
    """
    entry = _preset(preset)
    if entry.square:
        return size, size
    fixed = preset_shape(preset, size)
    return None if fixed is None or entry.max_side is not None else (fixed[1], fixed[0])


def _max_stored_side(preset: str, size: int) -> int:
    """The longest side an image of ``preset`` is stored with at ``size``."""
    shape = stored_shape(preset, size)
    if shape is not None:
        return max(shape)
    entry = _preset(preset)
    return round((entry.max_side or 1.0) * size)


def resize_for_preset(img: Image.Image, preset: str, size: int) -> np.ndarray:
    """An RGB image as its preset stores it: uint8 ``(H, W, 3)``, both sides at least ``size``.

    Presets (:data:`wmi.kinds.PRESETS`):
        ``plain``: scale so that the shorter side is ``size`` (aspect ratio kept), then take
        the centre ``size x size``. An image of 256 x 256 passes through unchanged at 256.
        ``celeba`` (an ``aspect``, not ``square``): scale to :func:`preset_shape`, width
        ``size`` and height ``round(size * 313 / 256)`` (256 x 313 at size 256, the paper's
        numbers; CelebA's aligned 178 x 218 portraits keep their aspect ratio) and keep all
        of it: the training loader crops ``size x size`` at random, as the paper does.
        ``imagenet`` and ``places`` (a ``max_side``): no scaling, the paper's "without
        scaling" (only an image with a side shorter than ``size`` is scaled up, its shorter
        side to ``size``); its centre, at most ``max_side * size`` pixels a side (512 at 256),
        is kept, so that a 4000 x 3000 photograph does not fill a shard.

    An image that already has the target size is not resampled (pixels are kept exactly).

    Raises:
        WmiError: for a preset without an aspect, an image whose long side is over
            :data:`MAX_ASPECT` times its short side (a 1 x 1,000,000 strip would be scaled to
            256 x 256,000,000 before the crop; the crop would keep almost none of it).
    """
    entry = _preset(preset)
    w, h = img.size
    fixed = preset_shape(preset, size)
    if fixed is None and max(w, h) > MAX_ASPECT * min(w, h):
        raise WmiError(
            f"{w}x{h}: sides in a ratio over {MAX_ASPECT}:1; its centre would keep under "
            f"1/{MAX_ASPECT} of it (scaling its short side to {size} would make the long side "
            f"{max(w, h) * size // min(w, h):,} pixels)"
        )
    scale = 1.0
    if entry.max_side is not None:  # unscaled, but never below size
        scale = max(1.0, size / min(w, h))
    elif fixed is None:
        scale = size / min(w, h)
    if entry.max_side is None and fixed is not None:
        tw, th = fixed
    else:
        tw, th = max(size, round(w * scale)), max(size, round(h * scale))
    if entry.square:
        cap_w = cap_h = size
    elif entry.max_side is not None:
        cap_w = cap_h = round(entry.max_side * size)
    else:
        cap_w, cap_h = tw, th
    if (tw, th) != (w, h):
        img = img.resize((tw, th), Image.BICUBIC, reducing_gap=3.0)
    cw, ch = min(tw, cap_w), min(th, cap_h)
    if (cw, ch) != (tw, th):
        left, top = (tw - cw) // 2, (th - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
    return np.asarray(img, dtype=np.uint8)


def load_for_preset(path: str | os.PathLike[str], preset: str, size: int) -> np.ndarray:
    """Read an image file as RGB and apply :func:`resize_for_preset`: uint8 ``(H, W, 3)``.

    Raises:
        WmiError: the file is missing or not a readable image.
    """
    if _preset(preset).max_side is not None:  # unscaled: a JPEG is decoded at full size
        return resize_for_preset(open_rgb(path), preset, size)
    fixed = preset_shape(preset, size)
    draft = size if fixed is None else max(fixed)
    return resize_for_preset(open_rgb(path, min_size=draft), preset, size)


def _decode_job(job: Job) -> Decoded:
    """Worker: ``(path, preset, size)`` -> ``(True, image)`` or ``(False, reason)``."""
    path, preset, size = job
    try:
        return True, load_for_preset(path, preset, size)
    except WmiError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
    except Exception as exc:  # never fatal: a bad file is reported, the run goes on
        reason = f"{exc.__class__.__name__}: {exc}"
    return False, reason.splitlines()[0][:300] if reason else "unreadable"


# --------------------------------------------------------------------------------------------
# prepare


@dataclass
class PrepareResult:
    """What :func:`prepare` did.

    Attributes:
        out_dir: the output folder.
        counts: images per split.
        shards: shard files per split.
        skipped: ``(name relative to SRC_DIR, reason)`` for each unreadable file.
        found: number of image files found in SRC_DIR.
        written: shards written by this run.
        kept: complete shards kept from an earlier, interrupted run.
        manifest: path of ``manifest.json``.
    """

    out_dir: Path
    counts: dict[str, int]
    shards: dict[str, list[Path]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    found: int = 0
    written: int = 0
    kept: int = 0
    manifest: Path | None = None


def _our_files(out_dir: Path) -> list[Path]:
    """The files of an earlier run in ``out_dir``: what ``--overwrite`` deletes.

    Shards and their temporaries always; ``manifest.json``, ``prepare.json`` and
    ``preview.png`` only when ``prepare.json`` shows that the folder was made by ``prepare``.
    """
    fixed = {MANIFEST_NAME, OPTIONS_NAME, PREVIEW_NAME}
    ours = (out_dir / OPTIONS_NAME).is_file()
    return [
        p
        for p in out_dir.iterdir()
        if p.is_file()
        and (SHARD_RE.match(p.name) or TEMP_RE.match(p.name) or (ours and p.name in fixed))
    ]


def _files_digest(names: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _check_out_dir(out_dir: Path, options: dict[str, Any], overwrite: bool) -> None:
    """Refuse an OUT_DIR (a folder) that holds something else; clear ours with ``overwrite``."""
    if overwrite:
        for p in _our_files(out_dir):
            p.unlink()
        return
    if not any(out_dir.iterdir()):
        return
    options_file = out_dir / OPTIONS_NAME
    if not options_file.is_file():
        raise WmiError(
            f"{out_dir}: not empty and not made by wmi data prepare; "
            "choose another OUT_DIR or pass --overwrite"
        )
    try:
        old = json.loads(options_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WmiError(f"{options_file}: unreadable; pass --overwrite to start over") from None
    for key, new_value in options.items():
        if key == "source":
            continue
        if old.get(key) != new_value:
            if key == PART_KEY:
                k, n = new_value
                what = f"--shard {k}/{n} into a folder of another part or of a whole dataset"
            elif key in ("files", "files_sha256"):
                what = (
                    f"the images in SRC_DIR changed ({old.get('files')} files then, "
                    f"{options['files']} now)"
                )
            else:
                what = f"--{key.replace('_', '-')} was {old.get(key)!r} there, {new_value!r} now"
            raise WmiError(
                f"{out_dir}: holds data prepared with other options ({what}); "
                "pass --overwrite to start over or choose another OUT_DIR"
            )
    for p in out_dir.iterdir():  # leftovers of a killed run
        if TEMP_RE.match(p.name):
            p.unlink()


def _source_files(src_dir: Path, out_dir: Path) -> list[Path]:
    """The images under ``src_dir``, without those inside ``out_dir``.

    Raises:
        WmiError: SRC_DIR is missing, is OUT_DIR, or holds no images.
    """
    if not src_dir.is_dir():
        raise WmiError(f"{src_dir}: no such directory")
    if out_dir.resolve() == src_dir.resolve():
        raise WmiError(f"{out_dir}: OUT_DIR must differ from SRC_DIR (a subfolder is fine)")
    out_resolved = out_dir.resolve()
    files = []
    for p in list_images(src_dir, recursive=True):
        resolved = p.resolve()
        if resolved == out_resolved or out_resolved in resolved.parents:
            continue  # never read our own output (OUT_DIR inside SRC_DIR)
        files.append(p)
    if not files:
        raise WmiError(
            f"{src_dir}: no images found (searched recursively for "
            ".jpg .jpeg .png .bmp .webp .tif .tiff)"
        )
    return files


def prepare(
    src_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    size: int = 256,
    preset: str = "plain",
    split: Sequence[float] = DEFAULT_SPLIT,
    seed: int = 0,
    shard_size: int = 10000,
    workers: int | None = None,
    overwrite: bool = False,
    compression: str = "none",
    progress: Callable[[int, int], None] | None = None,
    shard: Shard | None = None,
) -> PrepareResult:
    """Convert the images under ``src_dir`` into HDF5 shards in ``out_dir``.

    Args:
        src_dir: folder searched recursively for jpg, jpeg, png, bmp, webp, tif(f) files.
        out_dir: output folder; created if missing.
        size: side of the square output images in pixels.
        preset: ``celeba``, ``places`` or ``plain`` (see :func:`resize_for_preset`).
        split: train, val, test fractions summing to 1.
        seed: seed of the split assignment.
        shard_size: source files per shard.
        workers: decode processes; 0 decodes in this process; default: the CPU count.
        overwrite: delete the shards, manifest and options of an earlier run first.
        compression: ``none`` (default, fastest reads), ``lzf`` or ``gzip``.
        progress: called as ``progress(done, total)`` with the number of source files handled.
        shard: write only this part (:class:`wmi.procs.Shard`) of the planned shard files:
            of the plan (train, then val, then test shard files, fixed by the files, split,
            seed and shard size, never by the number of parts), the K-th, (K+N)-th, ...;
            ``out_dir`` is then the part's own folder, its ``prepare.json`` and
            ``manifest.json`` name the part, and :func:`wmi.data.parts.merge_prepared` makes
            the N parts one dataset.

    Returns:
        A :class:`PrepareResult`; ``manifest.json`` holds the same counts and skipped files.

    Raises:
        WmiError: bad options, SRC_DIR missing or without images, OUT_DIR a file or holding
            other data (without ``overwrite``), or no image at all could be read (the
            manifest with every reason is written first).
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    fractions = check_split(tuple(split))
    _check_options(size, shard_size, preset, compression, workers, seed)
    files = _source_files(src_dir, out_dir)
    names = [p.relative_to(src_dir).as_posix() for p in files]
    options = {
        "format_version": FORMAT_VERSION,
        "preset": preset,
        "size": size,
        "split": list(fractions),
        "seed": seed,
        "shard_size": shard_size,
        "compression": compression,
        "files": len(files),
        "files_sha256": _files_digest(names),
        "source": str(src_dir.resolve()),
    }
    shard = shard or Shard()
    if not shard.whole:
        options[PART_KEY] = [shard.index, shard.count]
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: is a file, expected a directory for the shards")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PrepareResult(
        out_dir=out_dir, counts=dict.fromkeys(SPLITS, 0), shards={s: [] for s in SPLITS}
    )
    result.found = len(files)
    with folder_lock(out_dir, BUSY):
        _check_out_dir(out_dir, options, overwrite)
        _write_text(out_dir / OPTIONS_NAME, json.dumps(options, indent=2) + "\n")
        plan = _plan(len(files), fractions, seed, shard_size)
        plan = [entry for i, entry in enumerate(plan) if i % shard.count == shard.index]
        todo = _keep_complete(plan, options, result)
        _write_shards(todo, files, names, options, workers, progress, result)
        for split_name in SPLITS:
            result.shards[split_name].sort()
        result.skipped.sort()
        result.manifest = _write_manifest(out_dir, options, result)
    if not any(result.counts.values()) and shard.whole:  # a part may hold no image
        raise WmiError(
            f"{src_dir}: none of the {len(files)} images could be read; "
            f"reasons in {result.manifest}"
        )
    return result


def _check_options(
    size: int, shard_size: int, preset: str, compression: str, workers: int | None, seed: int
) -> None:
    if size < MIN_SIZE:
        raise WmiError(
            f"--size {size}: must be at least {MIN_SIZE} pixels (the smallest mask wmi draws)"
        )
    if size > MAX_SIDE:
        raise WmiError(f"--size {size}: must be at most {MAX_SIDE:,} pixels")
    if not 0 <= seed <= SEED_MAX:
        raise WmiError(f"--seed {seed}: must be from 0 to {SEED_MAX}")
    if shard_size < 1:
        raise WmiError(f"--shard-size {shard_size}: must be at least 1")
    _preset(preset)
    if compression not in COMPRESSIONS:
        raise WmiError(f"--compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    if compression != "none" and stored_shape(preset, size) is None:
        raise WmiError(
            f"--compression {compression}: --preset {preset} stores each image at its own size, "
            "which HDF5 does not compress; use --compression none"
        )
    if workers is not None and workers < 0:
        raise WmiError(f"--workers {workers}: must be 0 or more")


def _plan(n: int, fractions: Sequence[float], seed: int, shard_size: int) -> list[PlannedShard]:
    """Every shard's file list, fixed by ``(files, split, seed, shard_size)``."""
    plan: list[PlannedShard] = []
    for split_name, indices in assign_splits(n, fractions, seed).items():
        for k in range(0, len(indices), shard_size):
            plan.append((split_name, k // shard_size, indices[k : k + shard_size]))
    return plan


def _keep_complete(
    plan: list[PlannedShard], options: dict[str, Any], result: PrepareResult
) -> list[PlannedShard]:
    """Record the shards of an earlier run that fit the plan in ``result``; return the rest."""
    todo = []
    for split_name, k, indices in plan:
        path = shard_path(result.out_dir, split_name, k)
        info = _existing_shard(path, options["preset"], options["size"], len(indices))
        if info is None:
            todo.append((split_name, k, indices))
            continue
        result.kept += 1
        result.counts[split_name] += info.count
        result.shards[split_name].append(path)
        result.skipped.extend(info.skipped)
    return todo


def _write_shards(
    todo: list[PlannedShard],
    files: list[Path],
    names: list[str],
    options: dict[str, Any],
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    result: PrepareResult,
) -> None:
    """Decode the files of each shard of ``todo`` and write it; record what was written."""
    total = sum(len(indices) for *_, indices in todo)
    done = 0
    if progress:
        progress(0, total)
    workers = min((os.cpu_count() or 1) if workers is None else workers, total)
    with _decoder(workers) as decode:
        for split_name, k, indices in todo:
            jobs = [(str(files[i]), options["preset"], options["size"]) for i in indices]

            def labelled(
                jobs: list[Job] = jobs, indices: list[int] = indices
            ) -> Iterator[tuple[str, bool, np.ndarray | str]]:
                nonlocal done
                for i, (ok, res) in zip(indices, decode(jobs), strict=True):
                    yield names[i], ok, res
                    done += 1
                    if progress:
                        progress(done, total)

            path = shard_path(result.out_dir, split_name, k)
            side = _max_stored_side(options["preset"], options["size"])
            _check_free_space(path, len(indices), side, result)
            count, skipped = write_shard(
                path, labelled(), len(indices), _shard_attrs(options, split_name, k)
            )
            result.written += 1 if count else 0
            result.skipped.extend(skipped)
            if count:
                result.counts[split_name] += count
                result.shards[split_name].append(path)


def _check_free_space(path: Path, planned: int, side: int, result: PrepareResult) -> None:
    """Refuse to start a shard the device has no room for (pixels uncompressed + overhead,
    each image at most ``side`` x ``side``).

    HDF5 cannot recover from a full disk in the middle of a file (the process crashes), so the
    room is checked before each shard is opened.

    Raises:
        WmiError: naming the shard, what it needs and what is free.
    """
    need = SHARD_OVERHEAD + planned * (side * side * 3 + IMAGE_OVERHEAD)
    free = shutil.disk_usage(path.parent).free
    if free < need:
        kept = sum(len(paths) for paths in result.shards.values())
        raise WmiError(
            f"{path}: no space left on device for this shard (needs about {need / 2**20:.2f} "
            f"MiB, {free / 2**20:.2f} MiB free); the {kept} complete shard(s) are kept: "
            "free some space and run the same command again to resume"
        )


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically; a full disk or a read-only folder is one error naming ``path``."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise WmiError(f"{path}: {exc.strerror or exc}") from None


def _shard_attrs(options: dict[str, Any], split_name: str, index: int) -> dict[str, Any]:
    """The attributes of a shard: ``height`` and ``width`` 0 (and format version 2) when the
    preset stores each image at its own size."""
    shape = stored_shape(options["preset"], options["size"])
    return {
        "format_version": FORMAT_VERSION if shape else VARIABLE_FORMAT_VERSION,
        "preset": options["preset"],
        "size": options["size"],
        "height": shape[0] if shape else 0,
        "width": shape[1] if shape else 0,
        "seed": options["seed"],
        "split": split_name,
        "shard_index": index,
        "compression": options["compression"],
    }


def _existing_shard(path: Path, preset: str, size: int, planned: int) -> ShardInfo | None:
    """The info of a complete shard from an earlier run that fits the plan, else None."""
    if not path.is_file():
        return None
    try:
        info = shard_info(path)
    except WmiError:
        return None  # unreadable: written again
    if (info.preset, info.size, info.planned) != (preset, size, planned):
        return None
    shape = stored_shape(preset, size)
    if (shape is None) != info.variable or (shape and (info.height, info.width) != shape):
        return None  # what the preset stores changed (a shard of an older wmi): written again
    return info


@contextlib.contextmanager
def _decoder(
    workers: int,
) -> Iterator[Callable[[list[Job]], Iterator[Decoded]]]:
    """Yield ``decode(jobs)``: results of :func:`_decode_job` in order, from a process pool.

    Raises:
        WmiError: a decode process died (killed, out of memory).
    """
    if workers == 0:
        yield lambda jobs: map(_decode_job, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn: no fork of a process with threads (the progress bar has one), and every worker
    # a child of this process, watching it (a forkserver outlived a killed parent).
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_init,
        initargs=(os.getpid(),),
    )

    def decode(jobs: list[Job]) -> Iterator[Decoded]:
        chunk = max(1, min(16, len(jobs) // (4 * workers)))
        try:
            with starting_workers():  # the workers start at the first submit
                results = pool.map(_decode_job, jobs, chunksize=chunk)
            yield from results
        except BrokenProcessPool:
            raise WmiError(
                "--workers: a decoding process died (out of memory?); "
                "try fewer workers or --workers 0"
            ) from None

    try:
        yield decode
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _write_manifest(out_dir: Path, options: dict[str, Any], result: PrepareResult) -> Path:
    manifest = {
        key: options[key]
        for key in ("format_version", "preset", "size", "split", "seed", "shard_size")
    }
    manifest.update(
        compression=options["compression"],
        source=options["source"],
        found=result.found,
        counts=result.counts,
        shards={
            s: [{"file": p.name, "images": shard_info(p).count} for p in result.shards[s]]
            for s in SPLITS
        },
        skipped=[{"path": name, "reason": reason} for name, reason in result.skipped],
    )
    if PART_KEY in options:
        manifest[PART_KEY] = options[PART_KEY]
    path = out_dir / MANIFEST_NAME
    _write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path
