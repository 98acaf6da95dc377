"""wmi export: the folder works wherever a checkpoint does, with the same results; ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from tests.training.test_train import Pairs, _cfg, _run, _state
from wmi.cli import app
from wmi.models.loading import load_model

pytest.importorskip("safetensors")


def _wmi(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """last.pt of a 3-step run of a tiny PConv network (batch norm with running statistics)."""
    run = tmp_path_factory.mktemp("run") / "run"
    _run(_cfg(run, steps=3, conv="partial"), Pairs(6, 32), val=Pairs(2, 32, seed=1))
    return run / "checkpoints" / "last.pt"


def test_export_folder_gives_the_checkpoints_results(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pconv-tiny"
    result = _wmi("export", trained, folder)
    assert result.exit_code == 0, result.output
    written = result.stdout.splitlines()
    assert sorted(Path(p).name for p in written) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]

    # wmi.load_model: same network, same info, same output bit for bit
    a, info_a = load_model(trained)
    b, info_b = load_model(folder)
    assert (info_a.amp, info_a.step) == (info_b.amp, info_b.step) == ("off", 3)
    assert info_b.config["steps"] == 3
    image = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    mask = (torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(a(image, mask), b(image, mask))

    # wmi inpaint --checkpoint: the same files
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
            images / f"{stem}.png"
        )
        hole = np.zeros((40, 56), np.uint8)
        hole[8:24, 10:30] = 255
        Image.fromarray(hole).save(masks / f"{stem}.png")
    outputs = {}
    for name, source in (("pt", trained), ("folder", folder)):
        out = tmp_path / f"out-{name}"
        done = _wmi(
            "inpaint", "folder", images, masks, out, "--checkpoint", source, "--device", "cpu"
        )
        assert done.exit_code == 0, done.output
        outputs[name] = {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}
    assert len(outputs["pt"]) == 2 and outputs["pt"] == outputs["folder"]

    # wmi train --finetune: the same start, so the same fine-tuned weights
    for name, source in (("pt", trained), ("folder", folder)):
        _run(_cfg(tmp_path / f"ft-{name}", steps=2, conv="partial", finetune=str(source)))
    ft_pt = _state(tmp_path / "ft-pt" / "checkpoints" / "last.pt")["model"]
    ft_folder = _state(tmp_path / "ft-folder" / "checkpoints" / "last.pt")["model"]
    assert ft_pt.keys() == ft_folder.keys()
    assert all(torch.equal(ft_pt[k], ft_folder[k]) for k in ft_pt)


def test_export_errors_are_one_line(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "share"
    assert _wmi("export", trained, folder).exit_code == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for args, text in (
        ((trained, folder), "already holds an export; pass --overwrite"),
        ((tmp_path / "missing.pt", tmp_path / "x"), "missing.pt: no such checkpoint file"),
        ((trained, trained.parent), "not empty and not an export folder (holds best.pt, last.pt)"),
        ((trained, trained), "exists and is not a folder"),
    ):
        result = _wmi("export", *args)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and text in lines[0], result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert _wmi("export", trained, folder, "--overwrite").exit_code == 0
    assert "--onnx" in _wmi("export", "--help").output


def test_export_onnx_runs_in_onnxruntime_like_pytorch(trained: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    folder = tmp_path / "with-onnx"
    result = _wmi("export", trained, folder, "--onnx")
    assert result.exit_code == 0, result.output
    assert "model.onnx matches PyTorch to" in result.stderr
    model, _ = load_model(trained)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(5)
    for n, h, w in ((1, 32, 32), (3, 48, 80)):  # dynamic batch and size (multiples of 16)
        image = torch.rand(n, 3, h, w, generator=gen)
        mask = (torch.rand(n, 1, h, w, generator=gen) > 0.4).float()
        with torch.no_grad():
            expected = model(image, mask).numpy()
        (got,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        assert got.shape == expected.shape
        assert float(np.abs(got - expected).max()) <= 1e-4


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_exported_files_get_the_usual_permissions(
    trained: Path, tmp_path: Path, umask: int, mode: int
) -> None:
    # model.safetensors is the file meant for sharing: it was written 0600 whatever the umask
    import os
    import stat

    old = os.umask(umask)
    try:
        result = _wmi("export", trained, tmp_path / "shared")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "shared").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name


def test_a_run_folder_is_a_checkpoint_too(trained: Path, tmp_path: Path) -> None:
    # `--checkpoint runs/wconv`: the run's best.pt (issue 25 saw "no such checkpoint file")
    run = trained.parent.parent
    image, mask = tmp_path / "a.png", tmp_path / "m.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), np.uint8)).save(image)
    hole = np.zeros((40, 56), np.uint8)
    hole[10:20, 10:30] = 255
    Image.fromarray(hole).save(mask)
    outs = []
    for source in (run, run / "checkpoints" / "best.pt"):
        out = tmp_path / f"{len(outs)}.png"
        done = _wmi("inpaint", "image", image, mask, out, "--checkpoint", source, "--device", "cpu")
        assert done.exit_code == 0, done.output
        outs.append(np.asarray(Image.open(out)))
    np.testing.assert_array_equal(*outs)
