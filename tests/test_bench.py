from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from wmi.bench import benchmark_unet, interleaved_medians
from wmi.cli import app


def test_unet_benchmark_reports_ratios_against_plain() -> None:
    result = benchmark_unet(torch.device("cpu"), size=32, batches=(1,), layers=4, rounds=1)
    assert result["device"] == "cpu" and "CPU" in result["device_name"]
    rows = result["rows"]
    assert {(r["kind"], r["pass"]) for r in rows} == {
        (k, p)
        for k in ("weighted", "partial", "gated", "plain")
        for p in ("forward", "forward+backward")
    }
    for row in rows:
        assert row["ms"] > 0
        if row["kind"] == "plain":
            assert row["ratio_vs_plain"] == 1.0


def test_interleaved_medians_orders_costs() -> None:
    a = torch.rand(64, 64)
    med = interleaved_medians(
        {"cheap": lambda: a + 1, "costly": lambda: [a @ a for _ in range(50)]},
        torch.device("cpu"),
        rounds=3,
    )
    assert med["costly"] > med["cheap"]


def test_cli_json() -> None:
    result = CliRunner().invoke(
        app, ["bench", "layers", "--rounds", "1", "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["kind"] for r in data["layers"]["rows"]} == {"weighted", "partial", "gated", "plain"}
