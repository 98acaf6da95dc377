"""Reading and writing images and masks: orientation, pixel limits, metadata, formats."""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from wmi.errors import WmiError
from wmi.io.files import atomic_path
from wmi.kinds import DEFAULT_MAX_PIXELS, MASK_THRESHOLD

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
    frames = getattr(img, "n_frames", 1)
    if frames > 1:  # an APNG or a multi-page TIFF: taking its first frame would be a guess
        img.close()
        raise WmiError(
            f"{path}: holds {frames} frames (an animation or a multi-page file); wmi reads "
            "files of one picture"
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
    if img.mode == "F" and not np.isfinite(np.asarray(img)).all():  # a float TIFF
        raise WmiError(f"{path}: holds NaN or infinite pixel values")


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


#: TIFF tags that describe how pixels are stored, not the photograph (sizes, bits, samples,
#: compression, strips and tiles, palette, colour profile, resolution). Pillow's ``getexif``
#: of a TIFF returns them with the EXIF; written into a result they would describe the
#: input's layout (1 grey sample of 8 bits, a strip offset) and make the result unreadable.
#: The encoder writes its own; ICC profile and DPI are carried by their own keywords.
_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281,
     282, 283, 284, 288, 289, 290, 291, 292, 293, 296, 317, 318, 319, 320, 321, 322, 323,
     324, 325, 330, 332, 338, 339, 340, 341, 347, 512, 513, 514, 515, 517, 518, 519, 520,
     521, 529, 530, 531, 532, 34675}
)  # fmt: skip


def _info(img: Image.Image) -> ImageInfo:
    """The metadata of an opened image; resets its (cached) EXIF orientation to 1."""
    exif_bytes = None
    with contextlib.suppress(Exception):
        exif = img.getexif()
        for tag in _LAYOUT_TAGS.intersection(exif):
            del exif[tag]
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
    return load_image(path)[0]


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


#: The most EXIF bytes a JPEG's APP1 marker holds (Pillow refuses more).
JPEG_MAX_EXIF = 65533
#: Write errors that end a whole run instead of one file: the disk or the quota is full.
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _save_options(
    path: Path, fmt: str, info: ImageInfo | None
) -> tuple[dict[str, object], list[str]]:
    """Metadata keywords of Pillow's ``save`` that ``fmt`` can store, and notes on what not."""
    if info is None:
        return {}, []
    options: dict[str, object] = {}
    notes = []
    if info.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        if fmt == "JPEG" and len(info.exif) > JPEG_MAX_EXIF:
            notes.append(
                f"{path}: EXIF left out ({len(info.exif):,} bytes; a JPEG holds at most "
                f"{JPEG_MAX_EXIF:,})"
            )
        else:
            options["exif"] = info.exif
    if info.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = info.icc_profile
    if info.dpi and fmt in ("JPEG", "PNG", "TIFF"):
        options["dpi"] = info.dpi
    return options, notes


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    quality: int = 95,
    png_compress_level: int = 6,
    info: ImageInfo | None = None,
) -> list[str]:
    """Write an ``(H, W, 3)`` image (uint8, or float in [0, 1]) atomically; format from suffix.

    Args:
        path: the result; its suffix picks the format (:data:`FORMATS`).
        image: the pixels, already turned upright.
        quality: JPEG/WebP quality (1-100).
        png_compress_level: zlib level (0-9) of a PNG; 1 writes about 3x faster than Pillow's
            default 6 for files about 7 % larger.
        info: metadata of the input (:func:`load_image`): EXIF (orientation 1), ICC profile
            and DPI are written where the format can hold them.

    Returns:
        Notes on metadata left out, each naming ``path`` (an EXIF block over
        :data:`JPEG_MAX_EXIF` bytes in a JPEG); empty when everything was kept.

    Raises:
        WmiError: an unsupported suffix, or the encoder failed (naming ``path``).
        OSError: the disk or quota is full (:data:`OUT_OF_SPACE`), with ``path`` as filename;
            or the folder cannot be written.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WmiError(f"{path}: unsupported image format {path.suffix!r}")
    kwargs, notes = _save_options(path, fmt, info)
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    elif fmt == "PNG":
        kwargs["compress_level"] = png_compress_level
    with atomic_path(path) as tmp:
        try:
            Image.fromarray(to_uint8(image)).save(tmp, format=fmt, **kwargs)
        except (ValueError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE:
                raise
            raise WmiError(f"{path}: cannot be written as {fmt}: {exc}") from exc
    return notes


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
