"""``wmi bench``: the speed claims, each as a ratio against a baseline measured in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wmi.device import DeviceChoice


class Suite(str, Enum):
    layers = "layers"
    unet = "unet"
    all = "all"


def _run_layers(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench import benchmark_layers

    return benchmark_layers(device, rounds=rounds)


def _run_unet(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench import benchmark_unet

    return benchmark_unet(device, size=size, rounds=rounds)


#: suite name -> runner(device, size, rounds) returning a dict with a "rows" list
SUITES: dict[str, Callable[[Any, int, int], dict[str, Any]]] = {
    "layers": _run_layers,
    "unet": _run_unet,
}


def render(name: str, result: dict[str, Any], console: Console) -> None:
    """Print one suite's rows as a table, columns taken from the rows' keys."""
    rows = result.get("rows", [])
    table = Table(title=f"{name} — {result.get('device_name', '')}", title_justify="left")
    if not rows:
        console.print(table)
        return
    for key in rows[0]:
        table.add_column(key, justify="right" if isinstance(rows[0][key], float) else "left")
    for row in rows:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)


def bench(
    suite: Suite = typer.Argument(Suite.all, help="Which measurements to run."),
    device: DeviceChoice = typer.Option(
        DeviceChoice.auto, help="auto = CUDA when available, else CPU."
    ),
    size: int = typer.Option(256, help="Image size (pixels, square) for the U-Net suite."),
    rounds: int = typer.Option(5, min=1, help="Timed rounds per variant; the median is shown."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Measure speed as ratios against a baseline timed in the same run.

    layers: each conv kind against plain convolution on U-Net layer shapes.
    unet: forward and forward+backward of the U-Net per conv kind against the plain U-Net.
    """
    from wmi.device import resolve_device

    dev = resolve_device(device)
    names = list(SUITES) if suite is Suite.all else [suite.value]
    console = Console(stderr=as_json)
    results = {}
    for name in names:
        with console.status(f"benchmark {name} on {dev} ..."):
            results[name] = SUITES[name](dev, size, rounds)
        if not as_json:
            render(name, results[name], console)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
