"""``wmi masks generate --for DIR --shard K/N``: the shards together write one run's files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.masks.test_cli_masks import run
from wmi.errors import WmiError
from wmi.io import list_images
from wmi.masks import MaskSetSpec, image_targets
from wmi.masks.shards import SetPart, write_mask_set_part
from wmi.procs import Shard


def visible(folder: Path) -> dict[str, bytes]:
    """The files a user sees (hidden lock files left out)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(["b", "a-1", "a", "z.v2", "c", "Δ", "d", "e"]):
        Image.fromarray(rng.integers(0, 255, (32 + i, 40, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    return folder


def generate(out: Path, images: Path, *extra: str) -> None:
    result = run("generate", out, "--kind", "freeform", "--for", images, "--seed", "3",
                 "--workers", "1", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("n", [2, 3, 11])
def test_shards_one_after_another_equal_one_run(tmp_path: Path, images: Path, n: int) -> None:
    generate(tmp_path / "one", images)
    out = tmp_path / f"shards{n}"
    for k in range(n):
        assert not (out / "manifest.csv").exists()  # incomplete until the last shard
        generate(out, images, "--shard", f"{k}/{n}")
    assert visible(out) == visible(tmp_path / "one")  # masks, manifest.csv, preview.png
    assert not list(out.glob(".wmi-masks-part-*"))


def test_empty_shard_says_so(tmp_path: Path, images: Path) -> None:
    stems = [p.stem for p in list_images(images)]
    empty = next(k for k in range(20) if not Shard(k, 20).take(stems, str))
    result = run("generate", tmp_path / "out", "--kind", "freeform", "--for", images,
                 "--shard", f"{empty}/20")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "holds none of the images" in result.output
    assert visible(tmp_path / "out") == {}


def test_shards_at_once_into_one_folder(tmp_path: Path, images: Path) -> None:
    generate(tmp_path / "one", images)
    out = tmp_path / "at-once"
    stems = tuple(p.stem for p in list_images(images))

    def shard(k: int) -> bool:
        targets, _ = image_targets(images, out, shard=Shard(k, 3))
        spec = MaskSetSpec.for_images("freeform", targets, seed=3)
        return write_mask_set_part(out, spec, SetPart(Shard(k, 3), stems), workers=1)[1]

    with ThreadPoolExecutor(3) as pool:
        completed = list(pool.map(shard, range(3)))
    assert sum(completed) == 1  # exactly one shard wrote the manifest
    assert visible(out) == visible(tmp_path / "one")


def test_shards_refuse_another_set_or_a_complete_one(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "out"
    generate(out, images, "--shard", "0/2")
    other = run("generate", out, "--kind", "freeform", "--for", images, "--seed", "4",
                "--shard", "1/2")  # fmt: skip
    assert other.exit_code == 2 and "another mask set" in other.output
    generate(out, images, "--shard", "1/2")
    again = run("generate", out, "--kind", "freeform", "--for", images, "--seed", "3",
                "--shard", "1/2")  # fmt: skip
    assert again.exit_code == 2 and "complete mask set" in again.output
    no_for = run("generate", tmp_path / "x", "--kind", "box", "--count", "4", "--shard", "0/2")
    assert no_for.exit_code == 2 and "--shard splits the images of --for" in no_for.output
    with pytest.raises(WmiError, match="no mask of this set"):
        (tmp_path / "stray").mkdir()
        (tmp_path / "stray" / "notes.txt").write_text("x")
        targets, _ = image_targets(images, tmp_path / "stray", shard=Shard(0, 2))
        spec = MaskSetSpec.for_images("freeform", targets)
        stems = tuple(p.stem for p in list_images(images))
        write_mask_set_part(tmp_path / "stray", spec, SetPart(Shard(0, 2), stems))
