"""The shard format: find, read, check, write and summarize ``{train,val,test}-NNNNN.h5`` files.

A shard holds

- ``images``: uint8 ``(N, H, W, 3)``, one image per chunk (uncompressed by default, so a
  random read is one contiguous disk read); or, in a shard of format version 2 (a preset that
  stores each image at its own size, ``imagenet`` and ``places``), ``(N,)`` variable-length
  uint8 rows, image ``i`` being ``images[i].reshape(*shapes[i], 3)``,
- ``shapes`` (version 2 only): int32 ``(N, 2)``, each image's height and width,
- ``names``: the source paths relative to ``SRC_DIR`` (UTF-8 strings),
- attributes: ``format_version``, ``preset``, ``size``, ``height``, ``width``, ``seed``,
  ``split``, ``shard_index``, ``planned`` (files assigned to the shard), ``compression`` and
  ``skipped`` (JSON list of ``[name, reason]`` for the files that could not be read).

h5py is imported inside the functions that read or write files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.kinds import COMPRESSIONS

FORMAT_VERSION = 1
#: The format of shards whose images each have their own size (``height`` and ``width`` 0).
VARIABLE_FORMAT_VERSION = 2
SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.json"
OPTIONS_NAME = "prepare.json"
PREVIEW_NAME = "preview.png"

SHARD_RE = re.compile(r"^(train|val|test)-(\d{5})\.h5$")
#: Temporary files of :func:`wmi.io.atomic_path` for the files above (left by a killed run).
TEMP_RE = re.compile(r"^\.((train|val|test)-\d{5}\..*\.tmp\.h5|(manifest|prepare)\..*\.tmp\.json)$")


@dataclass(frozen=True)
class ShardInfo:
    """What a shard file says about itself.

    Attributes:
        path: the shard file.
        split: ``train``, ``val`` or ``test``.
        count: number of images.
        height: image height in pixels (the smallest, when ``variable``).
        width: image width in pixels (the smallest, when ``variable``).
        size: the ``--size`` it was prepared with.
        preset: the ``--preset`` it was prepared with.
        compression: ``none``, ``lzf`` or ``gzip``.
        planned: number of source files assigned to the shard (``count`` + skipped).
        skipped: ``(name, reason)`` for each file that could not be read.
        variable: each image has its own size (format version 2, the ``shapes`` dataset).
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
    variable: bool = False


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
        m = SHARD_RE.match(p.name)
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
            version = int(attrs.get("format_version", -1))
            if version == VARIABLE_FORMAT_VERSION and "shapes" in f:
                sizes = f["shapes"][:]
                low = sizes.min(axis=0) if len(sizes) else (0, 0)
                shape = (len(sizes), int(low[0]), int(low[1]), 3)
    except OSError as exc:
        raise WmiError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__})") from None
    if version not in (FORMAT_VERSION, VARIABLE_FORMAT_VERSION):
        raise WmiError(
            f"{path}: shard format version {version}, expected {FORMAT_VERSION} or "
            f"{VARIABLE_FORMAT_VERSION}"
        )
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
        variable=version == VARIABLE_FORMAT_VERSION,
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
        exact: require shards prepared with ``--size`` equal to ``size`` (what training
            wants: the crops are then at the scale the preset chose). Their images may be
            larger (``celeba``'s 256 x 313, the unscaled ``imagenet`` and ``places``): the
            loader crops them. With False, shards prepared at any size whose images are at
            least ``size`` a side are accepted.

    Raises:
        WmiError: no paths, or a shard that is unreadable, prepared at another size
            (``exact``) or with images smaller than ``size`` (one line).
    """
    if not paths:
        raise WmiError("no shard files given")
    infos = [shard_info(p) for p in paths]
    for info in infos:
        if exact and info.size != size:
            raise WmiError(
                f"{info.path}: prepared with --size {info.size}, not {size}; "
                f"prepare the data with --size {size}"
            )
        if info.height < size or info.width < size:
            raise WmiError(
                f"{info.path}: images are {info.width}x{info.height}, smaller than size {size}"
            )
    return infos


def write_shard(
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

    height, width = attrs["height"], attrs["width"]
    compression = COMPRESSIONS[attrs["compression"]].filter
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    with contextlib.suppress(_EmptyShard), atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            shapes = None
            if height and width:
                ds = f.create_dataset(
                    "images",
                    shape=(planned, height, width, 3),
                    maxshape=(None, height, width, 3),
                    dtype=np.uint8,
                    chunks=(1, height, width, 3),
                    compression=compression,
                )
            else:  # each image its own size: flat rows and their shapes
                vlen = h5py.vlen_dtype(np.uint8)
                ds = f.create_dataset("images", (planned,), maxshape=(None,), dtype=vlen)
                shapes = f.create_dataset("shapes", (planned, 2), np.int32, maxshape=(None, 2))
            for name, ok, result in images:
                if ok:
                    if shapes is None:
                        ds[len(names)] = result
                    else:
                        ds[len(names)] = result.reshape(-1)
                        shapes[len(names)] = result.shape[:2]
                    names.append(name)
                else:
                    skipped.append((name, str(result)))
            ds.resize(len(names), axis=0)
            if shapes is not None:
                shapes.resize(len(names), axis=0)
            f.create_dataset("names", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["planned"] = planned
            f.attrs["skipped"] = json.dumps(skipped)
        if not names:
            raise _EmptyShard  # leaves no file behind: atomic_path removes the temporary
    return len(names), skipped


class _EmptyShard(Exception):
    """Raised inside :func:`write_shard` to drop a shard whose every file was unreadable."""


def dataset_summary(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts per split, image size and disk use of a prepared folder (for ``wmi data info``).

    Returns:
        A JSON-ready dict: ``out_dir``, ``complete`` (manifest present), ``preset``,
        ``size``, ``height``, ``width`` (the smallest, with ``own_sizes``: each image its own
        size, the unscaled presets), ``compression``, ``splits`` (per split:
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
        "own_sizes": any(i.variable for i in infos),
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
            image = f["images"][i]
            if "shapes" in f:  # a shard of images of their own sizes
                image = image.reshape(*f["shapes"][i], 3)
            out.append((f"{_as_str(f.attrs['split'])}:{Path(name).name}", image))
    return out
