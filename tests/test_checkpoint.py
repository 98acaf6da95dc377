from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import wmi
from wmi.checkpoint import load_checkpoint, load_model, save_checkpoint, unwrap
from wmi.errors import WmiError


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    net = wmi.InpaintingUNet(conv="partial", norm="batch", layers=3, base_channels=4)
    opt = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16)).mean().backward()
    opt.step()
    save_checkpoint(
        tmp_path / "c.pt",
        net,
        optimizer=opt.state_dict(),
        step=7,
        config={"amp": "bf16"},
        rng=torch.get_rng_state(),
    )
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert payload["step"] == 7
    model, info = load_model(tmp_path / "c.pt")
    assert info.amp == "bf16" and info.step == 7 and info.config == {"amp": "bf16"}
    assert not model.training
    assert model.conv_kind == "partial" and model.layers == 3
    for a, b in zip(model.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


# the evil file is a plain pickle (protocol 4); torch warns before refusing it
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_corrupt_and_missing(tmp_path: Path) -> None:
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "wmi-checkpoint", "x": Evil()}))
    with pytest.raises(WmiError, match="evil.pt: not a readable wmi checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(WmiError, match="other.pt: not a wmi checkpoint"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "trunc.pt").write_bytes((tmp_path / "other.pt").read_bytes()[:50])
    with pytest.raises(WmiError, match="trunc.pt"):
        load_model(tmp_path / "trunc.pt")
    with pytest.raises(WmiError, match="missing.pt: no such checkpoint"):
        load_model(tmp_path / "missing.pt")


def test_unwrap_compiled() -> None:
    net = wmi.InpaintingUNet(layers=2, base_channels=2)
    assert unwrap(torch.compile(net)) is net
