"""``wmi train``: the paper's training recipe (see docs/training.md).

Every option is a field of :class:`wmi.training.config.TrainConfig`, whose defaults are shown
here (and written nowhere else). Options default to None, "not given", so that a ``--config``
file's values are only overridden by the flags actually given. Importing this module does not
import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wmi.cli import choice
from wmi.kinds import AMP_MODES, AUTO, CONV_KINDS, DEVICES, NORM_KINDS, PERCEPTUAL
from wmi.training.config import FINETUNE_LR, LR, LR_FINAL, default, field_names


def _shown(name: str) -> str | bool:
    """How ``--help`` shows the default of a TrainConfig field (nothing for None)."""
    value = default(name)
    if isinstance(value, bool):
        return name.replace("_", "-") if value else "no-" + name.replace("_", "-")
    return False if value is None else str(value)


def _opt(name: str, help: str, *decls: str, **kwargs: Any) -> Any:
    """An option for the TrainConfig field ``name``: None unless given, its default shown."""
    return typer.Option(None, *decls, help=help, show_default=_shown(name), **kwargs)


def _kind(registry: Any, name: str, help: str) -> Any:
    """An option whose choices are the names of ``registry``."""
    return choice(registry, None, f"--{name}", help=help, show_default=_shown(name))


def _norm(value: str) -> str:
    if value != AUTO and value not in NORM_KINDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join((AUTO, *NORM_KINDS))}")
    return value


def train(
    data: Path | None = _opt(
        "data", "Folder of shards from `wmi data prepare` (train-*.h5, val-*.h5).", "--data"
    ),
    out: Path | None = _opt(
        "out", "Run folder (RUN_DIR): config, checkpoints, metrics, previews.", "--out"
    ),
    conv: str | None = _kind(CONV_KINDS, "conv", "Convolution."),
    norm: str | None = _opt(
        "norm",
        f"Normalization: auto (the conv kind's paper norm: weighted for weighted, batch "
        f"otherwise), {NORM_KINDS.describe()}.",
        parser=_norm,
        metavar="[" + "|".join((AUTO, *NORM_KINDS)) + "]",
    ),
    masks: str | None = _opt(
        "masks",
        "Training holes: 'freeform' (DeepFill v2 strokes + box) or a folder of mask "
        "PNGs (white = hole).",
    ),
    size: int | None = _opt("size", "Crop side in pixels; a multiple of 2**layers."),
    layers: int | None = _opt("layers", "Encoder depth: 7 for 256², 8 for 512²."),
    base_channels: int | None = _opt("base_channels", "Channels of the first layer (paper: 64)."),
    batch_size: int | None = _opt("batch_size", "Images per step per GPU/process (the paper: 25)."),
    bn_momentum: float | None = _opt(
        "bn_momentum",
        "Batch-norm running-statistics rate (the paper's decay 0.999 = 0.001; use ~0.1 "
        "for runs of a few hundred steps).",
    ),
    steps: int | None = _opt("steps", "Optimizer steps (or give --epochs)."),
    epochs: int | None = _opt("epochs", "Passes over the training split (or --steps)."),
    lr: float | None = typer.Option(
        None,
        help="Initial learning rate (cosine decay to --lr-final).",
        show_default=f"{LR:g}; {FINETUNE_LR:g} with --finetune",
    ),
    lr_final: float | None = typer.Option(
        None,
        help="Learning rate at the last step.",
        show_default=f"{LR_FINAL:g}; = --lr with --finetune",
    ),
    finetune: Path | None = _opt(
        "finetune",
        "Start from this checkpoint with the encoder's batch norm frozen (PConv's second stage).",
    ),
    amp: str | None = _kind(AMP_MODES, "amp", "Mixed precision."),
    compile: bool | None = _opt(
        "compile", "torch.compile the network and the loss.", "--compile/--no-compile"
    ),
    channels_last: bool | None = _opt(
        "channels_last",
        "NHWC memory layout (faster on GPUs).",
        "--channels-last/--no-channels-last",
    ),
    device: str | None = _kind(DEVICES, "device", "Device."),
    workers: int | None = _opt("workers", "Data loader worker processes per GPU/process."),
    val_every: int | None = _opt(
        "val_every", "Validate (metrics, preview) every N steps and at the end."
    ),
    val_images: int | None = _opt("val_images", "Validation images (the first of the val split)."),
    save_every: int | None = _opt(
        "save_every", "Save checkpoints/last.pt every N steps and at the end."
    ),
    log_every: int | None = _opt("log_every", "Write a metrics.jsonl training line every N steps."),
    seed: int | None = _opt("seed", "Seeds weights, data order, crops and masks."),
    vgg_weights: Path | None = _opt(
        "vgg_weights",
        "torchvision vgg16 state dict (vgg16-397923af.pth) for the perceptual and "
        "style losses; default: torchvision's cache.",
    ),
    perceptual: str | None = _kind(PERCEPTUAL, "perceptual", "Perceptual and style loss network."),
    config: Path | None = typer.Option(
        None, help="TOML or JSON file of options (same names); flags override it."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --out from checkpoints/last.pt, exactly."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run in --out (its files only)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
) -> None:
    """Train an inpainting network with the paper's recipe (PConv loss, Adam, lr decay).

    Writes RUN_DIR/config.json, checkpoints/last.pt and best.pt, metrics.jsonl, train.log and
    preview PNGs. Ctrl-C finishes the current step, saves last.pt and exits; --resume
    continues from there. Under `torchrun --nproc-per-node N -m wmi train ...` it trains on N
    GPUs (DDP). See docs/training.md.
    """
    overrides = {k: v for k, v in locals().items() if k in field_names()}
    from wmi.errors import WmiError
    from wmi.train import make_config, resume_config
    from wmi.train import train as run_training

    if resume:
        if config is not None:
            raise WmiError("--resume uses the run's saved configuration; drop --config")
        if out is None:
            raise WmiError("--resume needs --out RUN_DIR")
        cfg = resume_config(out, overrides)
    else:
        cfg = make_config(config, overrides)
    result = run_training(cfg, resume=resume, overwrite=overwrite, progress=progress)
    if result.rank != 0:  # under torchrun, rank 0 speaks for all
        raise typer.Exit(130 if result.status == "interrupted" else 0)
    best = result.best
    summary = f"{result.step} steps in {result.run_dir}"
    if best:
        summary += f"; best hole L1 {best['l1']:.3f} % at step {best['step']} (checkpoints/best.pt)"
    if result.status == "interrupted":
        typer.echo(f"interrupted after {summary}; continue with --resume", err=True)
        raise typer.Exit(130)
    typer.echo(f"trained {summary}")
