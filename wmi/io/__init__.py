"""Image and mask files: the one place where the on-disk conventions are applied.

On disk a mask is a lossless single-channel PNG where white (> 127) is the hole; in memory
the library works with boolean ``hole`` arrays (True = hole) or float validity masks
(1 = known). Every writer goes through :func:`atomic_path`, so an interrupted run never
leaves a file that looks complete but is not.

Three modules, one import: :mod:`wmi.io.files` (names, listing, atomic writes),
:mod:`wmi.io.images` (readers and writers: orientation, pixel limit, metadata) and
:mod:`wmi.io.pairing` (images with masks and predictions by stem, :func:`pair_folders`).
"""

from wmi.io.files import (
    DEFAULT_MASK_PATTERNS,
    IMAGE_EXTENSIONS,
    MASK_SET_PREVIEW,
    atomic_path,
    list_images,
    list_masks,
)
from wmi.io.images import (
    FORMATS,
    ImageInfo,
    image_decodes,
    load_image,
    open_rgb,
    orient,
    oriented_size,
    read_image,
    read_image_compact,
    read_mask,
    read_mask_levels,
    to_uint8,
    write_image,
    write_mask,
)
from wmi.io.pairing import (
    FolderPairing,
    PairedImage,
    Pairing,
    format_names,
    match_pattern,
    match_predictions,
    pair_by_stem,
    pair_folders,
    split_one_folder,
)
from wmi.kinds import DEFAULT_MAX_PIXELS, MASK_THRESHOLD

__all__ = [
    "DEFAULT_MASK_PATTERNS",
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "MASK_SET_PREVIEW",
    "MASK_THRESHOLD",
    "FolderPairing",
    "ImageInfo",
    "PairedImage",
    "Pairing",
    "atomic_path",
    "format_names",
    "image_decodes",
    "list_images",
    "list_masks",
    "load_image",
    "match_pattern",
    "match_predictions",
    "open_rgb",
    "orient",
    "oriented_size",
    "pair_by_stem",
    "pair_folders",
    "read_image",
    "read_image_compact",
    "read_mask",
    "read_mask_levels",
    "split_one_folder",
    "to_uint8",
    "write_image",
    "write_mask",
]
