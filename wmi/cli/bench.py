"""``wmi bench``: the speed claims, each as a ratio against a baseline measured in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wmi.cli import choice
from wmi.kinds import DEVICES


class Suite(str, Enum):
    """What ``wmi bench`` measures (subjects, not a list of kinds)."""

    layers = "layers"
    unet = "unet"
    train = "train"
    data = "data"
    inpaint = "inpaint"
    all = "all"


def _run_layers(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench.unet import benchmark_layers

    return benchmark_layers(device, rounds=rounds)


def _run_unet(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench.unet import benchmark_unet

    return benchmark_unet(device, size=size, rounds=rounds)


def _run_train(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench.train import benchmark_train

    if device.type == "cuda":  # the paper's shape, every precision mode
        return benchmark_train(device, size=size, batch_size=25, rounds=rounds)
    # a CPU step at 256², batch 25 with VGG16 takes minutes: a smaller shape, no compile
    return benchmark_train(
        device, size=64, batch_size=4, layers=6, modes=("fp32", "bf16+cl"), rounds=rounds
    )


def _run_data(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench.data import benchmark_data

    # 600 synthetic photos: enough for the loader to reach steady state; decoded in-process
    result = benchmark_data(
        size=size, images=600, masks="freeform", prepare_workers=0, rounds=rounds
    )
    return {**result["runs"][0], "device_name": "CPU"}


def _run_inpaint(device: Any, size: int, rounds: int) -> dict[str, Any]:
    from wmi.bench.inpaint import benchmark_inpaint

    result = benchmark_inpaint(size=size, repeats=max(rounds, 3))
    rows = [{"method": name, **values} for name, values in result["methods"].items()]
    return {**result, "rows": rows, "device_name": "CPU"}


#: suite name -> runner(device, size, rounds) returning a dict with a "rows" list
SUITES: dict[str, Callable[[Any, int, int], dict[str, Any]]] = {
    "layers": _run_layers,
    "unet": _run_unet,
    "train": _run_train,
    "data": _run_data,
    "inpaint": _run_inpaint,
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
    device: str = choice(DEVICES, "auto", "--device", help="Where to run."),
    size: int = typer.Option(256, help="Image size (pixels, square) for the U-Net suite."),
    rounds: int = typer.Option(5, min=1, help="Timed rounds per variant; the median is shown."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Measure speed as ratios against a baseline timed in the same run.

    layers: each conv kind against plain convolution on U-Net layer shapes.
    unet: forward and forward+backward of the U-Net per conv kind against the plain U-Net.
    train: training steps per second, bf16 + channels_last (+ compile on GPU) against fp32,
    weighted against plain (256², batch 25 on GPU; 64², batch 4 on CPU).
    data: the HDF5 training loader (uint8 items, free-form masks; and the float32 items of
    before) against raw random h5py reads, best of --rounds interleaved rounds.
    inpaint: wmi's classical inpainting against calling OpenCV / scikit-image directly.
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
