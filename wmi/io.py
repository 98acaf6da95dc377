"""Image and mask files: the one place where the on-disk conventions are applied.

On disk a mask is a lossless single-channel PNG where white (> 127) is the hole; in memory
the library works with boolean ``hole`` arrays (True = hole) or float validity masks
(1 = known). Every writer goes through :func:`atomic_path`, so an interrupted run never
leaves a file that looks complete but is not.
"""

from __future__ import annotations

import bisect
import contextlib
import fnmatch
import glob
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from wmi.errors import WmiError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Mask file names tried for an image ``stem``: IOPaint's (same stem) and LaMa's.
DEFAULT_MASK_PATTERNS = ("{stem}.png", "{stem}_mask*.png")
MASK_THRESHOLD = 127
#: The contact sheet ``wmi masks generate`` writes next to a mask set's ``manifest.csv``.
MASK_SET_PREVIEW = "preview.png"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (os.umask can only be read by setting it): outputs get the usual
# permissions (0o644 with umask 022) instead of mkstemp's owner-only 0o600.
_FILE_MODE = 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary name starts with a dot and keeps the suffix, so tools that pick the format
    from the extension still work and folder listings do not show half-written files.
    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


#: Default limit of every reader here: 100 megapixels (e.g. 12000 x 8333). A decoded image
#: costs 3-4 bytes per pixel before any work; past this a file is more likely a decompression
#: bomb than a photograph. ``--max-pixels`` (or ``max_pixels=``) moves it; 0 means no limit.
DEFAULT_MAX_PIXELS = 100_000_000

_ORIENTATION_TAG = 0x0112

# wmi enforces its own explicit pixel limit on every open below; Pillow's warning between its
# limit and twice it would only repeat that check, in the middle of a progress bar.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass
class ImageInfo:
    """What a reader found besides the pixels; :func:`write_image` carries it to a result.

    Attributes:
        exif: the EXIF block with its orientation reset to 1 (the pixels are already turned),
            or None.
        icc_profile: the embedded ICC colour profile, or None.
        dpi: ``(x, y)`` resolution, or None.
        had_alpha: the file had an alpha channel, which was dropped.
    """

    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    had_alpha: bool = False


def _limit_text(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} megapixels" if pixels >= 1_000_000 else f"{pixels} pixels"


def _open(
    path: Path, draft_size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Open ``path`` (header only) with the pixel limit checked; pixels decode on first use."""
    if not path.is_file():
        raise WmiError(f"{path}: no such file")
    limit = max_pixels if max_pixels > 0 else None
    pillow = Image.MAX_IMAGE_PIXELS
    if pillow is not None and (limit is None or limit > pillow):
        # Raise Pillow's own bomb limit (never lower it) so that ours is the one that speaks.
        Image.MAX_IMAGE_PIXELS = limit
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        raise WmiError(
            f"{path}: over the limit of {_limit_text(max_pixels)} (a possible decompression "
            "bomb; --max-pixels raises the limit)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise WmiError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    if limit is not None and img.width * img.height > limit:
        img.close()
        raise WmiError(
            f"{path}: {img.width}x{img.height} is {_limit_text(img.width * img.height)}, over "
            f"the limit of {_limit_text(limit)} (--max-pixels raises it)"
        )
    if draft_size is not None:
        # JPEG only: decode at 1/2, 1/4 or 1/8 scale while both sides stay >= draft_size.
        img.draft(None, (draft_size, draft_size))
    return img


def _load(path: Path, img: Image.Image) -> None:
    """Decode the pixels of an opened image; a damaged file is a :class:`WmiError`."""
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise WmiError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or broken."""
    try:
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block must not make the pixels unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an ``(H, W, ...)`` array the way EXIF ``orientation`` says (the one rule of wmi).

    The same transforms as Pillow's ``ImageOps.exif_transpose``, on arrays, so 8-bit and
    16-bit files, images and masks turn alike.
    """
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1],
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return array if turned is None else np.ascontiguousarray(turned(array))


def oriented_size(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """``(height, width)`` of an image once its EXIF orientation is applied (header only)."""
    path = Path(path)
    with _open(path, max_pixels=max_pixels) as img:
        h, w = img.height, img.width
        return (w, h) if _orientation(img) >= 5 else (h, w)


def _info(img: Image.Image) -> ImageInfo:
    """The metadata of an opened image; resets its (cached) EXIF orientation to 1."""
    exif_bytes = None
    with contextlib.suppress(Exception):
        exif = img.getexif()
        if len(exif):
            if _ORIENTATION_TAG in exif:
                exif[_ORIENTATION_TAG] = 1
            exif_bytes = exif.tobytes()
    dpi = img.info.get("dpi")
    return ImageInfo(
        exif=exif_bytes,
        icc_profile=img.info.get("icc_profile") or None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        had_alpha=img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info,
    )


_DEEP_MODES = ("I;16", "I;16B", "I;16L", "I")


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Pixels of an opened (not yet turned) image as uint8 ``(H, W, 3)``."""
    if img.mode in _DEEP_MODES:
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255)
        return np.repeat(arr.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def load_image(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageInfo]:
    """Read an image at its bit depth, EXIF orientation applied, with its metadata.

    The one reader of wmi's images: 8-bit files give uint8 ``(H, W, 3)``; 16-bit PNG/TIFF give
    float32 ``(H, W, 3)`` in [0, 1] (decoded by OpenCV, which keeps the 16 bits Pillow drops),
    turned by the same orientation rule (:func:`orient`). Grey, palette and CMYK images are
    converted to RGB; an alpha channel is dropped (``info.had_alpha``).

    Raises:
        WmiError: the file is missing, unreadable, or over ``max_pixels`` (0: no limit).
    """
    path = Path(path)
    with _open(path, max_pixels=max_pixels) as img:
        orientation = _orientation(img)
        info = _info(img)  # after: it resets the orientation of the image's EXIF
        deep = _read_16bit(path) if _is_16bit(path) else None
        if deep is None:
            _load(path, img)
            pixels = _to_rgb8(img)
    return orient(deep if deep is not None else pixels, orientation), info


def open_rgb(path: str | os.PathLike[str], min_size: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied.

    Grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit images are converted.

    Args:
        path: the image file.
        min_size: when given, a large JPEG may be decoded at a reduced scale (1/2, 1/4, 1/8)
            as long as both sides stay at least ``min_size`` pixels; a fast first step before
            a downscale to about that size. Other formats ignore it.

    Raises:
        WmiError: the file is missing, unreadable, or over :data:`DEFAULT_MAX_PIXELS`.
    """
    path = Path(path)
    with _open(path, draft_size=min_size) as img:
        _load(path, img)
        orientation = _orientation(img)
        pixels = _to_rgb8(img)
    return Image.fromarray(orient(pixels, orientation))


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as float32 ``(H, W, 3)`` in [0, 1], keeping 16-bit precision.

    :func:`load_image` (orientation applied, alpha dropped) scaled to [0, 1].

    Raises:
        WmiError: the file is missing, not a readable image, or over ``max_pixels``.
    """
    image, _ = load_image(path, max_pixels)
    return image if image.dtype == np.float32 else image.astype(np.float32) / 255.0


def read_image_compact(path: str | os.PathLike[str]) -> np.ndarray:
    """:func:`read_image`'s pixels in a quarter of the memory where that loses nothing.

    Returns:
        uint8 ``(H, W, 3)`` for an 8-bit file (``read_image`` is this / 255 in float32), or
        what :func:`read_image` returns for a 16-bit one.
    """
    path = Path(path)
    if _is_16bit(path):
        return read_image(path)
    return np.asarray(open_rgb(path))


def _is_16bit(path: Path) -> bool:
    """Whether a PNG or TIFF stores 16 bits per sample, from its header alone."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            with open(path, "rb") as f:
                header = f.read(25)  # signature (8) + IHDR length/type (8) + w, h (8) + depth
            return len(header) == 25 and header[24] == 16
        if suffix in (".tif", ".tiff"):
            with Image.open(path) as img:
                bits = img.tag_v2.get(258, (8,))
                return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    except (OSError, UnidentifiedImageError, AttributeError):
        return False  # the caller names the file and the problem
    return False


def _read_16bit(path: Path) -> np.ndarray | None:
    """16-bit RGB(A) or gray PNG/TIFF through OpenCV (Pillow truncates 16-bit RGB to 8 bits).

    The pixels as stored: the caller applies the EXIF orientation (OpenCV's
    ``IMREAD_UNCHANGED`` ignores it).
    """
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    else:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return arr.astype(np.float32) / 65535.0


def _looks_like_a_photo(rgb: np.ndarray) -> bool:
    """Many different strong colours: a colour photograph, not a mask (flat red is a mask).

    Looks at up to 65,536 evenly spread pixels, so it costs the same for any size.
    """
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65536)))
    sample = rgb[::step, ::step].reshape(-1, 3).astype(np.int32)
    coloured = sample[(sample.max(axis=1) - sample.min(axis=1)) > 24]
    if len(coloured) <= len(sample) // 4:
        return False
    packed = (coloured[:, 0] << 16) | (coloured[:, 1] << 8) | coloured[:, 2]
    return len(np.unique(packed)) > 64


def read_mask_levels(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read a mask file as uint8 grey levels ``(H, W)``: 0 = known ... 255 = hole.

    Colour masks are converted to luminance (alpha is ignored); 16-bit masks are scaled to
    8 bits; the EXIF orientation is applied like an image's (:func:`orient`). Grey levels are
    kept: threshold them (:func:`read_mask`) or use them as soft validity.

    Raises:
        WmiError: the file is missing, unreadable, over ``max_pixels``, or a colour
            photograph (many different colours: an image and its mask given the wrong way
            round).
    """
    path = Path(path)
    with _open(path, max_pixels=max_pixels) as img:
        _load(path, img)
        orientation = _orientation(img)
        if img.mode in _DEEP_MODES:
            arr = np.asarray(img, dtype=np.float64)
            levels = np.clip(np.rint(arr / 257.0 if arr.max() > 255 else arr), 0, 255)
            levels = levels.astype(np.uint8)
        elif img.mode in ("L", "1"):
            levels = np.asarray(img.convert("L"))
        else:
            rgb = np.asarray(img.convert("RGB"))
            if rgb.size >= 3 * 1024 and _looks_like_a_photo(rgb):
                raise WmiError(
                    f"{path}: does not look like a mask (a colour picture: many different "
                    "colours); a mask is white (hole) on black — are the image and the mask "
                    "swapped?"
                )
            levels = np.asarray(Image.fromarray(rgb).convert("L"))
    return orient(levels, orientation)


def read_mask(
    path: str | os.PathLike[str],
    threshold: int = MASK_THRESHOLD,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask file as a boolean ``(H, W)`` array, True = hole (grey level > ``threshold``).

    See :func:`read_mask_levels`.

    Raises:
        WmiError: as :func:`read_mask_levels`.
    """
    return read_mask_levels(path, max_pixels) > threshold


def write_mask(path: str | os.PathLike[str], hole: np.ndarray) -> None:
    """Write a boolean hole array as an 8-bit PNG, 255 = hole, atomically."""
    hole = np.asarray(hole)
    if hole.ndim != 2:
        raise ValueError(f"expected a 2-D hole array, got shape {hole.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(np.where(hole, 255, 0).astype(np.uint8), mode="L").save(tmp, format="PNG")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 with rounding; uint8 input is returned unchanged."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


#: File format of each result extension.
FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def _save_options(fmt: str, info: ImageInfo | None) -> dict[str, object]:
    """Metadata keywords of Pillow's ``save`` that ``fmt`` can store."""
    if info is None:
        return {}
    options: dict[str, object] = {}
    if info.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = info.exif
    if info.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = info.icc_profile
    if info.dpi and fmt in ("JPEG", "PNG", "TIFF"):
        options["dpi"] = info.dpi
    return options


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    quality: int = 95,
    png_compress_level: int = 6,
    info: ImageInfo | None = None,
) -> None:
    """Write an ``(H, W, 3)`` image (uint8, or float in [0, 1]) atomically; format from suffix.

    Args:
        path: the result; its suffix picks the format (:data:`FORMATS`).
        image: the pixels, already turned upright.
        quality: JPEG/WebP quality (1-100).
        png_compress_level: zlib level (0-9) of a PNG; 1 writes about 3x faster than Pillow's
            default 6 for files about 7 % larger.
        info: metadata of the input (:func:`load_image`): EXIF (orientation 1), ICC profile
            and DPI are written where the format can hold them.

    Raises:
        WmiError: an unsupported suffix.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WmiError(f"{path}: unsupported image format {path.suffix!r}")
    kwargs = _save_options(fmt, info)
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    elif fmt == "PNG":
        kwargs["compress_level"] = png_compress_level
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format=fmt, **kwargs)


def image_decodes(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> bool:
    """Whether ``path`` is a complete image (all pixels decode) of ``(height, width)`` ``size``.

    A result truncated by a kill or a full disk fails this; use it before trusting a file.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return size is None or (img.height, img.width) == tuple(size)
    except Exception:  # any decoder failure means "not a usable result"
        return False


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
