"""Tampered checkpoints and export folders: the architecture is checked against the weights'
shapes before anything is built; non-float or non-finite exported weights, malformed
versions, steps and configs are one line naming the file (issue 21, items 6, 9, 12, 17)."""

from __future__ import annotations

import hashlib
import json
import resource
from pathlib import Path

import pytest
import torch

from tests.models.test_export import _checkpoint, _net
from wmi.errors import WmiError
from wmi.models.loading import load_model

st = pytest.importorskip("safetensors.torch")

from wmi.models.export import CONFIG_FILE, WEIGHTS_FILE, export_model  # noqa: E402


def _tamper_pt(tmp_path: Path, **changes) -> Path:
    src = _checkpoint(tmp_path / "good.pt", _net())
    payload = torch.load(src, weights_only=True)
    for key, value in changes.items():
        if key in ("layers", "base_channels", "in_channels", "conv", "norm_momentum"):
            payload["model_config"][key] = value
        else:
            payload[key] = value
    torch.save(payload, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "changes,says",
    [
        ({"base_channels": 64}, r"encoder.0.conv.weight has shape \[4, 3, 7, 7\], the "
                                r"architecture needs \[64, 3, 7, 7\]"),
        ({"layers": 3}, r"not weights of this network \(no encoder.2"),
        ({"layers": 10**9}, r"architecture layers 1000000000 is not a whole number from 1 to 12"),
        ({"layers": 1e9}, r"architecture layers 1000000000.0 is not a whole number"),
        ({"conv": "nonsense"}, r"architecture conv 'nonsense' is not one of"),
        ({"norm_momentum": "x"}, r"norm_momentum 'x' is not in"),
        ({"model_config": "x"}, r"the architecture is not a table"),
        ({"model": {"a": 1}}, r"no table of weights"),
        ({"model": {"encoder.0.conv.weight": torch.zeros(4, 3, 7, 7, dtype=torch.int8)}},
         r"encoder.0.conv.weight holds int8 values, not floating-point weights"),
        ({"version": "1"}, r"checkpoint format version '1' is not a whole number"),
        ({"step": "abc"}, r"step 'abc' is not a whole number"),
        ({"config": "x"}, r"training configuration is not a table"),
    ],
)  # fmt: skip
def test_a_tampered_checkpoint_is_one_line_and_builds_nothing_big(
    tmp_path: Path, changes: dict, says: str
) -> None:
    bad = _tamper_pt(tmp_path, **changes)
    before = _peak_mb()
    with pytest.raises(WmiError, match=says) as caught:
        load_model(bad)
    assert str(caught.value).startswith(str(bad)) and "\n" not in str(caught.value)
    assert _peak_mb() - before < 200  # nothing of the asked-for size was built


def _export(tmp_path: Path) -> Path:
    export_model(_checkpoint(tmp_path / "best.pt", _net()), tmp_path / "e")
    return tmp_path / "e"


def _rewrite(folder: Path, state=None, **config_changes) -> None:
    """Change an export's weights and/or config.json, keeping its SHA-256 in step."""
    weights, config_path = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if state is not None:
        st.save_file(state, str(weights))
    config = json.loads(config_path.read_text())
    for key, value in config_changes.items():
        if key in ("base_channels", "layers"):
            config["architecture"][key] = value
        else:
            config[key] = value
    if isinstance(config.get("files"), dict) and isinstance(config["files"][WEIGHTS_FILE], dict):
        config["files"][WEIGHTS_FILE]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))


@pytest.mark.parametrize("bad", ["nan", "inf", "int8", "bool"])
def test_exported_weights_that_are_not_finite_floats_are_refused_by_name(
    tmp_path: Path, bad: str
) -> None:
    folder = _export(tmp_path)
    state = st.load_file(str(folder / WEIGHTS_FILE))
    key = "encoder.1.conv.weight"
    if bad in ("nan", "inf"):
        state[key][0, 0, 0, 0] = float(bad)
    else:
        state[key] = state[key].to(getattr(torch, bad))
    _rewrite(folder, state)
    says = "non-finite weights (NaN or inf in" if bad in ("nan", "inf") else "values, not floating"
    with pytest.raises(WmiError, match=f"{WEIGHTS_FILE}: .*{key}|{WEIGHTS_FILE}: {key}") as caught:
        load_model(folder)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    "changes,says",
    [
        ({"base_channels": 512}, r"model.safetensors: not weights of this network "
                                 r"\(encoder.0.conv.weight has shape \[4, 3, 7, 7\]"),
        ({"layers": 10**9}, r"config.json: architecture layers 1000000000 is not"),
        ({"files": None}, r"config.json: 'files' is not a table"),
        ({"files": {WEIGHTS_FILE: "x"}}, r"config.json: 'files' is not a table"),
        ({"version": "1"}, r"export format version '1' is not a whole number"),
    ],
)  # fmt: skip
def test_a_tampered_export_config_is_one_line_and_builds_nothing_big(
    tmp_path: Path, changes: dict, says: str
) -> None:
    folder = _export(tmp_path)
    _rewrite(folder, **changes)
    before = _peak_mb()
    with pytest.raises(WmiError, match=says):
        load_model(folder)
    assert _peak_mb() - before < 200


def test_finetune_from_a_nan_export_blames_the_file_not_training(tmp_path: Path) -> None:
    from wmi.training.state import load_finetune_weights

    folder = _export(tmp_path)
    state = st.load_file(str(folder / WEIGHTS_FILE))
    state["decoder.1.conv.bias"][0] = float("nan")
    _rewrite(folder, state)
    with pytest.raises(WmiError, match="--finetune .*non-finite weights"):
        load_finetune_weights(_net(), str(folder))


def zip_bomb(source: Path, out: Path, padding: int) -> Path:
    """``source``'s members, deflated, with ``padding`` zero bytes after data.pkl's pickle
    (ignored by the unpickler, inflated by any reader): a small file of a large archive."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            with dst.open(info.filename, "w", force_zip64=True) as f:
                f.write(src.read(info))
                if info.filename.endswith("/data.pkl"):
                    chunk = bytes(2**20)
                    for _ in range(padding // len(chunk)):
                        f.write(chunk)
    return out


def test_a_checkpoint_that_inflates_far_beyond_its_size_is_refused(tmp_path: Path) -> None:
    """Issue 21, item 7 (the issue's 3 MB file inflated to 3 GB; 256 MB here)."""
    src = _checkpoint(tmp_path / "good.pt", _net())
    bomb = zip_bomb(src, tmp_path / "bomb.pt", 256 * 2**20)
    assert bomb.stat().st_size < 2 * 2**20
    before = _peak_mb()
    with pytest.raises(WmiError, match=r"bomb.pt: refused: its members inflate to 2\d\d,"):
        load_model(bomb)
    assert _peak_mb() - before < 100
    # the same members deflated but not padded are fine: only the inflation is refused
    assert load_model(zip_bomb(src, tmp_path / "small.pt", 0))[0] is not None
