"""Adding a kind is one entry: a conv kind and a metric registered here reach every consumer.

The conv kind below is registered in this file only; nothing else in wmi is touched. The U-Net,
``--norm auto``, the ``wmi train`` command line and the U-Net benchmark then accept it, and a
metric registered the same way appears in every report format. (Mask kinds: see
tests/test_mask_kinds.py; presets: tests/test_data.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from wmi.cli import app
from wmi.kinds import CONV_KINDS, METRICS, ConvKind, Metric
from wmi.layers.conv import WeightedConv2d
from wmi.models.unet import InpaintingUNet


class DoubleWeightedConv2d(WeightedConv2d):
    """A stand-in for somebody's new layer: a weighted conv whose output is doubled."""

    def forward(self, x, mask, premasked=False):
        y, new_mask = super().forward(x, mask, premasked=premasked)
        return 2 * y, new_mask


def max_error(pred: np.ndarray, gt: np.ndarray, hole: np.ndarray, comp: np.ndarray) -> float:
    return float(np.abs(pred[hole] - gt[hole]).max())


@pytest.fixture
def new_conv_kind() -> Iterator[str]:
    CONV_KINDS.register(
        ConvKind("double", "a test kind", layer=DoubleWeightedConv2d, paper_norm="instance")
    )
    yield "double"
    CONV_KINDS.unregister("double")


@pytest.fixture
def new_metric() -> Iterator[str]:
    METRICS.register(Metric("maxerr", "largest hole error", max_error, label="Max ↓", latex="Max"))
    yield "maxerr"
    METRICS.unregister("maxerr")


def test_the_unet_builds_a_registered_conv_kind_with_its_paper_norm(new_conv_kind: str) -> None:
    from wmi.kinds import paper_norm

    net = InpaintingUNet(conv=new_conv_kind, norm=paper_norm(new_conv_kind), layers=3,
                         base_channels=4)  # fmt: skip
    assert isinstance(net.encoder[0].conv, DoubleWeightedConv2d)
    assert type(net.encoder[1].norm).__name__ == "WeightedInstanceNorm2d"
    out = net(torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16))
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()


def test_the_benchmark_times_every_registered_kind(new_conv_kind: str) -> None:
    from wmi.bench.unet import benchmark_unet

    result = benchmark_unet(torch.device("cpu"), size=16, batches=(1,), layers=2, rounds=1)
    rows = {(r["kind"], r["norm"]) for r in result["rows"]}
    assert ("double", "instance") in rows and ("plain", "batch") in rows


@pytest.mark.slow
def test_wmi_train_accepts_a_registered_conv_kind(new_conv_kind: str, tmp_path: Path) -> None:
    from wmi.data import prepare
    from wmi.io import write_image

    rng = np.random.default_rng(0)
    for i in range(12):
        write_image(tmp_path / "photos" / f"{i}.png", rng.random((20, 20, 3)).astype(np.float32))
    prepare(tmp_path / "photos", tmp_path / "shards", size=16, workers=0, seed=0)
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "shards"), "--out", str(run), "--conv", "double"]
    args += [
        "--steps",
        "2",
        "--size",
        "16",
        "--layers",
        "2",
        "--base-channels",
        "4",
        "--batch-size",
        "2",
    ]
    args += ["--perceptual", "none", "--device", "cpu", "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert (config["conv"], config["norm"]) == ("double", "instance")
    assert (run / "checkpoints" / "last.pt").is_file()


def test_a_registered_metric_reaches_every_report(new_metric: str) -> None:
    from wmi.eval.metrics import ImageScore, hole_metrics, summarize_scores
    from wmi.eval.report import to_json, to_latex, to_markdown

    gt = np.full((16, 16, 3), 0.5)
    pred = gt.copy()
    pred[4:8, 4:8] = 0.75
    hole = np.zeros((16, 16), bool)
    hole[2:10, 2:10] = True
    metrics = hole_metrics(pred, gt, hole)
    assert metrics["maxerr"] == pytest.approx(0.25)
    results = summarize_scores([ImageScore("a.png", float(hole.mean()), {"M": metrics})], ["M"])
    assert json.loads(to_json(results))["methods"][0]["metrics"]["maxerr"] == pytest.approx(0.25)
    assert "Max ↓" in to_markdown(results)
    assert "Max" in to_latex(results)
