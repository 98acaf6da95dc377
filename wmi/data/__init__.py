"""Training data: image folders to HDF5 shards, and the dataset that feeds training.

Two halves, one module each:

- :mod:`wmi.data.preparation`: ``prepare`` (``wmi data prepare``) turns a folder of images
  into shards ``OUT_DIR/{train,val,test}-00000.h5`` (presets, split assignment, decode
  workers, resume, manifest);
- :mod:`wmi.data.dataset`: :class:`InpaintingDataset` reads the shards for training.

Both use :mod:`wmi.data.shards`, the shard format (find, read, check, write, summarize).
Every public name is importable from ``wmi.data``. Nothing here imports torch at import time;
the loader benchmark is :func:`wmi.bench.data.benchmark_loader`.
"""

from __future__ import annotations

from wmi.data.dataset import InpaintingDataset, MaskFn, collate
from wmi.data.preparation import (
    DEFAULT_SPLIT,
    PrepareResult,
    assign_splits,
    check_split,
    load_for_preset,
    parse_split,
    prepare,
    preset_shape,
    resize_for_preset,
    split_counts,
    stored_shape,
)
from wmi.data.shards import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    OPTIONS_NAME,
    PREVIEW_NAME,
    SPLITS,
    ShardInfo,
    check_shards,
    dataset_summary,
    find_shards,
    sample_images,
    shard_info,
    shard_path,
)

__all__ = [
    "DEFAULT_SPLIT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "OPTIONS_NAME",
    "PREVIEW_NAME",
    "SPLITS",
    "InpaintingDataset",
    "MaskFn",
    "PrepareResult",
    "ShardInfo",
    "assign_splits",
    "check_shards",
    "check_split",
    "collate",
    "dataset_summary",
    "find_shards",
    "load_for_preset",
    "parse_split",
    "prepare",
    "preset_shape",
    "resize_for_preset",
    "sample_images",
    "shard_info",
    "shard_path",
    "split_counts",
    "stored_shape",
]
