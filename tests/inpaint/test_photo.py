"""wmi.load_inpainter: one photo in, the filled photo out, equal to ``wmi inpaint image``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from typer.testing import CliRunner

import wmi
from tests.training.test_train import Pairs, _cfg, _run
from wmi.cli import app


def _photo_and_mask(folder: Path) -> tuple[Path, Path]:
    """A 75×101 photograph (not a multiple of any U-Net size) and a feathered hole."""
    folder.mkdir(exist_ok=True)
    Image.fromarray(data.astronaut()[100:175, 150:251]).save(folder / "photo.png")
    levels = np.zeros((75, 101), np.uint8)
    levels[20:45, 30:70] = 255
    levels[45:50, 30:70] = 100  # grey: soft blending keeps part of the photo here
    Image.fromarray(levels).save(folder / "mask.png")
    return folder / "photo.png", folder / "mask.png"


def _cli_result(photo: Path, mask: Path, out: Path, *options: str) -> np.ndarray:
    result = CliRunner().invoke(
        app, ["inpaint", "image", str(photo), str(mask), str(out), *options]
    )
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out))


@pytest.mark.parametrize("blend", ["hard", "soft"])
def test_a_classical_method_fills_like_wmi_inpaint_image(tmp_path: Path, blend: str) -> None:
    photo, mask = _photo_and_mask(tmp_path)
    written = _cli_result(photo, mask, tmp_path / "cli.png", "--method", "ns", "--blend", blend)
    fill = wmi.load_inpainter("ns", blend=blend)

    pil = fill(Image.open(photo), Image.open(mask))
    assert isinstance(pil, Image.Image) and pil.size == (101, 75)
    np.testing.assert_array_equal(np.asarray(pil), written)

    array = fill(np.asarray(Image.open(photo)), np.asarray(Image.open(mask)) > 127)
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8
    if blend == "hard":  # a boolean array has no grey levels to feather with
        np.testing.assert_array_equal(array, written)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step WConv run on 32² crops."""
    run = tmp_path_factory.mktemp("train") / "run"
    _run(_cfg(run, steps=2, conv="weighted"), Pairs(4, 32))
    return run


def test_a_network_from_a_checkpoint_run_folder_or_export_fills_like_the_cli(
    tmp_path: Path, run: Path
) -> None:
    export = CliRunner().invoke(
        app, ["export", str(run / "checkpoints" / "last.pt"), str(tmp_path / "exp")]
    )
    assert export.exit_code == 0, export.output
    photo, mask = _photo_and_mask(tmp_path / "in")
    checkpoint = run / "checkpoints" / "last.pt"
    written = _cli_result(photo, mask, tmp_path / "cli.png", "--checkpoint", str(checkpoint),
                          "--device", "cpu")  # fmt: skip
    for source in (checkpoint, str(run), tmp_path / "exp"):
        fill = wmi.load_inpainter(source, device="cpu")
        np.testing.assert_array_equal(
            np.asarray(fill(Image.open(photo), Image.open(mask))), written
        )


def test_mistakes_are_one_line_wmi_errors(tmp_path: Path) -> None:
    fill = wmi.load_inpainter("telea")
    photo = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(wmi.WmiError, match="unknown option 'sizee'"):
        wmi.load_inpainter("telea", sizee=3)
    with pytest.raises(wmi.WmiError, match=r"\(H, W, 3\) uint8"):
        fill(photo.astype(np.float32), np.ones((8, 8)))
    with pytest.raises(wmi.WmiError, match="covers the whole image"):
        fill(photo, np.ones((8, 8)))
    with pytest.raises(wmi.WmiError, match="no such checkpoint file"):
        wmi.load_inpainter("no-such-method-or-file")


def test_a_network_far_from_its_training_scale_is_warned_about(tmp_path: Path, run: Path) -> None:
    (tmp_path / "in").mkdir()
    photo, mask = tmp_path / "in" / "big.png", tmp_path / "mask.png"
    Image.fromarray(data.astronaut()[:200, :300]).save(photo)  # 300 px: 9.4x the 32² crops
    hole = np.zeros((200, 300), np.uint8)
    hole[50:90, 100:160] = 255
    Image.fromarray(hole).save(mask)
    base = ["--checkpoint", str(run), "--device", "cpu"]
    far = CliRunner().invoke(app, ["inpaint", "image", str(photo), str(mask),
                                   str(tmp_path / "a.png"), *base])  # fmt: skip
    assert far.exit_code == 0, far.output
    assert "trained on 32x32 crops" in far.stderr and "300 px (9.38x)" in far.stderr
    folder = CliRunner().invoke(app, ["inpaint", "folder", str(tmp_path / "in"), str(mask),
                                      str(tmp_path / "out"), *base])  # fmt: skip
    assert folder.exit_code == 0, folder.output
    assert "trained on 32x32 crops" in folder.stderr
    # the advice: a smaller --max-size brings it near (64 px: 2x), no warning
    args = ["inpaint", "image", str(photo), str(mask), str(tmp_path / "b.png"), *base]
    near = CliRunner().invoke(app, [*args, "--max-size", "64"])
    assert near.exit_code == 0, near.output
    assert "training scale" not in near.stderr
    classical = CliRunner().invoke(app, ["inpaint", "image", str(photo), str(mask),
                                         str(tmp_path / "c.png")])  # fmt: skip
    assert "training scale" not in classical.stderr


def test_the_memory_estimate_follows_the_network_and_the_size() -> None:
    from wmi.models.unet import InpaintingUNet

    paper = InpaintingUNet()  # 25.8 M parameters
    weights = sum(p.numel() * 4 for p in paper.parameters())
    one, four = paper.inference_bytes(768, 1024), paper.inference_bytes(1536, 2048)
    assert four - weights == pytest.approx(4 * (one - weights), rel=1e-6)
    assert paper.inference_bytes(768, 1024, batch=2) - weights == pytest.approx(
        2 * (one - weights), rel=1e-6
    )
    assert InpaintingUNet(base_channels=16).inference_bytes(768, 1024) < one / 3
    # what issue 25 saw: 11.2 GB for a 4000x3000 photo with --strategy original
    assert 8e9 < paper.inference_bytes(3008, 4096) < 12e9


def test_available_memory_respects_the_address_space_limit() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import resource, torch\n"
        "from wmi.device import available_bytes\n"
        "free = available_bytes(torch.device('cpu'))\n"
        "size = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))\n"
        "print(free, available_bytes(torch.device('cpu')))\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root})  # fmt: skip
    assert done.returncode == 0, done.stderr
    free, limited = map(int, done.stdout.split())
    assert free > 0 and 0 < limited <= 300 * 2**20 < free


def test_strategy_original_that_will_not_fit_is_refused_in_one_line(
    tmp_path: Path, run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wmi.device

    photo, mask = _photo_and_mask(tmp_path)
    args = ["inpaint", "image", str(photo), str(mask), str(tmp_path / "o.png"),
            "--checkpoint", str(run), "--device", "cpu", "--strategy", "original"]  # fmt: skip
    monkeypatch.setattr(wmi.device, "available_bytes", lambda device: 10**6)  # 1 MB free
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs about" in lines[0] and "--strategy resize" in lines[0]
    assert not (tmp_path / "o.png").exists()
    monkeypatch.setattr(wmi.device, "available_bytes", lambda device: 10**12)
    assert CliRunner().invoke(app, args).exit_code == 0
