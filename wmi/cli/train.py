"""``wmi train``: the paper's training recipe (see docs/training.md)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from wmi.device import DeviceChoice


class ConvKind(str, Enum):
    weighted = "weighted"
    partial = "partial"
    gated = "gated"
    plain = "plain"


class NormKind(str, Enum):
    auto = "auto"
    weighted = "weighted"
    batch = "batch"
    instance = "instance"
    none = "none"


class AmpMode(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    off = "off"


class Perceptual(str, Enum):
    vgg16 = "vgg16"
    none = "none"


def train(
    data: Path | None = typer.Option(
        None, "--data", help="Folder of shards from `wmi data prepare` (train-*.h5, val-*.h5)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run folder (RUN_DIR): config, checkpoints, metrics, previews."
    ),
    conv: ConvKind | None = typer.Option(
        None,
        help="Convolution: weighted (WConv), partial (PConv), gated, plain.",
        show_default="weighted",
    ),
    norm: NormKind | None = typer.Option(
        None,
        help="Normalization; auto = weighted for weighted conv, batch otherwise.",
        show_default="auto",
    ),
    masks: str | None = typer.Option(
        None,
        help="Training holes: 'freeform' (DeepFill v2 strokes + box) or a folder of mask "
        "PNGs (white = hole).",
        show_default="freeform",
    ),
    size: int | None = typer.Option(
        None, help="Crop side in pixels; a multiple of 2**layers.", show_default="256"
    ),
    layers: int | None = typer.Option(
        None, help="Encoder depth: 7 for 256², 8 for 512².", show_default="7"
    ),
    base_channels: int | None = typer.Option(
        None, help="Channels of the first layer (the paper: 64).", show_default="64"
    ),
    batch_size: int | None = typer.Option(
        None, help="Images per step per GPU/process (the paper: 25).", show_default="25"
    ),
    bn_momentum: float | None = typer.Option(
        None,
        help="Batch-norm running-statistics rate (the paper's decay 0.999 = 0.001; use ~0.1 "
        "for runs of a few hundred steps).",
        show_default="0.001",
    ),
    steps: int | None = typer.Option(None, help="Optimizer steps (or give --epochs)."),
    epochs: int | None = typer.Option(None, help="Passes over the training split (or --steps)."),
    lr: float | None = typer.Option(
        None,
        help="Initial learning rate (cosine decay to --lr-final).",
        show_default="5e-4; 5e-5 with --finetune",
    ),
    lr_final: float | None = typer.Option(
        None, help="Learning rate at the last step.", show_default="1e-5; = --lr with --finetune"
    ),
    finetune: Path | None = typer.Option(
        None,
        help="Start from this checkpoint with the encoder's batch norm frozen (PConv's "
        "second stage).",
    ),
    amp: AmpMode | None = typer.Option(
        None,
        help="Mixed precision: bf16, fp16 (with gradient scaling), off; auto = bf16 on a "
        "CUDA GPU, off on CPU.",
        show_default="auto",
    ),
    compile: bool | None = typer.Option(
        None,
        "--compile/--no-compile",
        help="torch.compile the network and the loss.",
        show_default="no-compile",
    ),
    channels_last: bool | None = typer.Option(
        None,
        "--channels-last/--no-channels-last",
        help="NHWC memory layout (faster on GPUs).",
        show_default="no-channels-last",
    ),
    device: DeviceChoice | None = typer.Option(
        None, help="auto = CUDA when available, else CPU.", show_default="auto"
    ),
    workers: int | None = typer.Option(
        None, help="Data loader worker processes per GPU/process.", show_default="4"
    ),
    val_every: int | None = typer.Option(
        None, help="Validate (metrics, preview) every N steps and at the end.", show_default="1000"
    ),
    val_images: int | None = typer.Option(
        None, help="Validation images (the first of the val split).", show_default="100"
    ),
    save_every: int | None = typer.Option(
        None, help="Save checkpoints/last.pt every N steps and at the end.", show_default="1000"
    ),
    log_every: int | None = typer.Option(
        None, help="Write a metrics.jsonl training line every N steps.", show_default="10"
    ),
    seed: int | None = typer.Option(
        None, help="Seeds weights, data order, crops and masks.", show_default="0"
    ),
    vgg_weights: Path | None = typer.Option(
        None,
        help="torchvision vgg16 state dict (vgg16-397923af.pth) for the perceptual and "
        "style losses; default: torchvision's cache.",
    ),
    perceptual: Perceptual | None = typer.Option(
        None,
        help="vgg16 = the paper's loss; none = train without perceptual and style terms.",
        show_default="vgg16",
    ),
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
    from wmi.errors import WmiError
    from wmi.train import make_config, resume_config
    from wmi.train import train as run_training

    overrides = {
        "data": data,
        "out": out,
        "conv": conv,
        "norm": norm,
        "masks": masks,
        "size": size,
        "layers": layers,
        "base_channels": base_channels,
        "batch_size": batch_size,
        "bn_momentum": bn_momentum,
        "steps": steps,
        "epochs": epochs,
        "lr": lr,
        "lr_final": lr_final,
        "finetune": finetune,
        "amp": amp,
        "compile": compile,
        "channels_last": channels_last,
        "device": device,
        "workers": workers,
        "val_every": val_every,
        "val_images": val_images,
        "save_every": save_every,
        "log_every": log_every,
        "seed": seed,
        "vgg_weights": vgg_weights,
        "perceptual": perceptual,
    }
    overrides = {k: v.value if isinstance(v, Enum) else v for k, v in overrides.items()}
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
