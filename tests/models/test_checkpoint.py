from __future__ import annotations

import errno
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

import wmi
from wmi.errors import WmiError
from wmi.models.checkpoint import load_checkpoint, save_checkpoint, unwrap
from wmi.models.loading import load_model


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


class System:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


# the evil file is a plain pickle (protocol 4); torch warns before refusing it
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_corrupt_and_missing(tmp_path: Path) -> None:
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "wmi-checkpoint", "x": Evil()}))
    with pytest.raises(WmiError, match=r"evil.pt: not a readable wmi checkpoint \(Unsupported"):
        load_checkpoint(tmp_path / "evil.pt")
    torch.save({"format": "wmi-checkpoint", "x": Evil()}, tmp_path / "evil-zip.pt")
    with pytest.raises(WmiError) as refused:
        load_checkpoint(tmp_path / "evil-zip.pt")
    # the whole reason in one line, not torch's paragraph cut mid-sentence
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'evil-zip.pt'}: refused: it holds Python objects")
    assert "(it refers to print)" in message and "weights_only=True" in message
    assert message.endswith("it was not written by wmi") and "\n" not in message
    # issue 21, item 16: a file calling os.system (torch words that refusal differently)
    torch.save({"format": "wmi-checkpoint", "x": System()}, tmp_path / "system.pt")
    with pytest.raises(WmiError, match=r"system.pt: refused: .*\(it refers to (posix|nt).system\)"):
        load_checkpoint(tmp_path / "system.pt")
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


def _net() -> wmi.InpaintingUNet:
    torch.manual_seed(0)
    return wmi.InpaintingUNet(conv="partial", norm="batch", layers=3, base_channels=4)


def _member_data_offset(path: Path, name_part: str) -> int:
    """Where the bytes of the first zip member whose name contains ``name_part`` start."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if name_part in i.filename and i.file_size > 64)
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len


def test_damaged_checkpoint_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _net(), step=3)
    load_checkpoint(path)  # intact: loads
    raw = bytearray(path.read_bytes())
    start = _member_data_offset(path, "/data/")
    raw[start + 16 : start + 24] = b"\x00\x00\xc0\x7f" * 2  # 8 bytes: two float32 NaNs
    path.write_bytes(bytes(raw))
    with pytest.raises(WmiError, match=r"last.pt: damaged: .*data/\d+ does not match its checksum"):
        load_checkpoint(path)
    with pytest.raises(WmiError, match="last.pt: damaged"):
        load_model(path)
    # torch.load alone reads the changed weights without a word: the check is ours
    changed = torch.load(path, weights_only=True)["model"]
    assert any(not torch.isfinite(v).all() for v in changed.values() if v.is_floating_point())

    path.write_bytes(bytes(raw[: len(raw) // 2]))  # cut short, zip header intact
    with pytest.raises(WmiError, match="last.pt: damaged: not a complete zip archive"):
        load_checkpoint(path)


def test_non_finite_weights_are_not_blamed_on_training(tmp_path: Path) -> None:
    net = _net()
    with torch.no_grad():
        net.decoder[0].conv.weight[0, 0, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", net, step=3)  # a valid archive holding NaN
    with pytest.raises(WmiError, match=r"nan.pt: holds non-finite weights \(NaN or inf in decoder"):
        load_model(tmp_path / "nan.pt")


def test_full_disk_names_the_file_and_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _net(), step=1)
    before = path.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(WmiError) as caught:
        save_checkpoint(path, _net(), step=2)
    monkeypatch.setattr(torch, "save", real_save)
    assert str(caught.value) == (
        f"{path}: cannot write (No space left on device); the previous last.pt is kept"
    )
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the temporary file is gone
