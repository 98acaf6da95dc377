"""TensorBoard event files of wmi train: the values of metrics.jsonl, previews, resume, off."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from wmi.errors import WmiError
from wmi.training.config import TrainConfig
from wmi.training.loop import train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)


class Pairs(Dataset):
    """Random images with a box hole; items fetched from ``nan_from`` on are NaN."""

    def __init__(self, n: int = 8, size: int = 32, nan_from: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, size, size, generator=g)
        self.mask = torch.ones(1, size, size)
        self.mask[:, 8:20, 4:16] = 0
        self.fetched, self.nan_from = 0, nan_from

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.fetched += 1
        if self.nan_from is not None and self.fetched >= self.nan_from:
            return torch.full_like(self.images[i], float("nan")), self.mask
        return self.images[i], self.mask


def _cfg(out: Path, **kw) -> TrainConfig:
    base = dict(
        out=str(out), size=32, layers=4, base_channels=4, batch_size=2, steps=6, workers=0,
        val_every=3, val_images=4, save_every=3, log_every=1, perceptual="none", device="cpu",
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


def _train(cfg: TrainConfig, data: Dataset | None = None, **kw):
    return train(cfg, train_set=data or Pairs(), val_set=Pairs(4), progress=False, echo=False, **kw)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _series(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_events_mirror_metrics_jsonl_and_the_previews(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(_cfg(run))
    rows = _metrics(run)
    train_rows = [r for r in rows if r["kind"] == "train"]
    val_rows = [r for r in rows if r["kind"] == "val"]
    acc = _events(run)
    tags = set(acc.Tags()["scalars"])
    terms = [k for k in train_rows[0] if k not in ("step", "kind", "epoch", "lr", "images_per_s")]
    assert "total" in terms and "hole" in terms
    assert {f"loss/{t}" for t in terms} | {"train/lr", "train/images_per_s"} <= tags
    for tag, key in [(f"loss/{t}", t) for t in terms] + [
        ("train/lr", "lr"),
        ("train/images_per_s", "images_per_s"),
    ]:
        got = _series(acc, tag)
        assert [s for s, _ in got] == [r["step"] for r in train_rows] == [1, 2, 3, 4, 5, 6]
        assert [v for _, v in got] == pytest.approx([r[key] for r in train_rows], rel=1e-6)
    assert {"val/l1", "val/psnr"} <= tags
    assert _series(acc, "val/l1") == [
        (r["step"], pytest.approx(r["l1"], rel=1e-6)) for r in val_rows
    ]
    previews = acc.Images("val/preview")
    assert [p.step for p in previews] == [3, 6]
    assert previews[0].height > 4 * 32 and previews[0].width > 4 * 32  # 4 rows of 4 tiles


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = _cfg(run)
    # NaN from item 9: step 5 fails; last.pt is at step 3, step 4 was already logged
    with pytest.raises(WmiError, match="at step 5"):
        _train(cfg, Pairs(nan_from=9))
    assert _series(_events(run), "loss/total")[-1][0] == 4
    _train(cfg, resume=True)
    totals = [(r["step"], r["total"]) for r in _metrics(run) if r["kind"] == "train"]
    got = _series(_events(run), "loss/total")
    assert [s for s, _ in got] == [s for s, _ in totals] == [1, 2, 3, 4, 5, 6]
    assert [v for _, v in got] == pytest.approx([v for _, v in totals], rel=1e-6)


def test_no_tensorboard_writes_no_events(tmp_path: Path) -> None:
    _train(_cfg(tmp_path / "run", tensorboard=False))
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert "not installed" not in (tmp_path / "run" / "train.log").read_text()


def test_without_the_package_the_run_says_so_once_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard fails
    result = _train(_cfg(tmp_path / "run", steps=2))
    assert result.step == 2 and not (tmp_path / "run" / "tensorboard").exists()
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("tensorboard is not installed") == 1
    assert "pip install 'wmi[tensorboard]'" in log
