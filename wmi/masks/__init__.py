"""Seeded hole masks and mask sets.

The paper's centre box and DeepFill v2 free-form strokes, NVIDIA-style irregular test masks in
hole-ratio buckets and LaMa's thin/medium/thick presets (:mod:`wmi.masks.generators`), and mask
sets on disk with their manifest, preview and statistics (:mod:`wmi.masks.sets`). Every name
below is importable from ``wmi.masks``::

    from wmi.masks import MaskSetSpec, generate, rng_for, write_mask_set

    hole = generate("freeform", 256, 256, rng_for(seed=0, index=12))  # == masks/000012.png
    write_mask_set("masks/freeform", MaskSetSpec("freeform", 256, 256, count=2000))

Mask kinds are the entries of :data:`wmi.kinds.MASK_KINDS`; docs/masks.md says how to add one.
Every generator returns a boolean ``(H, W)`` array where True marks the hole (on disk: white).
"""

from wmi.masks.generators import (
    BUCKET_LABELS,
    FREEFORM_ANGLE_RANGE,
    FREEFORM_MAX_STROKES,
    FREEFORM_MAX_VERTICES,
    FREEFORM_MAX_WIDTH,
    FREEFORM_MEAN_ANGLE,
    FREEFORM_MIN_STROKES,
    FREEFORM_MIN_VERTICES,
    FREEFORM_MIN_WIDTH,
    IRREGULAR_BUCKETS,
    LAMA_MAX_HOLE_RATIO,
    LAMA_PRESETS,
    MAX_TRIES,
    MIN_SIZE,
    box,
    center,
    check_kind_options,
    freeform,
    generate,
    hole_ratio,
    hole_ratio_bucket,
    irregular,
    lama,
    medium,
    rng_for,
    thick,
    thin,
    touches_border,
)
from wmi.masks.sets import (
    CHUNK,
    MANIFEST,
    MANIFEST_COLUMNS,
    PREVIEW_COUNT,
    PREVIEW_TILE,
    STAGING_PREFIX,
    MaskFolderStats,
    MaskRecord,
    MaskSetResult,
    MaskSetSpec,
    Progress,
    irregular_plan,
    mask_filename,
    mask_folder_stats,
    mask_set_stats,
    write_mask_files,
    write_mask_set,
)
from wmi.masks.targets import MaskTarget, image_targets, rng_for_name

__all__ = [
    "BUCKET_LABELS",
    "CHUNK",
    "FREEFORM_ANGLE_RANGE",
    "FREEFORM_MAX_STROKES",
    "FREEFORM_MAX_VERTICES",
    "FREEFORM_MAX_WIDTH",
    "FREEFORM_MEAN_ANGLE",
    "FREEFORM_MIN_STROKES",
    "FREEFORM_MIN_VERTICES",
    "FREEFORM_MIN_WIDTH",
    "IRREGULAR_BUCKETS",
    "LAMA_MAX_HOLE_RATIO",
    "LAMA_PRESETS",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "MAX_TRIES",
    "MIN_SIZE",
    "PREVIEW_COUNT",
    "PREVIEW_TILE",
    "STAGING_PREFIX",
    "MaskFolderStats",
    "MaskRecord",
    "MaskSetResult",
    "MaskSetSpec",
    "MaskTarget",
    "Progress",
    "box",
    "center",
    "check_kind_options",
    "freeform",
    "generate",
    "hole_ratio",
    "hole_ratio_bucket",
    "image_targets",
    "irregular",
    "irregular_plan",
    "lama",
    "mask_filename",
    "mask_folder_stats",
    "mask_set_stats",
    "medium",
    "rng_for",
    "rng_for_name",
    "thick",
    "thin",
    "touches_border",
    "write_mask_files",
    "write_mask_set",
]
