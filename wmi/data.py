"""Training data: image folders to HDF5 shards, and the loader that feeds training.

``prepare`` (``wmi data prepare``) turns a folder of images into shards
``OUT_DIR/{train,val,test}-00000.h5``. Each shard holds

- ``images``: uint8 ``(N, H, W, 3)``, one image per chunk (uncompressed by default, so a
  random read is one contiguous disk read),
- ``names``: the source paths relative to ``SRC_DIR`` (UTF-8 strings),
- attributes: ``format_version``, ``preset``, ``size``, ``height``, ``width``, ``seed``,
  ``split``, ``shard_index``, ``planned`` (files assigned to the shard), ``compression`` and
  ``skipped`` (JSON list of ``[name, reason]`` for the files that could not be read).

A shard is written under a temporary name and renamed when complete, so an interrupted run
never leaves a truncated shard; ``OUT_DIR/prepare.json`` (written first) records the options,
so a re-run with the same options resumes and keeps the shards already written.
``OUT_DIR/manifest.json`` (written last) has the counts per split and every skipped file.

:class:`InpaintingDataset` reads the shards for training: ``(image, mask)`` with image float32
``(3, H, W)`` in [0, 1] and mask validity float32 ``(1, H, W)`` (1 = known, 0 = hole).

This module imports torch only inside the functions that need it, so the decode workers of
``prepare`` start quickly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from wmi.errors import WmiError
from wmi.io import atomic_path, list_images, list_masks, open_rgb, read_mask

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
PRESETS = ("celeba", "places", "plain")
COMPRESSIONS = ("none", "lzf", "gzip")
#: CelebA is scaled to 256 x 313 (width x height) before the 256 x 256 crop (the paper's numbers).
CELEBA_WIDTH, CELEBA_HEIGHT = 256, 313
MANIFEST_NAME = "manifest.json"
OPTIONS_NAME = "prepare.json"
PREVIEW_NAME = "preview.png"
DEFAULT_SPLIT = (0.7, 0.15, 0.15)

_SHARD_RE = re.compile(r"^(train|val|test)-(\d{5})\.h5$")
#: Temporary files of :func:`wmi.io.atomic_path` for the files above (left by a killed run).
_TEMP_RE = re.compile(
    r"^\.((train|val|test)-\d{5}\..*\.tmp\.h5|(manifest|prepare)\..*\.tmp\.json)$"
)

#: Decoded masks kept per process (as bits): 64 MiB holds 8,192 masks of 256 x 256.
_MASK_CACHE_BYTES = 64 * 2**20
#: A mask source: ``(rng, height, width) -> bool (height, width)``, True = hole.
MaskFn = Callable[[np.random.Generator, int, int], np.ndarray]


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


def resize_for_preset(img: Image.Image, preset: str, size: int) -> np.ndarray:
    """Resize and centre-crop an RGB image to ``(size, size, 3)`` uint8.

    Presets:
        ``celeba``: scale to width ``size`` and height ``round(size * 313 / 256)`` (256 x 313
        at size 256, the paper's numbers; CelebA's aligned 178 x 218 portraits keep their
        aspect ratio), then take the centre ``size x size``.
        ``plain`` and ``places``: scale so that the shorter side is ``size`` (aspect ratio
        kept), then take the centre ``size x size``. Places2's 256 x 256 images pass through
        unchanged at size 256.

    An image that already has the target size is not resampled (pixels are kept exactly).
    """
    if preset not in PRESETS:
        raise WmiError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    w, h = img.size
    if preset == "celeba":
        tw, th = size, round(size * CELEBA_HEIGHT / CELEBA_WIDTH)
    else:
        scale = size / min(w, h)
        tw, th = max(size, round(w * scale)), max(size, round(h * scale))
    if (tw, th) != (w, h):
        img = img.resize((tw, th), Image.BICUBIC, reducing_gap=3.0)
    left, top = (tw - size) // 2, (th - size) // 2
    if (tw, th) != (size, size):
        img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8)


def load_for_preset(path: str | os.PathLike[str], preset: str, size: int) -> np.ndarray:
    """Read an image file as RGB and apply :func:`resize_for_preset`: uint8 ``(size, size, 3)``.

    Raises:
        WmiError: the file is missing or not a readable image.
    """
    draft = size if preset != "celeba" else round(size * CELEBA_HEIGHT / CELEBA_WIDTH)
    return resize_for_preset(open_rgb(path, min_size=draft), preset, size)


def _decode_job(job: tuple[str, str, int]) -> tuple[bool, np.ndarray | str]:
    """Worker: ``(path, preset, size)`` -> ``(True, image)`` or ``(False, reason)``."""
    path, preset, size = job
    try:
        return True, load_for_preset(path, preset, size)
    except WmiError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
    except Exception as exc:  # never fatal: a bad file is reported, the run goes on
        reason = f"{exc.__class__.__name__}: {exc}"
    return False, reason.splitlines()[0][:300] if reason else "unreadable"


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group; the main process handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --------------------------------------------------------------------------------------------
# Shards


@dataclass(frozen=True)
class ShardInfo:
    """What a shard file says about itself.

    Attributes:
        path: the shard file.
        split: ``train``, ``val`` or ``test``.
        count: number of images.
        height: image height in pixels.
        width: image width in pixels.
        size: the ``--size`` it was prepared with.
        preset: the ``--preset`` it was prepared with.
        compression: ``none``, ``lzf`` or ``gzip``.
        planned: number of source files assigned to the shard (``count`` + skipped).
        skipped: ``(name, reason)`` for each file that could not be read.
    """

    path: Path
    split: str
    count: int
    height: int
    width: int
    size: int
    preset: str
    compression: str
    planned: int
    skipped: tuple[tuple[str, str], ...]


def shard_path(out_dir: str | os.PathLike[str], split: str, index: int) -> Path:
    """``OUT_DIR/{split}-{index:05d}.h5``."""
    return Path(out_dir) / f"{split}-{index:05d}.h5"


def find_shards(out_dir: str | os.PathLike[str], split: str) -> list[Path]:
    """The complete shards of ``split`` in ``out_dir``, sorted by index (temporary files excluded).

    Raises:
        WmiError: ``split`` is not train, val or test.
    """
    if split not in SPLITS:
        raise WmiError(f"split {split!r}: expected one of {', '.join(SPLITS)}")
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for p in out_dir.iterdir():
        m = _SHARD_RE.match(p.name)
        if m and m.group(1) == split and p.is_file():
            found.append(p)
    return sorted(found)


def shard_info(path: str | os.PathLike[str]) -> ShardInfo:
    """Read a shard's attributes and shape without loading its images.

    Raises:
        WmiError: the file is missing, not HDF5, not a wmi shard, or of another format version.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WmiError(f"{path}: no such shard file")
    try:
        with h5py.File(path, "r", locking=False) as f:
            if "images" not in f:
                raise WmiError(f"{path}: not a wmi shard (no 'images' dataset)")
            images = f["images"]
            attrs = dict(f.attrs)
            shape = images.shape
    except OSError as exc:
        raise WmiError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__})") from None
    version = int(attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise WmiError(f"{path}: shard format version {version}, expected {FORMAT_VERSION}")
    if len(shape) != 4 or shape[3] != 3:
        raise WmiError(f"{path}: 'images' has shape {shape}, expected (N, H, W, 3)")
    skipped = tuple((str(n), str(r)) for n, r in json.loads(_as_str(attrs.get("skipped", "[]"))))
    return ShardInfo(
        path=path,
        split=_as_str(attrs.get("split", "")),
        count=int(shape[0]),
        height=int(shape[1]),
        width=int(shape[2]),
        size=int(attrs.get("size", shape[1])),
        preset=_as_str(attrs.get("preset", "")),
        compression=_as_str(attrs.get("compression", "none")),
        planned=int(attrs.get("planned", shape[0])),
        skipped=skipped,
    )


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_shards(
    paths: Sequence[str | os.PathLike[str]], size: int, exact: bool = True
) -> list[ShardInfo]:
    """Read every shard's attributes and check that its images fit ``size``.

    Args:
        paths: shard files.
        size: the training size in pixels.
        exact: require shards prepared at exactly ``size`` (what training wants); with False,
            larger images are accepted (the loader crops them).

    Raises:
        WmiError: no paths, or a shard that is unreadable or of another size (one line).
    """
    if not paths:
        raise WmiError("no shard files given")
    infos = [shard_info(p) for p in paths]
    for info in infos:
        if exact and (info.height, info.width) != (size, size):
            raise WmiError(
                f"{info.path}: images are {info.width}x{info.height}, not {size}x{size}; "
                f"prepare the data with --size {size}"
            )
        if info.height < size or info.width < size:
            raise WmiError(
                f"{info.path}: images are {info.width}x{info.height}, smaller than size {size}"
            )
    return infos


def _write_shard(
    path: Path,
    images: Iterator[tuple[str, bool, np.ndarray | str]],
    planned: int,
    attrs: dict[str, Any],
) -> tuple[int, list[tuple[str, str]]]:
    """Write the decoded images of one shard atomically; an empty shard is not written.

    Returns:
        ``(number of images written, skipped (name, reason) list)``.
    """
    import h5py

    size = attrs["size"]
    compression = None if attrs["compression"] == "none" else attrs["compression"]
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    with contextlib.suppress(_EmptyShard), atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset(
                "images",
                shape=(planned, size, size, 3),
                maxshape=(None, size, size, 3),
                dtype=np.uint8,
                chunks=(1, size, size, 3),
                compression=compression,
            )
            for name, ok, result in images:
                if ok:
                    ds[len(names)] = result
                    names.append(name)
                else:
                    skipped.append((name, str(result)))
            ds.resize(len(names), axis=0)
            f.create_dataset("names", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["planned"] = planned
            f.attrs["skipped"] = json.dumps(skipped)
        if not names:
            raise _EmptyShard  # leaves no file behind: atomic_path removes the temporary
    return len(names), skipped


class _EmptyShard(Exception):
    """Raised inside :func:`_write_shard` to drop a shard whose every file was unreadable."""


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
        and (_SHARD_RE.match(p.name) or _TEMP_RE.match(p.name) or (ours and p.name in fixed))
    ]


def _files_digest(names: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _check_out_dir(out_dir: Path, options: dict[str, Any], overwrite: bool) -> None:
    """Refuse an OUT_DIR that is a file or holds something else; clear ours with ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: is a file, expected a directory for the shards")
    if not out_dir.exists():
        return
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
            if key in ("files", "files_sha256"):
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
        if _TEMP_RE.match(p.name):
            p.unlink()


def _source_files(src_dir: Path, out_dir: Path) -> list[Path]:
    out_resolved = out_dir.resolve()
    files = []
    for p in list_images(src_dir, recursive=True):
        resolved = p.resolve()
        if resolved == out_resolved or out_resolved in resolved.parents:
            continue  # never read our own output (OUT_DIR inside SRC_DIR)
        files.append(p)
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

    Returns:
        A :class:`PrepareResult`; ``manifest.json`` holds the same counts and skipped files.

    Raises:
        WmiError: bad options, SRC_DIR missing or without images, OUT_DIR a file or holding
            other data (without ``overwrite``), or no image at all could be read (the
            manifest with every reason is written first).
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    fractions = check_split(tuple(split))
    if size < 1:
        raise WmiError(f"--size {size}: must be a positive number of pixels")
    if shard_size < 1:
        raise WmiError(f"--shard-size {shard_size}: must be at least 1")
    if preset not in PRESETS:
        raise WmiError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    if compression not in COMPRESSIONS:
        raise WmiError(f"--compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    if workers is not None and workers < 0:
        raise WmiError(f"--workers {workers}: must be 0 or more")
    if not src_dir.is_dir():
        raise WmiError(f"{src_dir}: no such directory")
    if out_dir.resolve() == src_dir.resolve():
        raise WmiError(f"{out_dir}: OUT_DIR must differ from SRC_DIR (a subfolder is fine)")
    files = _source_files(src_dir, out_dir)
    if not files:
        raise WmiError(
            f"{src_dir}: no images found (searched recursively for "
            ".jpg .jpeg .png .bmp .webp .tif .tiff)"
        )
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
    _check_out_dir(out_dir, options, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / OPTIONS_NAME) as tmp:
        tmp.write_text(json.dumps(options, indent=2) + "\n", encoding="utf-8")

    # The plan: every shard's file list is fixed by (files, split, seed, shard_size).
    plan: list[tuple[str, int, list[int]]] = []
    for split_name, indices in assign_splits(len(files), fractions, seed).items():
        for k in range(0, len(indices), shard_size):
            plan.append((split_name, k // shard_size, indices[k : k + shard_size]))

    result = PrepareResult(
        out_dir=out_dir, counts=dict.fromkeys(SPLITS, 0), shards={s: [] for s in SPLITS}
    )
    result.found = len(files)
    todo: list[tuple[str, int, list[int]]] = []
    for split_name, k, indices in plan:
        path = shard_path(out_dir, split_name, k)
        info = _existing_shard(path, preset, size, len(indices))
        if info is None:
            todo.append((split_name, k, indices))
            continue
        result.kept += 1
        result.counts[split_name] += info.count
        result.shards[split_name].append(path)
        result.skipped.extend(info.skipped)

    total = sum(len(indices) for *_, indices in todo)
    done = 0
    if progress:
        progress(0, total)
    workers = min((os.cpu_count() or 1) if workers is None else workers, total)
    with _decoder(workers) as decode:
        for split_name, k, indices in todo:
            path = shard_path(out_dir, split_name, k)
            jobs = [(str(files[i]), preset, size) for i in indices]

            def labelled(
                jobs: list[tuple[str, str, int]] = jobs, indices: list[int] = indices
            ) -> Iterator[tuple[str, bool, np.ndarray | str]]:
                nonlocal done
                for i, (ok, res) in zip(indices, decode(jobs), strict=True):
                    yield names[i], ok, res
                    done += 1
                    if progress:
                        progress(done, total)

            attrs = {
                "format_version": FORMAT_VERSION,
                "preset": preset,
                "size": size,
                "height": size,
                "width": size,
                "seed": seed,
                "split": split_name,
                "shard_index": k,
                "compression": compression,
            }
            count, skipped = _write_shard(path, labelled(), len(indices), attrs)
            result.written += 1 if count else 0
            result.skipped.extend(skipped)
            if count:
                result.counts[split_name] += count
                result.shards[split_name].append(path)

    for split_name in SPLITS:
        result.shards[split_name].sort()
    result.skipped.sort()
    result.manifest = _write_manifest(out_dir, options, result)
    if not any(result.counts.values()):
        raise WmiError(
            f"{src_dir}: none of the {len(files)} images could be read; "
            f"reasons in {result.manifest}"
        )
    return result


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
    return info


@contextlib.contextmanager
def _decoder(
    workers: int,
) -> Iterator[Callable[[list[tuple[str, str, int]]], Iterator[tuple[bool, np.ndarray | str]]]]:
    """Yield ``decode(jobs)``: results of :func:`_decode_job` in order, from a process pool.

    Raises:
        WmiError: a decode process died (killed, out of memory).
    """
    if workers == 0:
        yield lambda jobs: map(_decode_job, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: no fork of a process with threads (the progress bar has one).
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_ignore_sigint)

    def decode(jobs: list[tuple[str, str, int]]) -> Iterator[tuple[bool, np.ndarray | str]]:
        chunk = max(1, min(16, len(jobs) // (4 * workers)))
        try:
            yield from pool.map(_decode_job, jobs, chunksize=chunk)
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
    path = out_dir / MANIFEST_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# info


def summarize(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts per split, image size and disk use of a prepared folder (for ``wmi data info``).

    Returns:
        A JSON-ready dict: ``out_dir``, ``complete`` (manifest present), ``preset``,
        ``size``, ``height``, ``width``, ``compression``, ``splits`` (per split:
        ``images``, ``shards``, ``bytes``), ``images``, ``bytes`` (all files in the folder),
        ``skipped``.

    Raises:
        WmiError: the folder is missing or holds no shards.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise WmiError(f"{out_dir}: no such directory")
    infos = [shard_info(p) for s in SPLITS for p in find_shards(out_dir, s)]
    if not infos:
        raise WmiError(f"{out_dir}: no shards (train-00000.h5, ...); run wmi data prepare first")
    splits = {
        s: {
            "images": sum(i.count for i in infos if i.split == s),
            "shards": sum(1 for i in infos if i.split == s),
            "bytes": sum(i.path.stat().st_size for i in infos if i.split == s),
        }
        for s in SPLITS
    }
    manifest_path = out_dir / MANIFEST_NAME
    skipped: int | None = None
    if manifest_path.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError):
            skipped = len(json.loads(manifest_path.read_text(encoding="utf-8"))["skipped"])

    def one(values: set[Any]) -> Any:
        return values.pop() if len(values) == 1 else sorted(values)

    return {
        "out_dir": str(out_dir),
        "complete": manifest_path.is_file(),
        "preset": one({i.preset for i in infos}),
        "size": one({i.size for i in infos}),
        "height": one({i.height for i in infos}),
        "width": one({i.width for i in infos}),
        "compression": one({i.compression for i in infos}),
        "splits": splits,
        "images": sum(i.count for i in infos),
        "bytes": sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file()),
        "skipped": skipped if skipped is not None else sum(len(i.skipped) for i in infos),
    }


def sample_images(
    out_dir: str | os.PathLike[str], count: int = 16, seed: int = 0
) -> list[tuple[str, np.ndarray]]:
    """Up to ``count`` images drawn at random (from ``seed``) across all splits.

    Returns:
        ``(label, image)`` pairs; label ``"split:name"``, image uint8 ``(H, W, 3)``.
    """
    import h5py

    paths = [p for s in SPLITS for p in find_shards(out_dir, s)]
    offsets = np.cumsum([0] + [shard_info(p).count for p in paths])
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(int(offsets[-1]), size=min(count, int(offsets[-1])), replace=False))
    out = []
    for k in picks.tolist():
        shard = int(np.searchsorted(offsets, k, side="right")) - 1
        i = k - int(offsets[shard])
        with h5py.File(paths[shard], "r", locking=False) as f:
            name = _as_str(f["names"][i])
            out.append((f"{_as_str(f.attrs['split'])}:{Path(name).name}", f["images"][i]))
    return out


# --------------------------------------------------------------------------------------------
# Loader


class _FreeformMasks:
    """The DeepFill v2 training masks of :mod:`wmi.masks` as a picklable mask source."""

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        from wmi import masks

        return masks.freeform(height, width, rng, training=True)


class InpaintingDataset:
    """Training pairs ``(image, mask)`` read from shards, for ``torch.utils.data.DataLoader``.

    Each item ``index`` draws its randomness (crop, flip, which mask) from a generator seeded
    with ``(seed, epoch, index)``: the pairing of images and masks changes every epoch, is
    reproducible, and does not depend on ``num_workers`` or on how a ``DistributedSampler``
    splits the indices. Call :meth:`set_epoch` at the start of every epoch, like
    ``DistributedSampler.set_epoch``; the epoch lives in shared memory, so persistent
    workers see it too.

    HDF5 handles are not fork-safe, so files are opened lazily, once per process, on the
    first read in that process.

    Args:
        shard_paths: shard files (see :func:`find_shards`); their images must be at least
            ``size`` on both sides.
        masks: where the holes come from: a directory of mask PNGs (white = hole; a random
            one per item, resized with nearest neighbour to ``size`` if needed, randomly
            flipped when ``augment``), the string ``"freeform"`` (DeepFill v2 free-form
            training masks from :mod:`wmi.masks`), or a callable
            ``masks(rng, height, width) -> bool (height, width)`` with True = hole (it must be
            picklable for workers started with spawn/forkserver).
        size: side of the square crops in pixels.
        augment: random crops (when shard images are larger than ``size``) and random
            horizontal flips; without it, crops are centred and nothing is flipped.
        seed: base seed.

    Items:
        ``image``: float32 tensor ``(3, size, size)`` in [0, 1].
        ``mask``: float32 tensor ``(1, size, size)``, validity: 1 = known, 0 = hole.

    Raises:
        WmiError: no shards, an unreadable or too small shard, a missing or empty mask folder.
    """

    def __init__(
        self,
        shard_paths: Sequence[str | os.PathLike[str]],
        masks: str | os.PathLike[str] | MaskFn,
        size: int = 256,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        import torch

        if size < 1:
            raise WmiError(f"size {size}: must be a positive number of pixels")
        if seed < 0:
            raise WmiError(f"seed {seed}: must be 0 or more")
        infos = check_shards(shard_paths, size, exact=False)
        self.shard_paths = [i.path for i in infos]
        self.size = size
        self.augment = augment
        self.seed = seed
        self._shapes = [(i.height, i.width) for i in infos]
        self._offsets = np.cumsum([0] + [i.count for i in infos])
        self._mask_fn: MaskFn | None = None
        self.mask_paths: list[Path] = []
        if callable(masks):
            self._mask_fn = masks
        elif isinstance(masks, str) and masks == "freeform":
            self._mask_fn = _FreeformMasks()
        else:
            folder = Path(masks)
            if not folder.is_dir():
                raise WmiError(
                    f"{folder}: no such mask folder (give a folder of mask PNGs, or freeform)"
                )
            self.mask_paths = list_masks(folder, recursive=True)
            if not self.mask_paths:
                raise WmiError(f"{folder}: no mask images found")
        # 0-d int64 in shared memory: set_epoch in the main process reaches every worker.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._files: dict[int, Any] = {}
        self._mask_cache: dict[int, np.ndarray] = {}  # mask index -> packed bits, per process
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def epoch(self) -> int:
        """The epoch set by :meth:`set_epoch` (0 at first)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (>= 0) whose random pairing, crops and flips the items use."""
        if epoch < 0:
            raise ValueError(f"epoch {epoch}: must be 0 or more")
        self._epoch.fill_(int(epoch))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}  # h5py handles cannot be pickled; reopened in the new process
        state["_mask_cache"] = {}  # rebuilt per process; keeps worker start-up light
        return state

    def _image(self, index: int) -> np.ndarray:
        """uint8 ``(H, W, 3)`` image ``index``, read through this process's own file handle."""
        import h5py

        if self._pid != os.getpid():  # forked: inherited handles belong to the parent
            self._files = {}
            self._pid = os.getpid()
        shard = int(np.searchsorted(self._offsets, index, side="right")) - 1
        local = index - int(self._offsets[shard])
        entry = self._files.get(shard)
        if entry is None:
            f = h5py.File(self.shard_paths[shard], "r", locking=False)
            ds = f["images"]
            direct = ds.compression is None and ds.chunks == (1, *ds.shape[1:])
            entry = self._files[shard] = (f, ds, direct)
        _, ds, direct = entry
        if direct:
            # Uncompressed, one image per chunk: the chunk's bytes are the image.
            h, w = self._shapes[shard]
            buf = np.empty(h * w * 3, np.uint8)
            ds.id.read_direct_chunk((local, 0, 0, 0), out=buf)
            return buf.reshape(h, w, 3)
        return ds[local]

    def _hole(self, rng: np.random.Generator) -> np.ndarray:
        size = self.size
        if self._mask_fn is not None:
            hole = np.asarray(self._mask_fn(rng, size, size), dtype=bool)
            if hole.shape != (size, size):
                raise ValueError(
                    f"mask source returned shape {hole.shape}, expected {(size, size)}"
                )
            return hole
        k = int(rng.integers(len(self.mask_paths)))
        packed = self._mask_cache.get(k)
        if packed is None:
            hole = read_mask(self.mask_paths[k])
            if hole.shape != (size, size):
                resized = Image.fromarray(hole.astype(np.uint8) * 255).resize(
                    (size, size), Image.NEAREST
                )
                hole = np.asarray(resized) > 127
            if len(self._mask_cache) < _MASK_CACHE_BYTES * 8 // (size * size):
                self._mask_cache[k] = np.packbits(hole)
        else:
            hole = np.unpackbits(packed, count=size * size).reshape(size, size).view(bool)
        if self.augment:
            if rng.random() < 0.5:
                hole = hole[:, ::-1]
            if rng.random() < 0.5:
                hole = hole[::-1]
        return hole

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        import cv2
        import torch

        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index = int(index) % n
        rng = np.random.default_rng([self.seed, self.epoch, index])
        img = self._image(index)
        h, w, _ = img.shape
        size = self.size
        if (h, w) != (size, size):
            if self.augment:
                top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
            else:
                top, left = (h - size) // 2, (w - size) // 2
            img = img[top : top + size, left : left + size]
        if self.augment and rng.random() < 0.5:
            img = cv2.flip(img, 1)
        hole = self._hole(rng)
        # Channel planes through OpenCV, then one contiguous uint8 -> float pass: fast, and
        # independent of torch's intra-op thread pool (costly for small tensors).
        image = np.empty((3, size, size), np.float32)
        for c, plane in enumerate(cv2.split(img)):
            image[c] = plane
        image /= np.float32(255.0)
        mask = np.logical_not(hole)[None].astype(np.float32)
        return torch.from_numpy(image), torch.from_numpy(mask)


# --------------------------------------------------------------------------------------------
# Benchmark


def benchmark_loader(
    shard_paths: Sequence[str | os.PathLike[str]],
    masks: str | os.PathLike[str] | MaskFn,
    size: int = 256,
    num_workers: Sequence[int] = (0, 2),
    batch_size: int = 32,
    images: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure loader throughput against raw random h5py reads, in the same process and run.

    Raw reads: ``images`` random indices, ``dataset[i]`` on an open h5py file, nothing else.
    Loader: a ``DataLoader`` over :class:`InpaintingDataset` (augment on) with shuffling,
    timed from the first batch to the last (worker start-up excluded, reported separately).

    Returns:
        ``{"images", "size", "batch_size", "cpus", "torch_threads", "raw_reads_per_s",
        "loader": [{"num_workers", "images_per_s", "startup_s", "fraction_of_raw"}]}``.
    """
    import h5py
    import torch
    from torch.utils.data import DataLoader

    dataset = InpaintingDataset(shard_paths, masks, size=size, augment=True, seed=seed)
    n = min(images, len(dataset))
    rng = np.random.default_rng(seed)
    order = rng.integers(len(dataset), size=n)
    files = [h5py.File(p, "r", locking=False) for p in dataset.shard_paths]
    try:
        sets = [f["images"] for f in files]
        offsets = dataset._offsets
        where = [
            (int(np.searchsorted(offsets, i, side="right")) - 1, int(i)) for i in order.tolist()
        ]
        start = time.perf_counter()
        for shard, i in where:
            sets[shard][i - int(offsets[shard])]
        raw = n / (time.perf_counter() - start)
    finally:
        for f in files:
            f.close()

    results = []
    for workers in num_workers:
        sampler = torch.utils.data.RandomSampler(
            dataset, num_samples=n, generator=torch.Generator().manual_seed(seed)
        )
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
        start = time.perf_counter()
        it = iter(loader)
        first = next(it)
        t_first = time.perf_counter()
        count = len(first[0])
        for image, _ in it:
            count += len(image)
        elapsed = time.perf_counter() - t_first
        rate = (count - len(first[0])) / elapsed if elapsed > 0 else float("nan")
        results.append(
            {
                "num_workers": workers,
                "images_per_s": rate,
                "startup_s": t_first - start,
                "fraction_of_raw": rate / raw,
            }
        )
        del it, loader
    return {
        "images": n,
        "size": size,
        "batch_size": batch_size,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "raw_reads_per_s": raw,
        "loader": results,
    }
