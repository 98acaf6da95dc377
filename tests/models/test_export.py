"""wmi.models.export: safetensors + config.json + model card folders, and the ONNX graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wmi.errors import WmiError
from wmi.models.checkpoint import build_model, load_checkpoint, save_checkpoint
from wmi.models.unet import InpaintingUNet

pytest.importorskip("safetensors")

from wmi.models.export import (
    CARD_FILE,
    CONFIG_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    check_onnx,
    export_model,
    export_onnx,
    load_exported,
)
from wmi.models.loading import find_model

BEST = {"step": 40, "l1": 0.0412, "l2": 0.0051, "psnr": 24.5, "ssim": 0.81, "tv": 1.9, "images": 8}


def _net(conv: str = "weighted", norm: str = "weighted", layers: int = 2) -> InpaintingUNet:
    """A tiny network with non-trivial batch-norm statistics."""
    torch.manual_seed(0)
    net = InpaintingUNet(conv=conv, norm=norm, layers=layers, base_channels=4, norm_momentum=0.5)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.3).float())
    return net.eval()


def _checkpoint(path: Path, net: InpaintingUNet, step: int = 40) -> Path:
    save_checkpoint(
        path,
        net,
        optimizer={"state": {}, "param_groups": []},
        scheduler={"kind": "cosine", "lr": 5e-4, "lr_final": 1e-5, "total_steps": 100},
        step=step,
        config={
            "data": "/data/shards/celeba",
            "masks": "freeform",
            "size": 16,
            "batch_size": 2,
            "steps": 100,
            "lr": 5e-4,
            "amp": "bf16",
            "perceptual": "vgg16",
            "seed": 3,
            "out": "/runs/x",
        },
        best=dict(BEST),
    )
    return path


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return _checkpoint(tmp_path / "best.pt", _net())


def test_export_round_trip_is_bit_identical(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "share" / "wconv-tiny"
    result = export_model(ckpt, out)
    assert result.out_dir == out and result.onnx is None
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, CARD_FILE])
    # nothing left beside it: the staging folder was renamed into place
    assert [p.name for p in out.parent.iterdir()] == ["wconv-tiny"]
    assert find_model(out).kind == "export" and find_model(ckpt).kind == "checkpoint"

    model, meta = load_exported(out)
    reference = build_model(load_checkpoint(ckpt)).eval()
    assert not model.training and meta["amp"] == "bf16"
    ref_state = reference.state_dict()
    assert list(model.state_dict()) == list(ref_state)
    for key, value in model.state_dict().items():
        assert value.dtype == ref_state[key].dtype and torch.equal(value, ref_state[key]), key
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(3, 3, 8, 12, generator=gen)
    mask = (torch.rand(3, 1, 8, 12, generator=gen) > 0.4).float()
    with torch.no_grad():
        assert torch.equal(model(image, mask), reference(image, mask))


def test_config_and_model_card(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "wconv-tiny"
    config = export_model(ckpt, out).config
    on_disk = json.loads((out / CONFIG_FILE).read_text())
    assert on_disk == json.loads(json.dumps(config))
    assert on_disk["format"] == "wmi-export" and on_disk["wmi_version"]
    assert on_disk["architecture"] == {
        "arch": "unet",
        "conv": "weighted",
        "norm": "weighted",
        "layers": 2,
        "in_channels": 3,
        "base_channels": 4,
        "norm_momentum": 0.5,
    }
    assert on_disk["input"]["multiple"] == 4
    train = on_disk["training"]
    assert train["step"] == 40 and train["total_steps"] == 100
    assert train["data"] == "/data/shards/celeba" and train["data_name"] == "celeba"
    assert "out" not in train  # where it ran is not part of the model
    assert on_disk["validation"]["l1"] == pytest.approx(0.0412)
    assert on_disk["validation"]["of_these_weights"] is True
    assert len(on_disk["files"][WEIGHTS_FILE]["sha256"]) == 64

    card = (out / CARD_FILE).read_text()
    for text in (
        "`weighted`",
        "| Steps | 40 of 100 |",
        "`/data/shards/celeba`",
        "0.0412",
        "24.5",
        "wmi inpaint folder images/ masks/ results/ --checkpoint wconv-tiny",
        'wmi.load_model("wconv-tiny")',
    ):
        assert text in card, text
    assert "model.onnx" not in card


def test_last_checkpoint_and_bare_checkpoint(tmp_path: Path) -> None:
    net = _net(conv="partial", norm="batch")
    # last.pt at step 90 carries the best validation of the run, from step 40
    meta = export_model(_checkpoint(tmp_path / "last.pt", net, step=90), tmp_path / "a").config
    assert meta["validation"]["of_these_weights"] is False
    assert "were not scored" in (tmp_path / "a" / CARD_FILE).read_text()
    # a checkpoint with weights only (save_checkpoint without training state)
    save_checkpoint(tmp_path / "bare.pt", net)
    meta = export_model(tmp_path / "bare.pt", tmp_path / "b").config
    assert meta["validation"] is None and meta["training"] == {} and meta["amp"] == "off"
    card = (tmp_path / "b" / CARD_FILE).read_text()
    assert "no validation metrics" in card and "weights only" in card
    model, _ = load_exported(tmp_path / "b")
    assert model.conv_kind == "partial" and model.norm_kind == "batch"


def test_an_export_folder_of_a_long_legal_name(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / ("e" * 250)  # its staging folder's name is longer: it must be cut
    export_model(ckpt, out)
    export_model(ckpt, out, overwrite=True)
    assert load_exported(out)[0] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", out.name]


def test_refuses_to_overwrite(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    export_model(ckpt, out)
    first = (out / CONFIG_FILE).read_text()
    with pytest.raises(WmiError, match="already holds an export; pass --overwrite"):
        export_model(ckpt, out)
    other = _checkpoint(tmp_path / "other.pt", _net(norm="instance"))
    export_model(other, out, overwrite=True)
    assert (out / CONFIG_FILE).read_text() != first
    assert load_exported(out)[0].norm_kind == "instance"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "other.pt", "out"]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(WmiError, match="not empty and not an export folder .*notes.txt"):
            export_model(ckpt, mine, overwrite=overwrite)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (mine / "notes.txt").unlink()  # an application's own config.json is not an export's
    (mine / CONFIG_FILE).write_text('{"app": 1}')
    for overwrite in (False, True):
        with pytest.raises(WmiError, match="not an export folder .*config.json"):
            export_model(ckpt, mine, overwrite=overwrite)
    assert (mine / CONFIG_FILE).read_text() == '{"app": 1}'
    (tmp_path / "file").write_text("x")
    with pytest.raises(WmiError, match="is not a folder"):
        export_model(ckpt, tmp_path / "file")


def test_damaged_or_foreign_checkpoint_is_one_line(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "foreign.pt").read_bytes()[:60])
    net = _net()
    broken = {"format": "wmi-checkpoint", "version": 1, "model_config": {"layers": 2}}
    torch.save({**broken, "model": net.state_dict()}, tmp_path / "mismatch.pt")
    for name in ("foreign.pt", "trunc.pt", "missing.pt", "mismatch.pt"):
        with pytest.raises(WmiError) as info:
            export_model(tmp_path / name, tmp_path / f"out-{name}")
        message = str(info.value)
        assert name in message and "\n" not in message, message
        assert not (tmp_path / f"out-{name}").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.pt", "mismatch.pt", "trunc.pt"]


def test_load_exported_errors(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    export_model(ckpt, out)
    weights, config_path = out / WEIGHTS_FILE, out / CONFIG_FILE
    with pytest.raises(WmiError, match="no such export folder"):
        load_exported(tmp_path / "nowhere")
    with pytest.raises(WmiError, match="not a wmi export folder"):
        load_exported(tmp_path)

    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WmiError, match=f"{WEIGHTS_FILE}: damaged"):
        load_exported(out)

    config = json.loads(config_path.read_text())
    config["files"] = {}  # no checksum: the weights file itself must still be checked
    config["architecture"]["base_channels"] = 8
    config_path.write_text(json.dumps(config))
    export_model(ckpt, tmp_path / "fresh")
    weights.write_bytes((tmp_path / "fresh" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(WmiError, match=f"{WEIGHTS_FILE}: not weights of this network"):
        load_exported(out)

    config["version"] = 99
    config_path.write_text(json.dumps(config))
    with pytest.raises(WmiError, match="newer than this wmi"):
        load_exported(out)
    config_path.write_text("{not json")
    with pytest.raises(WmiError, match="config.json: not readable JSON"):
        load_exported(out)


def test_safetensors_file_holds_only_tensors(ckpt: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    export_model(ckpt, tmp_path / "e")
    with safe_open(str(tmp_path / "e" / WEIGHTS_FILE), "pt") as f:
        keys = set(f.keys())
        assert f.metadata()["wmi_format"] == "wmi-export"
    assert keys == set(build_model(load_checkpoint(ckpt)).state_dict())


def _onnx_available() -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")


def test_onnx_matches_pytorch(ckpt: Path, tmp_path: Path) -> None:
    """One export (the slow part), checked at two sizes and two batch sizes."""
    _onnx_available()
    result = export_model(ckpt, tmp_path / "onnx", onnx=True)
    assert result.onnx == tmp_path / "onnx" / ONNX_FILE and result.onnx.is_file()
    assert (
        ONNX_FILE in result.config["files"]
        and "onnxruntime" in (tmp_path / "onnx" / CARD_FILE).read_text()
    )
    model, _ = load_exported(tmp_path / "onnx")
    # (batch, H / 4, W / 4): 4×12 batch 1 and 12×8 batch 3; exported at batch 2, 8×12
    diff = check_onnx(model, result.onnx, shapes=((1, 1, 3), (3, 3, 2)))
    assert diff < 1e-4

    import onnx

    graph = onnx.load(str(result.onnx)).graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.input]
    assert [v.name for v in graph.input] == ["image", "mask"]
    assert dims == [["batch", 3, "height", "width"], ["batch", 1, "height", "width"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("conv", "norm"), [("partial", "batch"), ("gated", "batch"), ("weighted", "instance")]
)
def test_onnx_other_kinds(conv: str, norm: str, tmp_path: Path) -> None:
    _onnx_available()
    net = _net(conv=conv, norm=norm)
    export_onnx(net, tmp_path / "m.onnx")
    assert check_onnx(net, tmp_path / "m.onnx") < 1e-4
