"""``wmi train --arch``: DeepFill v1/v2 train, resume exactly, inpaint and export; U-Net options
refused for them; checkpoints without an arch load as the U-Net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.training.test_train import Pairs, _assert_same_tensors, _cfg, _one_line_error, _run
from wmi.cli import app
from wmi.errors import WmiError
from wmi.models.checkpoint import save_checkpoint
from wmi.models.deepfill import DeepFillV1Generator, DeepFillV2Generator
from wmi.models.loading import load_model
from wmi.models.unet import InpaintingUNet
from wmi.training.config import resume_config

SMALL = ("--size", "16", "--base-channels", "4", "--batch-size", "2", "--workers", "0",
         "--no-progress", "--val-every", "1")  # fmt: skip


def _wmi(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """16×16 shards (train 4, val 2, test 2) of smooth random images."""
    from wmi.data import prepare

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 16)
    for i in range(8):
        colour = rng.random(3)
        pixels = colour * ramp[None, :, None] + (1 - colour) * ramp[:, None, None]
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"img{i}.png")
    prepare(root, root / "shards", size=16, preset="plain", split=(0.5, 0.25, 0.25), workers=0)
    return root / "shards"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    """Two 20×28 photos (not multiples of 8: padded) and their masks (white = hole)."""
    root = tmp_path_factory.mktemp("photos")
    (root / "img").mkdir()
    (root / "mask").mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(
            root / "img" / f"{name}.png"
        )
        hole = np.zeros((20, 28), np.uint8)
        hole[4:12, 6:18] = 255
        Image.fromarray(hole).save(root / "mask" / f"{name}.png")
    return root / "img", root / "mask"


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch, network, critic_steps",
    [("deepfill2", DeepFillV2Generator, 1), ("deepfill1", DeepFillV1Generator, 5)],
)
def test_deepfill_trains_inpaints_and_exports(
    tmp_path: Path, shards: Path, photos: tuple[Path, Path], arch, network, critic_steps
) -> None:
    run = tmp_path / "run"
    result = _wmi("train", "--arch", arch, "--data", shards, "--out", run, "--steps", 1, *SMALL)
    assert result.exit_code == 0, result.output
    assert "trained 1 steps" in result.output and "best hole L1" in result.output
    log = (run / "train.log").read_text()
    assert f"arch={arch} cnum=4" in log and f"{critic_steps} step(s) per generator step" in log
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["model_config"] == {"arch": arch, "cnum": 4}
    assert payload["config"]["conv"] is None and payload["config"]["lr"] == 1e-4
    assert payload["config"]["lr_final"] == 1e-4
    loader = payload["loader"]  # 2 batches per epoch; the critics' batches count too
    assert loader["epoch"] * 2 + loader["position"] == 1 + critic_steps
    assert payload["discriminator"] and payload["d_optimizer"]["state"]

    model, _ = load_model(run / "checkpoints" / "last.pt")
    assert type(model) is network and model.multiple == 8
    images, masks = photos
    ckpt_out, export_out = tmp_path / "out-ckpt", tmp_path / "out-export"
    result = _wmi("inpaint", "folder", images, masks, ckpt_out, "--checkpoint",
                  run / "checkpoints" / "last.pt")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = _wmi("export", run / "checkpoints" / "last.pt", tmp_path / "exported")
    assert result.exit_code == 0, result.output
    _one_line_error(
        _wmi("export", run / "checkpoints" / "last.pt", tmp_path / "onnx", "--onnx"),
        "cannot trace (contextual attention); export without --onnx",
    )
    assert not (tmp_path / "onnx").exists()
    card = (tmp_path / "exported" / "README.md").read_text()
    assert f"--arch {arch}" in card
    result = _wmi("inpaint", "folder", images, masks, export_out, "--checkpoint",
                  tmp_path / "exported")  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("a.png", "b.png"):
        a = np.asarray(Image.open(ckpt_out / name))
        assert a.shape == (20, 28, 3)
        assert np.array_equal(a, np.asarray(Image.open(export_out / name)))


@pytest.mark.slow
def test_deepfill_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    _run(_cfg(tmp_path / "full", arch="deepfill2", size=16, steps=2), Pairs(8, 16))
    _run(_cfg(tmp_path / "part", arch="deepfill2", size=16, steps=1), Pairs(8, 16))
    _run(resume_config(tmp_path / "part", {"steps": 2}), Pairs(8, 16), resume=True)
    full = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "discriminator", "d_optimizer", "step", "loader"):
        _assert_same_tensors(full[key], resumed[key])


def test_unet_options_and_unsupported_modes_are_refused(tmp_path: Path, shards: Path) -> None:
    base = ("train", "--arch", "deepfill2", "--data", shards, "--out", tmp_path / "run",
            "--steps", "1", "--workers", "0", "--batch-size", "2")  # fmt: skip
    _one_line_error(_wmi(*base, "--conv", "partial"), "--conv applies to --arch unet only")
    _one_line_error(_wmi(*base, "--norm", "batch"), "--norm applies to --arch unet only")
    _one_line_error(
        _wmi(*base, "--finetune", tmp_path / "x.pt"), "--finetune applies to --arch unet only"
    )
    _one_line_error(_wmi(*base, "--size", "20"), "--size 20 is not a multiple of 8")
    _one_line_error(_wmi(*base, "--amp", "fp16", "--size", "16"), "--amp fp16 is not supported")
    _one_line_error(_wmi(*base, "--compile", "--size", "16"), "--compile is not supported")
    assert not (tmp_path / "run").exists()
    shown = " ".join(_wmi("train", "--help").output.split())  # unwrapped
    assert "--arch [unet|deepfill1|deepfill2]" in shown and "32 (deepfill1)" in shown


def test_a_checkpoint_without_an_arch_is_the_unet(tmp_path: Path) -> None:
    net = InpaintingUNet("partial", "batch", layers=3, base_channels=4)
    save_checkpoint(tmp_path / "new.pt", net)
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    assert payload["model_config"]["arch"] == "unet"
    del payload["model_config"]["arch"]  # as wmi wrote checkpoints before --arch
    torch.save(payload, tmp_path / "old.pt")
    model, _ = load_model(tmp_path / "old.pt")
    assert type(model) is InpaintingUNet and model.config() == net.config()
    x, m = torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8)
    assert torch.equal(model(x, m), net.eval()(x, m))


def test_a_tampered_deepfill_architecture_is_one_line_before_anything_is_built(
    tmp_path: Path,
) -> None:
    save_checkpoint(tmp_path / "df2.pt", DeepFillV2Generator(cnum=4))
    payload = torch.load(tmp_path / "df2.pt", weights_only=True)
    for config, message in (
        ({"arch": "deepfill2", "cnum": 10**6}, "architecture cnum 1000000 is not a whole number"),
        ({"arch": "deepfill2", "cnum": 8}, "not weights of this network"),
        ({"arch": "deepfill2", "cnum": 4, "gated": True}, "unknown architecture setting 'gated'"),
        ({"arch": "deepfill9", "cnum": 4}, "architecture arch 'deepfill9' is not one of"),
    ):
        torch.save({**payload, "model_config": config}, tmp_path / "bad.pt")
        with pytest.raises(WmiError, match=message):
            load_model(tmp_path / "bad.pt")
