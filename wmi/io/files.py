"""File names, listing and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Mask file names tried for an image ``stem``: IOPaint's (same stem) and LaMa's.
DEFAULT_MASK_PATTERNS = ("{stem}.png", "{stem}_mask*.png")
#: The contact sheet ``wmi masks generate`` writes next to a mask set's ``manifest.csv``.
MASK_SET_PREVIEW = "preview.png"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (os.umask can only be read by setting it): outputs get the usual
# permissions (0o644 with umask 022) instead of mkstemp's owner-only 0o600.
_FILE_MODE = 0o666 & ~_read_umask()


#: What ``mkstemp`` adds to a prefix and suffix: 8 random characters.
_RANDOM_CHARS = 8
#: The longest file name where the file system does not say (ext4, XFS, btrfs: 255 bytes).
_NAME_MAX = 255


def temp_stem(path: str | os.PathLike[str]) -> str:
    """The part of ``path``'s stem that :func:`atomic_path` puts in its temporary name.

    The whole stem where it fits: ``.STEM.XXXXXXXX.tmp.SUFFIX`` is 15 bytes longer than the
    name itself, so for a legal name near the limit (255 bytes) the stem is cut (at a byte;
    names are bytes on disk) until the temporary name fits too.
    """
    path = Path(path)
    try:
        name_max = os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = _NAME_MAX
    extra = len(".") + len(".") + _RANDOM_CHARS + len(".tmp") + len(os.fsencode(path.suffix))
    return os.fsdecode(os.fsencode(path.stem)[: max(1, name_max - extra)])


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name (``.STEM.XXXXXXXX.tmp.SUFFIX``, :func:`temp_stem`) starts with a dot
    and keeps the suffix, so tools that pick the format from the extension still work and
    folder listings do not show half-written files.
    On an exception the temporary file is removed and ``path`` is left as it was. An
    ``OSError`` that names no file, or only the temporary one (Pillow's failed write on a full
    disk), is raised again with ``path`` as its ``filename``, so the message names the result.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{temp_stem(path)}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as exc:  # names the temporary file it tried
        raise _about(path, exc) from exc
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno is None or exc.filename not in (None, tmp):
            raise
        raise _about(path, exc) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _about(path: Path, exc: OSError) -> OSError:
    """``exc`` (errno and message) with ``path`` as its file."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by extension, case-insensitive), sorted, hidden files skipped."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def list_masks(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Mask files in ``folder``: :func:`list_images` without a mask set's own contact sheet.

    ``wmi masks generate`` writes ``preview.png`` beside ``manifest.csv``; that picture is not
    a mask and must not be paired, trained on or scored.
    """
    return [
        p
        for p in list_images(folder, recursive)
        if not (p.name == MASK_SET_PREVIEW and (p.parent / "manifest.csv").is_file())
    ]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MiB blocks: memory stays small)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
