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

from wmi.errors import WmiError, printable
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
        WmiError: the file is missing, not HDF5, not a wmi shard, of another format version,
            or tampered with: images not uint8, more images declared than stored, names
            missing, attributes of the wrong type or skipped not JSON.
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
            shape, dtype, chunks = images.shape, images.dtype, images.chunks
            # one chunk per image (write_shard): a shard whose 'images' claims more images
            # than it stores would read as zeros (a million of them for a 13-image file)
            stored = images.id.get_num_chunks() if chunks is not None else None
            names = f["names"].shape if "names" in f else None
            version = _attr(path, attrs, "format_version", int, -1)
            variable = version == VARIABLE_FORMAT_VERSION
            sizes = f["shapes"][:] if variable and "shapes" in f else None
    except OSError as exc:
        raise WmiError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__})") from None
    if version not in (FORMAT_VERSION, VARIABLE_FORMAT_VERSION):
        raise WmiError(
            f"{path}: shard format version {version}, expected {FORMAT_VERSION} or "
            f"{VARIABLE_FORMAT_VERSION}"
        )
    if variable:
        shape = _variable_shape(path, shape, sizes)
    else:
        _check_fixed(path, shape, dtype, chunks, stored)
    if names != (shape[0],):
        raise WmiError(f"{path}: 'names' does not hold one name per image")
    skipped_text = _attr(path, attrs, "skipped", _as_str, "[]")
    try:
        skipped = tuple((str(n), str(r)) for n, r in json.loads(skipped_text))
    except (ValueError, TypeError):
        raise WmiError(
            f"{path}: attribute 'skipped' is not a JSON list of [name, reason]"
        ) from None
    return ShardInfo(
        path=path,
        split=_attr(path, attrs, "split", _as_str, ""),
        count=int(shape[0]),
        height=int(shape[1]),
        width=int(shape[2]),
        size=_attr(path, attrs, "size", int, shape[1]),
        preset=_attr(path, attrs, "preset", _as_str, ""),
        compression=_attr(path, attrs, "compression", _as_str, "none"),
        planned=_attr(path, attrs, "planned", int, shape[0]),
        skipped=skipped,
        variable=variable,
    )


def _check_fixed(path: Path, shape: tuple, dtype: Any, chunks: Any, stored: int | None) -> None:
    """Format 1: ``images`` is uint8 ``(N, H, W, 3)``, one stored chunk per declared image."""
    if len(shape) != 4 or shape[3] != 3 or min(shape[1:3], default=0) < 1:
        raise WmiError(f"{path}: 'images' has shape {shape}, expected (N, H, W, 3)")
    if dtype != np.uint8:
        raise WmiError(f"{path}: 'images' holds {dtype} values, expected uint8")
    if chunks != (1, *shape[1:]) or stored != shape[0]:
        raise WmiError(
            f"{path}: 'images' declares {shape[0]:,} images but stores {stored or 0:,} "
            "(one per chunk); the shard is damaged or was not written by wmi"
        )


def _variable_shape(path: Path, shape: tuple, sizes: np.ndarray | None) -> tuple:
    """Format 2: flat rows and their ``shapes`` (N, 2); the shape of the smallest image."""
    if sizes is None or len(shape) != 1 or sizes.shape != (shape[0], 2) or (sizes < 1).any():
        raise WmiError(f"{path}: 'shapes' does not hold a positive (height, width) per image")
    low = sizes.min(axis=0) if len(sizes) else (0, 0)
    return (len(sizes), int(low[0]), int(low[1]), 3)


def _attr(path: Path, attrs: dict[str, Any], name: str, kind: Any, default: Any) -> Any:
    """Attribute ``name`` of a shard as ``kind`` (int or str), or ``default`` when absent."""
    if name not in attrs:
        return default
    value = attrs[name]
    value = value.item() if isinstance(value, np.generic) else value
    try:
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        return kind(value)
    except (TypeError, ValueError, UnicodeDecodeError):
        raise WmiError(f"{path}: attribute {name!r} is {value!r}, not {kind.__name__}") from None


def check_manifest(out_dir: str | os.PathLike[str]) -> None:
    """Check that the shards ``manifest.json`` lists are all there, with their image counts.

    A deleted shard (or one replaced by a folder or a link) would otherwise leave a dataset
    that looks complete with fewer images. A folder without a manifest (preparation not
    finished) is not checked here.

    Raises:
        WmiError: an unreadable manifest, or a listed shard that is missing, not a regular
            file, or holds another number of images.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        return
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["shards"]
        entries = [(str(e["file"]), int(e["images"])) for s in SPLITS for e in listed.get(s, [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise WmiError(f"{path}: not a readable manifest of shards") from None
    for name, images in entries:
        shard = out_dir / Path(name).name
        if shard.is_symlink() or not shard.is_file():
            what = (
                "is missing" if not shard.exists() and not shard.is_symlink() else "is not a file"
            )
            raise WmiError(
                f"{shard}: {MANIFEST_NAME} lists it with {images} images, but it {what}; "
                "run wmi data prepare again to redo it"
            )
        count = shard_info(shard).count
        if count != images:
            raise WmiError(f"{shard}: holds {count} images, {MANIFEST_NAME} lists {images}")


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
            # UTF-8 strings: a name's bytes that are not UTF-8 are written as \xNN
            shown = [printable(name) for name in names]
            f.create_dataset("names", data=np.array(shown, dtype=object), dtype=h5py.string_dtype())
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
    check_manifest(out_dir)
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
