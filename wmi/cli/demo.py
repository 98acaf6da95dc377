"""``wmi demo``: the whole pipeline on bundled photographs."""

from pathlib import Path

import typer

from wmi.cli.common import choice, err_console
from wmi.kinds import ARCH_LIMITS, DEVICES, SEED_MAX


def demo(
    out: Path = typer.Option(Path("wmi-demo"), help="Output folder (created; must be empty)."),
    steps: int = typer.Option(1000, min=1, max=10**6, help="Training steps for each network."),
    size: int = typer.Option(
        64, min=16, max=512, help="Image side in pixels (multiple of 2**layers)."
    ),
    layers: int = typer.Option(6, min=1, max=ARCH_LIMITS["layers"][1], help="U-Net depth."),
    crops: int = typer.Option(
        24,
        min=1,
        max=1000,
        help="Random crops from each training photograph (half as many per test one).",
    ),
    device: str = choice(DEVICES, "auto", "--device", help="Where to train and inpaint:"),
    seed: int = typer.Option(
        0, min=0, max=SEED_MAX, help="Seeds crops, splits, masks and training."
    ),
    overwrite: bool = typer.Option(False, help="Replace an earlier demo in OUT."),
    with_deepfill: bool = typer.Option(
        False,
        "--with-deepfill",
        help="Also train DeepFill v2 (--arch deepfill2, its official width) and compare it; "
        "several times slower than the U-Nets on a CPU.",
    ),
) -> None:
    """Prepare data, make masks, train WConv and PConv (and DF2), inpaint, print Table I.

    Runs on scikit-image's sample photographs: trains on crops of six of them and tests on
    crops of two others. Writes shards, masks, runs, results, preview sheets and
    demo-report.md into OUT. Table I goes to stdout; steps, commands and progress to stderr.
    """
    from rich.console import Console

    from wmi.experiments.demo import DemoConfig, run_demo

    config = DemoConfig(out=out, steps=steps, size=size, layers=layers, crops=crops,
                        device=device, seed=seed, overwrite=overwrite,
                        with_deepfill=with_deepfill)  # fmt: skip
    run_demo(config, notes=err_console, results=Console(highlight=False, soft_wrap=True))
