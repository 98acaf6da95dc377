"""Whole batches from ``InpaintingDataset.__getitems__`` and :func:`wmi.data.collate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset, default_collate

from wmi.data import InpaintingDataset, collate, find_shards, prepare
from wmi.data.dataset import to_float
from wmi.io import write_mask


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """40×48 noise photos prepared at 32² (all train)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(3)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            root / f"p{i:02d}.png"
        )
    prepare(root, root / "shards", size=32, preset="plain", split=(1.0, 0.0, 0.0), workers=0)
    return root / "shards"


@pytest.fixture(scope="module")
def mask_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(4)
    for i in range(3):
        write_mask(folder / f"m{i}.png", rng.random((32, 32)) < 0.3)
    return folder


@pytest.mark.parametrize("masks", ["freeform", "folder"])
@pytest.mark.parametrize("size", [32, 20])  # 32: whole images read into the batch; 20: crops
@pytest.mark.parametrize("augment", [True, False])
def test_batches_are_the_items_bit_for_bit(
    shards: Path, mask_dir: Path, masks: str, size: int, augment: bool
) -> None:
    paths = find_shards(shards, "train")
    source = mask_dir if masks == "folder" else masks
    bytes_ = InpaintingDataset(paths, source, size=size, augment=augment, seed=7, uint8=True)
    floats = InpaintingDataset(paths, source, size=size, augment=augment, seed=7)
    for epoch in (0, 3):
        bytes_.set_epoch(epoch)
        floats.set_epoch(epoch)
        idx = [5, 0, 11, 5, -1, 7, 2]
        items = bytes_.__getitems__(idx)
        images, valid = collate(items)
        want_images, want_valid = default_collate([bytes_[i] for i in idx])
        assert torch.equal(images, want_images) and torch.equal(valid, want_valid)
        # any other collate function gets ordinary items
        again = default_collate(items)
        assert torch.equal(again[0], want_images) and torch.equal(again[1], want_valid)
        got = to_float(images, valid)
        want = default_collate([floats[i] for i in idx])
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert collate(floats.__getitems__(idx))[0].equal(want[0])


def test_worker_batches_equal_the_serial_ones(shards: Path) -> None:
    paths = find_shards(shards, "train")
    ds = InpaintingDataset(paths, "freeform", size=32, seed=2, uint8=True)
    serial = list(DataLoader(ds, batch_size=5, collate_fn=collate))
    parallel = list(DataLoader(ds, batch_size=5, num_workers=2, collate_fn=collate))
    assert len(serial) == len(parallel) == 3
    for (a, b), (c, d) in zip(serial, parallel, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    # a Subset passes whole batches to the dataset too
    sub = list(DataLoader(Subset(ds, range(10)), batch_size=5, collate_fn=collate))
    assert torch.equal(sub[1][0], serial[1][0]) and torch.equal(sub[1][1], serial[1][1])


def test_index_out_of_range_in_a_batch(shards: Path) -> None:
    ds = InpaintingDataset(find_shards(shards, "train"), "freeform", size=32, uint8=True)
    with pytest.raises(IndexError):
        ds.__getitems__([0, len(ds)])
