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
