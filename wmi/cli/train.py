"""``wmi train``: the paper's training recipe (see docs/training.md).

Every option is a field of :class:`wmi.training.config.TrainConfig`, whose defaults are shown
here (and written nowhere else). Options default to None, "not given", so that a ``--config``
file's values are only overridden by the flags actually given. Importing this module does not
import torch.
"""

from pathlib import Path
from typing import Any

import typer

from wmi.cli.common import choice, interrupted_exit
from wmi.kinds import AMP_MODES, ARCHS, AUTO, CONV_KINDS, DEVICES, NORM_KINDS, PERCEPTUAL
from wmi.training.config import default, field_help, field_names, field_range, shown_default


def _shown(name: str) -> str | bool:
    """How ``--help`` shows the default of a TrainConfig field (nothing for None)."""
    value = default(name)
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"no-{flag}"
    return (shown_default(name) or False) if value is None else str(value)


def _opt(name: str, *decls: str, **kwargs: Any) -> Any:
    """The option of the TrainConfig field ``name``: None unless given, its default shown, and
    for a number its range (typer shows it in --help and refuses a value outside)."""
    bounds = field_range(name)
    if bounds is not None:
        kwargs.update(min=bounds[0], max=bounds[1])
    return typer.Option(None, *decls, help=field_help(name), show_default=_shown(name), **kwargs)


def _kind(registry: Any, name: str) -> Any:
    """The option of a TrainConfig field whose choices are the names of ``registry``."""
    return choice(registry, None, f"--{name}", help=field_help(name), show_default=_shown(name))


def _switch(name: str) -> Any:
    flag = name.replace("_", "-")
    return _opt(name, f"--{flag}/--no-{flag}")


def _norm_choice(value: str) -> str:
    if value != AUTO and value not in NORM_KINDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join((AUTO, *NORM_KINDS))}")
    return value


def _norm() -> Any:
    """``--norm``: "auto" or a norm kind (wmi.cli.choice takes one registry only)."""
    return typer.Option(
        None,
        "--norm",
        parser=_norm_choice,
        metavar="[" + "|".join((AUTO, *NORM_KINDS)) + "]",
        help=f"{field_help('norm')} {NORM_KINDS.describe()}.",
        show_default=_shown("norm"),
    )


def train(
    data: Path | None = _opt("data"),
    out: Path | None = _opt("out"),
    arch: str | None = _kind(ARCHS, "arch"),
    conv: str | None = _kind(CONV_KINDS, "conv"),
    norm: str | None = _norm(),
    masks: str | None = _opt("masks"),
    size: int | None = _opt("size"),
    layers: int | None = _opt("layers"),
    base_channels: int | None = _opt("base_channels"),
    batch_size: int | None = _opt("batch_size"),
    bn_momentum: float | None = _opt("bn_momentum"),
    steps: int | None = _opt("steps"),
    epochs: int | None = _opt("epochs"),
    lr: float | None = _opt("lr"),
    lr_final: float | None = _opt("lr_final"),
    finetune: Path | None = _opt("finetune"),
    amp: str | None = _kind(AMP_MODES, "amp"),
    compile: bool | None = _switch("compile"),
    channels_last: bool | None = _switch("channels_last"),
    device: str | None = _kind(DEVICES, "device"),
    workers: int | None = _opt("workers"),
    val_every: int | None = _opt("val_every"),
    val_images: int | None = _opt("val_images"),
    save_every: int | None = _opt("save_every"),
    log_every: int | None = _opt("log_every"),
    seed: int | None = _opt("seed"),
    vgg_weights: Path | None = _opt("vgg_weights"),
    perceptual: str | None = _kind(PERCEPTUAL, "perceptual"),
    tensorboard: bool | None = _switch("tensorboard"),
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
    """Train an inpainting network: the paper's U-Net with its recipe (PConv loss, Adam, lr
    decay), or DeepFill v1/v2 with theirs (--arch; docs/models.md).

    Writes RUN_DIR/config.json, checkpoints/last.pt and best.pt, metrics.jsonl, train.log and
    preview PNGs. Ctrl-C or SIGTERM finishes the current step, saves last.pt and exits
    (130/143); --resume continues from there. Under `torchrun --nproc-per-node N -m wmi
    train ...` it trains on N GPUs (DDP). See docs/training.md.
    """
    overrides = {k: v for k, v in locals().items() if k in field_names()}
    _run(overrides, config, resume, overwrite, progress)


def _run(
    overrides: dict[str, Any], config: Path | None, resume: bool, overwrite: bool, progress: bool
) -> None:
    from wmi.errors import WmiError
    from wmi.training.config import make_config, missing_options, resume_config
    from wmi.training.loop import train as run_training

    if resume:
        if config is not None:
            raise WmiError("--resume uses the run's saved configuration; drop --config")
        if overrides["out"] is None:
            raise WmiError("--resume needs --out RUN_DIR")
        cfg = resume_config(overrides["out"], overrides)
    else:
        cfg = make_config(config, overrides)
        missing = missing_options(cfg)
        if missing:
            raise WmiError(f"missing {', '.join(missing)} (see wmi train --help)")
    result = run_training(cfg, resume=resume, overwrite=overwrite, progress=progress)
    if result.rank != 0:  # under torchrun, rank 0 speaks for all
        raise typer.Exit(128 + result.stop_signal if result.stop_signal else 0)
    best = result.best
    summary = f"{result.step} steps in {result.run_dir}"
    if best:
        summary += f"; best hole L1 {best['l1']:.3f} % at step {best['step']} (checkpoints/best.pt)"
    if result.stop_signal:
        saved = f"saved checkpoints/last.pt after {summary}; continue with --resume"
        from wmi.procs import Interrupted

        raise interrupted_exit(Interrupted(result.stop_signal, saved))
    typer.echo(f"trained {summary}")
