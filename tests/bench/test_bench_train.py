"""wmi.bench.train: training-step throughput per conv kind and precision mode."""

from __future__ import annotations

import pytest

from wmi.bench.train import benchmark_train
from wmi.errors import WmiError


def test_train_benchmark_reports_ratios() -> None:
    result = benchmark_train(
        "cpu", size=32, batch_size=2, layers=4, modes=("fp32",), perceptual=False, rounds=1,
        warmup=0,
    )  # fmt: skip
    rows = {(r["conv"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {("weighted", "fp32"), ("plain", "fp32")}
    assert rows["weighted", "fp32"]["norm"] == "weighted"  # each with its paper norm
    assert rows["plain", "fp32"]["norm"] == "batch"
    assert rows["plain", "fp32"]["ratio_vs_plain"] == 1.0
    assert all(r["speedup_vs_fp32"] == 1.0 and r["images_per_s"] > 0 for r in rows.values())
    with pytest.raises(WmiError, match="mode 'fp8': expected one of fp32"):
        benchmark_train("cpu", modes=("fp8",))


@pytest.mark.slow
def test_cli_times_deepfill_beside_the_u_nets_in_one_run() -> None:
    import json

    from typer.testing import CliRunner

    from wmi.cli import app

    args = ["bench", "train", "--device", "cpu", "--size", "32", "--batch-size", "2",
            "--layers", "4", "--mode", "fp32", "--rounds", "1", "--arch", "deepfill2",
            "--conv", "plain", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {(r["arch"], r["conv"]): r for r in json.loads(result.stdout)["train"]["rows"]}
    assert set(rows) == {("unet", "plain"), ("deepfill2", "")}
    df2 = rows["deepfill2", ""]
    # a DeepFill v2 step trains on two batches: the discriminator's and the generator's
    assert df2["images_per_s"] == pytest.approx(2 * 2 * 1000 / df2["ms_per_step"])
    assert df2["ratio_vs_plain"] > 0 and rows["unet", "plain"]["ratio_vs_plain"] == 1.0
