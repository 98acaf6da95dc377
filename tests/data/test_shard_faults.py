"""Tampered and missing shards: checked when opened, one line naming the file (issue 21,
items 11 and 15)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.data.test_data import make_images
from wmi import data
from wmi.data.shards import dataset_summary, shard_info
from wmi.errors import WmiError


@pytest.fixture()
def prepared(tmp_path: Path) -> Path:
    make_images(tmp_path / "src", 21)
    data.prepare(tmp_path / "src", tmp_path / "d", size=16, seed=0, shard_size=4, workers=0)
    return tmp_path / "d"


def _rewrite(shard: Path, images=None, count=None, **attrs) -> None:
    """Rewrite ``shard`` with other images / a declared count / attributes."""
    with h5py.File(shard, "r") as f:
        old, names, old_attrs = f["images"][:], f["names"][:], dict(f.attrs)
    images = old if images is None else images
    with h5py.File(shard, "w") as f:
        n = len(images) if count is None else count
        ds = f.create_dataset("images", shape=(n, *images.shape[1:]), dtype=images.dtype,
                              chunks=(1, *images.shape[1:]))  # fmt: skip
        ds[: len(images)] = images
        f.create_dataset("names", data=names if count is None else np.resize(names, n))
        for key, value in {**old_attrs, **attrs}.items():
            f.attrs[key] = value


@pytest.mark.parametrize(
    "change,says",
    [
        (dict(images="float32"), "holds float32 values, expected uint8"),
        (dict(images="uint16"), "holds uint16 values, expected uint8"),
        (dict(count=1_000_000), "declares 1,000,000 images but stores 4"),
        (dict(skipped="{not json"), "attribute 'skipped' is not a JSON list"),
        (dict(format_version="abc"), "attribute 'format_version' is 'abc', not int"),
        (dict(size=1.5), "attribute 'size' is 1.5, not int"),
    ],
)
def test_a_tampered_shard_is_one_line_when_opened(prepared: Path, change: dict, says: str) -> None:
    shard = prepared / "train-00000.h5"
    if "images" in change:
        with h5py.File(shard, "r") as f:
            change["images"] = f["images"][:].astype(change["images"])
    _rewrite(shard, **change)
    for read in (shard_info, lambda p: dataset_summary(p.parent),
                 lambda p: data.InpaintingDataset([p], "box", size=16)):  # fmt: skip
        with pytest.raises(WmiError, match=says) as caught:
            read(shard)
        assert str(caught.value).startswith(str(shard)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("how", ["deleted", "folder", "link to /dev/zero"])
def test_a_missing_shard_is_named_not_silently_dropped(prepared: Path, how: str) -> None:
    from wmi.training.config import TrainConfig
    from wmi.training.loader import open_datasets

    manifest = json.loads((prepared / "manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 21
    shard = prepared / "train-00001.h5"
    shard.unlink()
    if how == "folder":
        shard.mkdir()
    elif how != "deleted":
        os.symlink("/dev/zero", shard)
    with pytest.raises(WmiError, match=r"train-00001.h5: manifest.json lists it with 4 images"):
        dataset_summary(prepared)
    cfg = TrainConfig(data=str(prepared), out="x", size=16, layers=4, steps=1, masks="box")
    with pytest.raises(WmiError, match=r"train-00001.h5: manifest.json lists it"):
        open_datasets(cfg)
