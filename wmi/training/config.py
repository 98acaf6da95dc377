"""The configuration of a training run: :class:`TrainConfig`, config files and the resume policy.

Everything here checks user input and is torch-free, so ``wmi train --help`` can read the
defaults and choices without importing torch. Each default is written once, in
:class:`TrainConfig`; each check is made once, in :func:`resolve_config` (and
:func:`check_size` for the crop size).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmi.errors import WmiError
from wmi.kinds import AMP_MODES, AUTO, CONV_KINDS, DEVICES, NORM_KINDS, PERCEPTUAL, paper_norm

#: The paper's learning rates: cosine from LR to LR_FINAL; PConv's fine-tuning stage.
LR, LR_FINAL, FINETUNE_LR = 5e-4, 1e-5, 5e-5
#: What a resumed run may change: how it runs, not what it computes.
RESUME_MUTABLE = frozenset(
    {"data", "out", "workers", "val_every", "val_images", "save_every", "log_every", "device"}
    | {"tensorboard"}
)
#: What a resumed run may raise (not lower): its length; the lr cosine is then re-planned.
RESUME_EXTENDABLE = frozenset({"steps", "epochs"})
#: The paper's batch-norm momentum (decay 0.999), kept for runs of at least
#: BN_SETTLE / BN_PAPER_MOMENTUM steps; shorter runs get BN_SETTLE / steps, up to BN_MAX.
BN_PAPER_MOMENTUM, BN_MAX_MOMENTUM, BN_SETTLE = 0.001, 0.1, 5.0


@dataclass
class TrainConfig:
    """Every setting of a training run. ``wmi train`` flags map one to one onto fields.

    Attributes:
        data: folder of HDF5 shards (``train-*.h5``, ``val-*.h5``) from ``wmi data prepare``.
        out: the run folder (RUN_DIR).
        conv: a conv kind of :data:`wmi.kinds.CONV_KINDS` ("weighted" = WConv).
        norm: "auto" (the conv kind's paper norm) or a kind of :data:`wmi.kinds.NORM_KINDS`.
        masks: "freeform" (DeepFill v2 training masks) or a folder of mask PNGs (white = hole).
        size: training crop side in pixels; a multiple of ``2**layers``.
        layers: encoder depth (7 for 256², 8 for 512²).
        base_channels: channels of the first layer (64 in the paper).
        bn_momentum: running-statistics rate of the batch norms; None = from the run's
            length (:func:`auto_bn_momentum`): the paper's 0.001 (decay 0.999) for runs of
            5000 steps or more, 5 / steps for shorter ones (at most 0.1).
        batch_size: images per step per process (25 in the paper).
        steps: optimizer steps; exactly one of ``steps`` and ``epochs`` is set.
        epochs: passes over the training split (the last partial batch is dropped).
        lr: initial learning rate; None = 5e-4, or 5e-5 with ``finetune``.
        lr_final: learning rate at the last step; None = 1e-5, or ``lr`` with ``finetune``.
        finetune: checkpoint to start from, PConv's second stage (encoder batch norm frozen).
        amp: an AMP mode of :data:`wmi.kinds.AMP_MODES`; "auto" = bf16 on a CUDA GPU that
            supports it, off otherwise.
        compile: run the network and the loss through ``torch.compile``.
        channels_last: NHWC memory layout (faster convolutions on tensor-core GPUs).
        device: "auto" (cuda if available), "cpu" or "cuda".
        workers: DataLoader worker processes per training process (4, or the number of CPU
            cores where there are fewer: more workers than cores only slow a run down).
        val_every: validate (Table I metrics, preview) every this many steps, and at the end.
        val_images: validation images used (the first ones of the val split).
        save_every: write ``checkpoints/last.pt`` every this many steps, and at the end.
        log_every: write a ``metrics.jsonl`` training line every this many steps.
        seed: seeds the weights, the data order, the crops and the masks.
        vgg_weights: torchvision vgg16 state dict; None = torchvision's cache.
        perceptual: "vgg16" (the paper's loss) or "none" (no perceptual and style terms).
        tensorboard: also write TensorBoard event files (RUN_DIR/tensorboard) when the
            ``tensorboard`` package is installed.
    """

    data: str | None = None
    out: str | None = None
    conv: str = "weighted"
    norm: str = AUTO
    masks: str = "freeform"
    size: int = 256
    layers: int = 7
    base_channels: int = 64
    bn_momentum: float | None = None
    batch_size: int = 25
    steps: int | None = None
    epochs: int | None = None
    lr: float | None = None
    lr_final: float | None = None
    finetune: str | None = None
    amp: str = AUTO
    compile: bool = False
    channels_last: bool = False
    device: str = AUTO
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    val_every: int = 1000
    val_images: int = 100
    save_every: int = 1000
    log_every: int = 10
    seed: int = 0
    vgg_weights: str | None = None
    perceptual: str = "vgg16"
    tensorboard: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON and ``weights_only`` safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Build a config from a dict, checking names and types (see :meth:`replace`)."""
        return cls().replace(values, source)

    def replace(self, values: Mapping[str, Any], source: str = "option") -> TrainConfig:
        """A copy with the fields in ``values`` replaced, names and types checked.

        Keys may use ``-`` or ``_`` (``batch-size`` or ``batch_size``).

        Raises:
            WmiError: an unknown key or a value of the wrong type, naming ``source``.
        """
        return dataclasses.replace(self, **_checked(values, source))


def field_names() -> tuple[str, ...]:
    """The names of :class:`TrainConfig`'s fields, in order (the ``wmi train`` options)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def default(name: str) -> Any:
    """The default of a :class:`TrainConfig` field (for ``--help``)."""
    return getattr(TrainConfig(), name)


def _checked(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` with ``_`` names and values of the fields' types; raises WmiError."""
    types = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in types:
            raise WmiError(f"{source}: unknown option {key!r}")
        clean[name] = _coerce(value, types[name], f"{source}: {key}")
    return clean


def _coerce(value: Any, annotation: str, where: str) -> Any:
    """Check ``value`` against a field annotation written as a string (``"int | None"``)."""
    optional = annotation.endswith("| None")
    base = annotation.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise WmiError(f"{where}: must not be empty")
    if base == "bool":
        if isinstance(value, bool):
            return value
    elif base == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif base == "str" and isinstance(value, (str, os.PathLike)):
        return str(value)
    raise WmiError(f"{where}: expected {base}, got {value!r}")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON (``.json``) config file into a dict.

    The file holds ``TrainConfig`` fields at top level (or under a ``[train]`` table).

    Raises:
        WmiError: missing file, unknown extension, a syntax error, or TOML on Python < 3.11.
    """
    path = Path(path)
    if not path.is_file():
        raise WmiError(f"--config {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            values = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise WmiError(
                    f"--config {path}: TOML config files need Python 3.11 or newer; "
                    "write the same keys as a .json file"
                ) from None
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            raise WmiError(f"--config {path}: expected a .toml or .json file")
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, WmiError):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise WmiError(f"--config {path}: not valid {suffix[1:].upper()} ({reason})") from None
    if isinstance(values, dict) and isinstance(values.get("train"), dict) and len(values) == 1:
        values = values["train"]
    if not isinstance(values, dict):
        raise WmiError(f"--config {path}: expected a table of options at top level")
    return values


def _given(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The options given on the command line: None means "not given"."""
    return {k: v for k, v in overrides.items() if v is not None}


def make_config(
    config_file: str | os.PathLike[str] | None, overrides: Mapping[str, Any]
) -> TrainConfig:
    """The effective configuration: the file's values over the defaults, flags over both.

    Args:
        config_file: a TOML or JSON file, or None.
        overrides: field -> value from the command line; None values mean "not given".
    """
    base = TrainConfig()
    if config_file is not None:
        base = TrainConfig.from_dict(read_config_file(config_file), f"--config {config_file}")
    return base.replace(_given(overrides))


def resume_config(run_dir: str | os.PathLike[str], overrides: Mapping[str, Any]) -> TrainConfig:
    """The configuration of the run in ``run_dir``, for ``--resume``.

    Only the options in :data:`RESUME_MUTABLE` (data location, workers, validation and save
    intervals, device) may differ from the saved ones, and ``--steps`` (or ``--epochs``,
    whichever the run was given) may be raised.

    Raises:
        WmiError: no run in ``run_dir``, or an option that would change what is computed.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise WmiError(f"--resume: {run_dir} holds no checkpoints/last.pt to continue from")
    try:
        saved = TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError) as exc:
        if isinstance(exc, WmiError):
            raise
        raise WmiError(f"{path}: not a readable run configuration") from None
    changed = saved.replace(_given(overrides))
    difference = first_fixed_difference(saved.to_dict(), changed.to_dict())
    if difference is not None:
        name, old, new = difference
        flag = f"--{name.replace('_', '-')}"
        if name in RESUME_EXTENDABLE and old is not None and new is not None:
            raise WmiError(f"--resume may raise {flag}, not lower it: it was {old}, now {new}")
        raise WmiError(
            f"--resume continues the run as it was configured: {flag} "
            f"was {old!r}, now {new!r} (start a new run, or --finetune from its checkpoint)"
        )
    return dataclasses.replace(changed, out=str(run_dir))


def first_fixed_difference(
    saved: Mapping[str, Any], now: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    """The resume policy: ``(name, saved value, new value)`` of the first option that ``now``
    may not change, or None when ``now`` may continue ``saved``.

    Options in :data:`RESUME_MUTABLE` may change; those in :data:`RESUME_EXTENDABLE` may
    grow (a run of 1000 steps may continue to 3000, not stop at 500).
    """
    for name, new in now.items():
        old = saved.get(name)
        if name in RESUME_MUTABLE or old == new:
            continue
        extendable = name in RESUME_EXTENDABLE and isinstance(old, int) and isinstance(new, int)
        if not (extendable and new > old):
            return name, old, new
    return None


def missing_options(cfg: TrainConfig) -> list[str]:
    """The options a new run needs that ``cfg`` lacks (``--data``, ``--out``, its length)."""
    missing = [
        flag
        for flag, value in (("--data DIR", cfg.data), ("--out RUN_DIR", cfg.out))
        if value is None
    ]
    if cfg.steps is None and cfg.epochs is None:
        missing.append("--steps N (or --epochs N)")
    return missing


def auto_bn_momentum(total_steps: int) -> float:
    """The batch-norm momentum ``--bn-momentum`` defaults to for a run of ``total_steps``.

    With momentum m the running statistics keep ``(1 - m) ** steps`` of their initial values
    (mean 0, variance 1): the paper's 0.001 leaves 90 % of them after 100 steps, and a network
    validated or used in eval mode with such statistics gives garbage. ``5 / steps`` leaves
    under 1 % (e**-5) and still averages over the last fifth of the run; runs of 5000 steps
    or more keep the paper's 0.001, and very short ones get at most 0.1.
    """
    return min(BN_MAX_MOMENTUM, max(BN_PAPER_MOMENTUM, BN_SETTLE / max(1, total_steps)))


def resolve_bn_momentum(cfg: TrainConfig, total_steps: int) -> TrainConfig:
    """``cfg`` with ``bn_momentum`` chosen from the run's length when it was not given."""
    if cfg.bn_momentum is not None:
        return cfg
    return dataclasses.replace(cfg, bn_momentum=auto_bn_momentum(total_steps))


def bn_momentum_warning(cfg: TrainConfig, total_steps: int) -> str | None:
    """A warning when ``cfg.bn_momentum`` is too small for the statistics to settle in the run
    (more than 5 % of their initial values left at the end) and below the automatic choice.

    Returns:
        the message (naming the value to use), or None when the momentum suits the run.
    """
    momentum, suggested = cfg.bn_momentum, auto_bn_momentum(total_steps)
    if momentum is None or momentum >= suggested:
        return None
    left = (1.0 - momentum) ** total_steps
    if left <= 0.05:
        return None
    return (
        f"--bn-momentum {momentum:g} is too small for a run of {total_steps} steps: the "
        f"batch-norm running statistics will still hold {left:.0%} of their initial values "
        f"at the end, so validation and inference will look broken; use --bn-momentum "
        f"{suggested:.3g} (or leave it out: it is then chosen from the run's length)"
    )


def check_choice(option: str, value: str, allowed: Iterable[str]) -> None:
    """Raise WmiError unless ``value`` is one of ``allowed`` (a registry or names)."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise WmiError(f"{option} {value!r}: expected one of {', '.join(allowed)}")


def check_size(size: int, layers: int) -> None:
    """The crop side must be a positive multiple of ``2**layers`` (the U-Net halves it
    ``layers`` times); the error names the nearest valid size.

    Raises:
        WmiError: ``--size`` is not such a multiple.
    """
    from wmi.unet import check_multiple  # torch, only when a config is checked

    check_multiple(size, size, layers, option="--size")


def _check_numbers(cfg: TrainConfig) -> None:
    for name in ("layers", "base_channels", "batch_size", "val_every", "save_every", "log_every"):
        if getattr(cfg, name) < 1:
            raise WmiError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.bn_momentum is not None and not 0.0 < cfg.bn_momentum <= 1.0:
        raise WmiError(f"--bn-momentum must be in (0, 1], got {cfg.bn_momentum}")
    if cfg.workers < 0 or cfg.val_images < 0:
        raise WmiError("--workers and --val-images must not be negative")
    if (cfg.steps is None) == (cfg.epochs is None):
        raise WmiError("give exactly one of --steps N and --epochs N")
    for name in ("steps", "epochs"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise WmiError(f"--{name} must be at least 1, got {value}")
    check_size(cfg.size, cfg.layers)


def check_config(cfg: TrainConfig) -> None:
    """Check every option of ``cfg``; raises WmiError naming the first bad one."""
    check_choice("--conv", cfg.conv, CONV_KINDS)
    check_choice("--norm", cfg.norm, (AUTO, *NORM_KINDS))
    check_choice("--amp", cfg.amp, AMP_MODES)
    check_choice("--device", cfg.device, DEVICES)
    check_choice("--perceptual", cfg.perceptual, PERCEPTUAL)
    _check_numbers(cfg)


def resolve_config(cfg: TrainConfig, device_type: str, bf16_supported: bool) -> TrainConfig:
    """Check ``cfg`` and replace its "auto"/None choices by what this run will use.

    Args:
        cfg: the configuration as given.
        device_type: "cpu" or "cuda", the device this process trains on.
        bf16_supported: whether that device runs bfloat16 (``--amp auto``).

    Raises:
        WmiError: an invalid option, named.
    """
    check_config(cfg)
    lr = cfg.lr if cfg.lr is not None else (FINETUNE_LR if cfg.finetune else LR)
    lr_final = cfg.lr_final if cfg.lr_final is not None else (lr if cfg.finetune else LR_FINAL)
    if not (lr > 0 and lr_final > 0 and math.isfinite(lr) and math.isfinite(lr_final)):
        raise WmiError("--lr and --lr-final must be positive numbers")
    amp = cfg.amp
    if amp == AUTO:
        amp = "bf16" if device_type == "cuda" and bf16_supported else "off"
    return dataclasses.replace(
        cfg,
        norm=paper_norm(cfg.conv, cfg.norm),
        lr=float(lr),
        lr_final=float(lr_final),
        amp=amp,
        device=device_type,
    )
