"""The training loader: uint8 items converted on the device, bit for bit the float32 path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wmi.data import InpaintingDataset, find_shards, prepare
from wmi.data.dataset import to_float
from wmi.io import write_mask
from wmi.training.config import TrainConfig
from wmi.training.loader import to_device
from wmi.training.loop import train


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """40×48 noise photos prepared at 32² (train 8, val 4, test 4)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            root / f"p{i:02d}.png"
        )
    prepare(root, root / "shards", size=32, preset="plain", split=(0.5, 0.25, 0.25), workers=0)
    return root / "shards"


@pytest.fixture(scope="module")
def mask_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(2)
    for i in range(3):
        write_mask(folder / f"m{i}.png", rng.random((20, 20)) < 0.3)  # resized to the crop
    return folder


@pytest.mark.parametrize("masks", ["freeform", "folder"])
@pytest.mark.parametrize("size", [32, 20, 13])  # 13: a row of bits that ends mid-byte
def test_uint8_items_convert_to_the_float_items_bit_for_bit(
    shards: Path, mask_dir: Path, masks: str, size: int
) -> None:
    paths = find_shards(shards, "train")
    source = mask_dir if masks == "folder" else masks
    floats = InpaintingDataset(paths, source, size=size, seed=5)
    bytes_ = InpaintingDataset(paths, source, size=size, seed=5, uint8=True)
    seen = set()
    for epoch in (0, 1):
        floats.set_epoch(epoch)
        bytes_.set_epoch(epoch)
        for i in range(len(floats)):
            image, mask = bytes_[i]
            assert image.dtype == mask.dtype == torch.uint8
            assert mask.shape == (1, size, -(-size // 8))
            got_image, got_mask = to_float(image, mask)
            want_image, want_mask = floats[i]
            assert torch.equal(got_image, want_image) and torch.equal(got_mask, want_mask)
            seen |= set(want_mask.unique().tolist())
    assert seen == {0.0, 1.0}  # holes and known pixels were both compared


@pytest.mark.parametrize("channels_last", [False, True])
def test_to_device_converts_batches_in_the_run_memory_format(
    shards: Path, channels_last: bool
) -> None:
    paths = find_shards(shards, "train")
    floats = InpaintingDataset(paths, "freeform", size=32, seed=1)
    bytes_ = InpaintingDataset(paths, "freeform", size=32, seed=1, uint8=True)
    idx = [3, 0, 6]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image, mask = to_device(
        torch.stack([bytes_[i][0] for i in idx]),
        torch.stack([bytes_[i][1] for i in idx]),
        torch.device("cpu"),
        channels_last,
    )
    assert image.dtype == mask.dtype == torch.float32
    assert image.is_contiguous(memory_format=fmt) and mask.is_contiguous(memory_format=fmt)
    assert torch.equal(image, torch.stack([floats[i][0] for i in idx]))
    assert torch.equal(mask, torch.stack([floats[i][1] for i in idx]))


def test_to_float_refuses_other_tensors() -> None:
    image = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="expected uint8 bits"):
        to_float(image, torch.ones(2, 1, 16, 16, dtype=torch.uint8))  # not packed
    with pytest.raises(ValueError, match="expected uint8"):
        to_float(image.float(), torch.ones(2, 1, 16, 2, dtype=torch.uint8))


def test_to_float_divides_exactly_where_a_reciprocal_would_not() -> None:
    values = np.arange(256, dtype=np.uint8)
    want = values.astype(np.float32) / np.float32(255)
    assert not np.array_equal(values.astype(np.float32) * np.float32(1 / 255), want)
    image, _ = to_float(
        torch.from_numpy(np.repeat(values[None, :, None], 3, axis=2)),
        torch.full((1, 1, 32), 255, dtype=torch.uint8),
    )
    for channel in image:
        assert np.array_equal(channel[0].numpy(), want)


def _train(out: Path, shards: Path, floats: bool, workers: int) -> Path:
    cfg = TrainConfig(
        data=str(shards), out=str(out), size=32, layers=4, base_channels=4, batch_size=2,
        steps=6, workers=workers, val_every=3, save_every=100, log_every=1, val_images=4,
        perceptual="none", seed=7, device="cpu",
    )  # fmt: skip
    kw = {}
    if floats:  # the float32 items of before: converted per item on the CPU, in the workers
        kw = {
            "train_set": InpaintingDataset(find_shards(shards, "train"), "freeform", 32, seed=7),
            "val_set": InpaintingDataset(
                find_shards(shards, "val"), "freeform", 32, augment=False, seed=7
            ),
        }
    train(cfg, progress=False, echo=False, **kw)
    return out


@pytest.mark.slow
def test_training_on_uint8_batches_is_bit_identical_to_the_float_path(
    tmp_path: Path, shards: Path
) -> None:
    # 8 training images, batch 2: 6 steps cross an epoch; validation at steps 3 and 6.
    a = _train(tmp_path / "float", shards, floats=True, workers=0)
    b = _train(tmp_path / "uint8", shards, floats=False, workers=2)
    sa = torch.load(a / "checkpoints" / "last.pt", weights_only=True)["model"]
    sb = torch.load(b / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)

    def losses(run: Path) -> list[dict]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for row in rows:
            row.pop("images_per_s", None)
        return rows

    assert losses(a) == losses(b)
    assert [r["kind"] for r in losses(a)].count("val") == 2


@pytest.fixture()
def bad_masks(tmp_path: Path) -> Path:
    """Six mask PNGs, one of them cut short (a copy that did not finish)."""
    folder = tmp_path / "masks"
    rng = np.random.default_rng(0)
    for i in range(6):
        write_mask(folder / f"m{i}.png", rng.random((32, 32)) < 0.3)
    data = (folder / "m3.png").read_bytes()
    (folder / "m3.png").write_bytes(data[: len(data) // 2])
    return folder


def _wmi_train(tmp_path: Path, shards: Path, masks: Path, prelude: str = "") -> tuple:
    import os
    import subprocess
    import sys

    args = [
        "train", "--data", str(shards), "--out", str(tmp_path / "run"), "--masks", str(masks),
        "--size", "32", "--layers", "4", "--base-channels", "4", "--batch-size", "2",
        "--steps", "20", "--workers", "2", "--perceptual", "none", "--no-progress",
        "--device", "cpu",
    ]  # fmt: skip
    code = f"import sys\n{prelude}\nfrom wmi.cli import main\nsys.argv = ['wmi', *{args!r}]\nmain()"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def test_a_truncated_mask_file_fails_before_the_run_folder_is_made(
    tmp_path: Path, shards: Path, bad_masks: Path
) -> None:
    rc, lines = _wmi_train(tmp_path, shards, bad_masks)
    assert rc == 2 and len(lines) == 1, lines
    assert "1 of 6 mask files" in lines[0] and "m3.png: not a readable image" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_mask_that_breaks_mid_run_is_one_line_from_the_workers(
    tmp_path: Path, shards: Path, bad_masks: Path
) -> None:
    # As if m3.png were damaged after the check: the loader workers meet it at some step.
    skip_check = (
        "from wmi.data.dataset import InpaintingDataset\n"
        "InpaintingDataset.check_masks = lambda self: None"
    )
    rc, lines = _wmi_train(tmp_path, shards, bad_masks, prelude=skip_check)
    errors = [line for line in lines if "m3.png" in line]
    assert rc == 2 and errors == [lines[-1]], lines
    assert lines[-1].startswith("error: ") and "not a readable image" in lines[-1]
    assert not any("Traceback" in line or "Exception ignored" in line for line in lines)
