"""The paper's data: CelebA stored at 256x313, ImageNet/Places2 unscaled, and the loader's crops
(random for training, the centre for validation)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.training.test_train import _cfg
from wmi import data
from wmi.cli import app
from wmi.errors import WmiError
from wmi.training.loader import open_datasets


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("preset", ["imagenet", "places"])
def test_unscaled_presets_keep_the_pixels(preset: str) -> None:
    wide = noise(50, 100)  # 100 wide: over the 2 * 32 cap, the centre 64 columns are kept
    np.testing.assert_array_equal(data.resize_for_preset(Image.fromarray(wide), preset, 32),
                                  wide[:, 18:82])  # fmt: skip
    middle = noise(40, 60, seed=1)  # between size and the cap: stored as it is
    np.testing.assert_array_equal(
        data.resize_for_preset(Image.fromarray(middle), preset, 32), middle
    )
    # shorter side below size: scaled up to it (aspect kept), then capped
    assert data.resize_for_preset(Image.fromarray(noise(20, 16)), preset, 32).shape == (40, 32, 3)
    assert data.resize_for_preset(Image.fromarray(noise(10, 40)), preset, 32).shape == (32, 64, 3)
    assert data.stored_shape(preset, 256) is None


def test_stored_shapes() -> None:
    assert data.stored_shape("celeba", 256) == (313, 256)  # the paper's 256x313, kept whole
    assert data.stored_shape("plain", 256) == (256, 256)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i, (h, w) in enumerate([(50, 100), (40, 20), (90, 70), (32, 33), (70, 90), (64, 64)]):
        Image.fromarray(noise(h, w, seed=i)).save(folder / f"p{i}.png")
    return folder


def prepared(photos: Path, out: Path, preset: str) -> Path:
    result = CliRunner().invoke(app, ["data", "prepare", str(photos), str(out), "--size", "32",
                                      "--preset", preset, "--workers", "0", "--split",
                                      "0.5,0.5,0"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def crops_of(dataset: data.InpaintingDataset, index: int, epochs: int) -> list[np.ndarray]:
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        out.append(dataset[index][0].numpy())  # uint8 (32, 32, 3)
    return out


def windows(stored: np.ndarray, crop: np.ndarray) -> list[tuple[int, int]]:
    """Where ``crop`` (or its mirror) lies in ``stored``."""
    h, w = stored.shape[:2]
    return [(top, left) for top in range(h - 31) for left in range(w - 31)
            if any(np.array_equal(stored[top : top + 32, left : left + 32], c)
                   for c in (crop, crop[:, ::-1]))]  # fmt: skip


@pytest.mark.parametrize("preset", ["places", "celeba"])
def test_training_crops_at_random_and_validation_at_the_centre(
    tmp_path: Path, photos: Path, preset: str
) -> None:
    out = prepared(photos, tmp_path / preset, preset)
    with h5py.File(data.find_shards(out, "train")[0]) as f:
        variable = f.attrs["format_version"] == data.shards.VARIABLE_FORMAT_VERSION
        names = [n.decode() for n in f["names"][:]]
        stored = [f["images"][i].reshape(*f["shapes"][i], 3) if variable else f["images"][i]
                  for i in range(len(names))]  # fmt: skip
    assert variable == (preset == "places")
    assert {s.shape[:2] for s in stored} != {(32, 32)}  # larger than the crops
    train, val = open_datasets(_cfg(tmp_path / "run", data=str(out), size=32, masks="freeform"))
    big = max(range(len(stored)), key=lambda i: stored[i].size)
    crops = crops_of(train, big, 6)
    places = {windows(stored[big], c)[0] for c in crops}
    assert len(places) > 1  # a random crop: another window in another epoch
    assert val is not None
    with h5py.File(data.find_shards(out, "val")[0]) as f:
        first = f["images"][0].reshape(*f["shapes"][0], 3) if variable else f["images"][0]
    h, w = first.shape[:2]
    centre = first[(h - 32) // 2 : (h - 32) // 2 + 32, (w - 32) // 2 : (w - 32) // 2 + 32]
    for crop in crops_of(val, 0, 3):  # fixed: the centre, every time
        np.testing.assert_array_equal(crop, centre)


def test_training_refuses_shards_of_another_size(tmp_path: Path, photos: Path) -> None:
    out = prepared(photos, tmp_path / "places", "places")
    with pytest.raises(WmiError, match="prepared with --size 32, not 16"):
        open_datasets(_cfg(tmp_path / "run", data=str(out), size=16, masks="freeform"))
    # without exact, larger images are crops for any size up to the smallest side
    assert data.check_shards(data.find_shards(out, "train"), 16, exact=False)
    result = CliRunner().invoke(app, ["data", "prepare", str(photos), str(tmp_path / "z"),
                                      "--preset", "places", "--compression", "lzf"])  # fmt: skip
    assert result.exit_code == 2 and "stores each image at its own size" in result.output
    info = CliRunner().invoke(app, ["data", "info", str(out)])
    assert info.exit_code == 0 and "each image its own size, at least 32x32" in info.output


def test_resume_rewrites_a_shard_the_preset_no_longer_stores(tmp_path: Path, photos: Path) -> None:
    out = prepared(photos, tmp_path / "celeba", "celeba")
    shard = data.find_shards(out, "train")[0]
    with h5py.File(shard, "a") as f:  # as an older wmi wrote it: the centre square only
        square = f["images"][:, 3:35]
        del f["images"]
        f.create_dataset("images", data=square, chunks=(1, *square.shape[1:]))
    assert data.shard_info(shard).height == 32
    prepared(photos, out, "celeba")  # the same command resumes
    assert data.shard_info(shard).height == 39  # rewritten at 39 x 32, kept whole
