"""``wmi inpaint folder --shard K/N``: the shards together write one run's files."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.masks.test_mask_shards import visible
from wmi.cli import app
from wmi.errors import WmiError
from wmi.inpaint.folder import inpaint_folder
from wmi.procs import Shard


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Seven images, masks in LaMa's layout: two images have two masks each."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(1)
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (24, 20 + i, 3), dtype=np.uint8)).save(
            images / f"im{i}.png"
        )
        hole = np.zeros((24, 20 + i), np.uint8)
        hole[5:12, 4 + i : 12 + i] = 255
        names = [f"im{i}_mask000", f"im{i}_mask001"] if i in (2, 5) else [f"im{i}"]
        for j, name in enumerate(names):
            Image.fromarray(np.roll(hole, 3 * j, axis=0)).save(masks / f"{name}.png")
    return images, masks


@pytest.mark.parametrize("n", [2, 3, 12])
def test_shards_equal_one_run(tmp_path: Path, folders: tuple[Path, Path], n: int) -> None:
    images, masks = folders
    out = tmp_path / "sharded"
    counts = []
    for k in [None, *range(n)]:
        shard = [] if k is None else ["--shard", f"{k}/{n}"]
        result = CliRunner().invoke(app, ["inpaint", "folder", str(images), str(masks),
                                          str(tmp_path / "one" if k is None else out), "--method",
                                          "telea", "--workers", "1", "--json", *shard])  # fmt: skip
        assert result.exit_code == 0, result.output
        if k is not None:
            counts.append(json.loads(result.stdout)["processed"])
    assert visible(out) == visible(tmp_path / "one")  # nine results, none twice
    assert len(visible(out)) == 9
    record = (tmp_path / "one" / ".wmi-inpaint.json").read_bytes()
    assert (out / ".wmi-inpaint.json").read_bytes() == record
    if n > 7:
        assert 0 in counts  # an empty shard runs and writes nothing
    stems = [f"im{i}" for i in range(7)]
    assert counts == [sum(1 + (s in ("im2", "im5")) for s in Shard(k, n).take(stems, str))
                      for k in range(n)]  # fmt: skip


def test_shards_at_once_into_one_folder(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    images, masks = folders
    inpaint_folder(images, masks, tmp_path / "one", "telea", workers=1)
    out = tmp_path / "at-once"
    out.mkdir()

    def shard(k: int) -> int:
        return inpaint_folder(images, masks, out, "telea", workers=1, shard=Shard(k, 3)).processed

    with ThreadPoolExecutor(3) as pool:
        assert sum(pool.map(shard, range(3))) == 9
    assert visible(out) == visible(tmp_path / "one")
    # the record still refuses another method, sharded or not
    with pytest.raises(WmiError, match="holds results made with"):
        inpaint_folder(images, masks, out, "biharmonic", shard=Shard(0, 3))
