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
from wmi.kinds import (
    AMP_MODES,
    ARCH_LIMITS,
    ARCHS,
    AUTO,
    CONV_KINDS,
    DEVICES,
    MAX_SIDE,
    MAX_WORKERS,
    NORM_KINDS,
    PERCEPTUAL,
    SEED_MAX,
    paper_norm,
)
from wmi.registry import load

#: The most steps (and epochs, and step intervals) of a run, and images per step.
MAX_STEPS, MAX_BATCH = 10**9, 4096
#: PConv's fine-tuning stage: a constant learning rate (the other rates are on ``ARCHS``).
FINETUNE_LR = 5e-5
#: ``--conv`` of an ``--arch`` that takes one, when none is given.
DEFAULT_CONV = "weighted"
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


def _per_arch(fact: str) -> str:
    """How ``--help`` shows a default that the ``--arch`` entry decides: ``"64 (unet), ..."``."""
    shown = ((a.name, getattr(a, fact)) for a in ARCHS.entries())
    return ", ".join(f"{'= --lr' if v is None else f'{v:g}' if isinstance(v, float) else v} ({n})"
                     for n, v in shown)  # fmt: skip


def _field(
    default: Any,
    help: str,
    shown: str | None = None,
    range: tuple[float, float] | None = None,
    **kwargs: Any,
) -> Any:
    """A TrainConfig field with its one description (``help``, also ``wmi train --help``),
    for a default that depends on other options how ``--help`` shows it (``shown``), and for
    a number its ``range`` (inclusive; ``--help`` shows it, :func:`check_config` holds to it)."""
    metadata = {"help": help, "shown": shown, "range": range}
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class TrainConfig:
    """Every setting of a training run. ``wmi train`` flags map one to one onto fields.

    Each field's description is written once, as its ``help`` (:func:`field_help`), which is
    also what ``wmi train --help`` prints. Defaults are literals; the few that depend on other
    options (``lr``, ``lr_final``, ``bn_momentum``, ``amp``, ``norm``, ``device``) are left as
    None or "auto" here and resolved in one function, :func:`resolve_config`.
    """

    data: str | None = _field(
        None,
        "Required (here or in --config; --resume reads it from the run): folder of shards "
        "from `wmi data prepare` (train-*.h5, val-*.h5).",
    )
    out: str | None = _field(
        None, "Required: the run folder (RUN_DIR): config, checkpoints, metrics, previews."
    )
    arch: str = _field(
        "unet",
        "Network and its recipe (losses, optimizer, default width and masks; docs/models.md):",
    )
    conv: str | None = _field(
        None,
        "Convolution (--arch unet only).",
        shown=f"{DEFAULT_CONV} with --arch unet",
    )
    norm: str | None = _field(
        AUTO,
        "Normalization (--arch unet only): auto (the conv kind's paper norm: weighted for "
        "weighted, batch otherwise),",
    )
    masks: str | None = _field(
        None,
        "Training holes: a mask kind of `wmi masks generate` ('freeform': DeepFill v2 strokes "
        "or a box; 'box': a random rectangle, DeepFill v1's; ...) or a folder of mask PNGs "
        "(white = hole).",
        shown=_per_arch("masks"),
    )
    size: int = _field(
        256,
        "Side of the training images in pixels, a multiple of 2**layers: the shards must have "
        "been prepared with `wmi data prepare --size` of the same value.",
        range=(16, MAX_SIDE),
    )
    layers: int = _field(
        7, "U-Net encoder depth: 7 for 256², 8 for 512².", range=ARCH_LIMITS["layers"]
    )
    base_channels: int | None = _field(
        None,
        "Channels of the first layer (the paper: 64; DeepFill's cnum).",
        shown=_per_arch("width"),
        range=ARCH_LIMITS["base_channels"],
    )
    bn_momentum: float | None = _field(
        None,
        "Batch-norm running-statistics rate. Default: from the run's length, 5/steps within "
        "[0.001, 0.1]: the paper's 0.001 (decay 0.999) from 5000 steps on; a smaller value "
        "than the run allows gives broken eval-mode output, and a warning.",
        shown="auto",
        range=(0.0, 1.0),
    )
    batch_size: int = _field(
        25, "Images per step per GPU/process (the paper: 25).", range=(1, MAX_BATCH)
    )
    steps: int | None = _field(
        None,
        "Required, or --epochs: optimizer steps. --resume may raise it: the lr cosine is then "
        "re-planned from where the run stopped to --lr-final at the new end.",
        range=(1, MAX_STEPS),
    )
    epochs: int | None = _field(
        None,
        "Required, or --steps: passes over the training split (the last partial batch is dropped).",
        range=(1, MAX_STEPS),
    )
    lr: float | None = _field(
        None,
        "Initial learning rate (cosine decay to --lr-final).",
        shown=f"{_per_arch('lr')}; {FINETUNE_LR:g} with --finetune",
        range=(0.0, 1.0),
    )
    lr_final: float | None = _field(
        None,
        "Learning rate at the last step.",
        shown=f"{_per_arch('lr_final')}; = --lr with --finetune",
        range=(0.0, 1.0),
    )
    finetune: str | None = _field(
        None,
        "Start from this checkpoint (a .pt file, a run folder or a `wmi export` folder) with "
        "the encoder's batch norm frozen (PConv's second stage).",
    )
    amp: str = _field(AUTO, "Mixed precision.")
    compile: bool = _field(False, "torch.compile the network and the loss.")
    channels_last: bool = _field(False, "NHWC memory layout (faster on GPUs).")
    device: str = _field(AUTO, "Device.")
    workers: int = field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        metadata={
            "help": "Data loader worker processes per GPU/process: 4, or the CPU cores where "
            "there are fewer (more workers than cores only slow a run down).",
            "shown": None,
            "range": (0, MAX_WORKERS),
        },
    )
    val_every: int = _field(
        1000, "Validate (metrics, preview) every N steps and at the end.", range=(1, MAX_STEPS)
    )
    val_images: int = _field(
        100, "Validation images (the first of the val split).", range=(0, MAX_STEPS)
    )
    save_every: int = _field(
        1000, "Save checkpoints/last.pt every N steps and at the end.", range=(1, MAX_STEPS)
    )
    log_every: int = _field(
        10, "Write a metrics.jsonl training line every N steps.", range=(1, MAX_STEPS)
    )
    seed: int = _field(0, "Seeds weights, data order, crops and masks.", range=(0, SEED_MAX))
    vgg_weights: str | None = _field(
        None,
        "torchvision vgg16 state dict (vgg16-397923af.pth), or a folder holding it, for the "
        "perceptual and style losses; default: torchvision's cache.",
    )
    perceptual: str = _field("vgg16", "Perceptual and style loss network.")
    tensorboard: bool = _field(
        True,
        "Also write TensorBoard event files to RUN_DIR/tensorboard (when the tensorboard "
        "package is installed: the wmi extra of that name).",
    )

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


def field_help(name: str) -> str:
    """The one description of a :class:`TrainConfig` field."""
    return _FIELDS[name].metadata["help"]


def shown_default(name: str) -> str | None:
    """How ``--help`` shows a default that depends on other options (None: the value)."""
    return _FIELDS[name].metadata["shown"]


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


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
        # an option added after the run was saved: the run had its default (no "arch": unet)
        old = saved.get(name, default(name) if name in _FIELDS else None)
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


def check_size(
    size: int,
    layers: int | None,
    batch_size: int = 1,
    norms: Iterable[str] = (),
    arch: str = "unet",
) -> None:
    """The crop side must be a positive multiple of ``2**layers`` (the U-Net halves it
    ``layers`` times), and big enough that each of ``norms`` gets the values per channel it
    needs at ``batch_size``; with ``layers`` None (an ``--arch`` without the U-Net's options) a
    multiple of the arch network's ``multiple``. The error names a size that works.

    Raises:
        WmiError: ``--size`` is not such a multiple, or too small for ``--batch-size``.
    """
    from wmi.models.unet import check_training_size  # torch, only when a config is checked

    if layers is not None:
        check_training_size(size, layers, batch_size, norms)
        return
    multiple = int(load(ARCHS[arch].network).multiple)
    if size < multiple or size % multiple:
        near = max(multiple, round(size / multiple) * multiple)
        raise WmiError(
            f"--size {size} is not a multiple of {multiple} (--arch {arch}); the nearest is {near}"
        )


def field_range(name: str) -> tuple[float, float] | None:
    """The inclusive range of the numeric TrainConfig field ``name`` (None: not a number)."""
    return _FIELDS[name].metadata.get("range")


def _check_numbers(cfg: TrainConfig) -> None:
    for name in ("layers", "base_channels", "batch_size", "val_every", "save_every", "log_every"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
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
    for name in field_names():  # every number, also those of --config files and --resume
        bounds, value = field_range(name), getattr(cfg, name)
        if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
            low, high = (f"{b:,}" if isinstance(b, int) else f"{b:g}" for b in bounds)
            raise WmiError(f"--{name.replace('_', '-')} must be from {low} to {high}, got {value}")
    if ARCHS[cfg.arch].takes_conv:
        norm = network_options(cfg)["norm"]
        check_size(cfg.size, cfg.layers, cfg.batch_size, [norm])
    else:
        check_size(cfg.size, None, arch=cfg.arch)


def check_config(cfg: TrainConfig) -> None:
    """Check every option of ``cfg``; raises WmiError naming the first bad one."""
    check_choice("--arch", cfg.arch, ARCHS)
    if ARCHS[cfg.arch].takes_conv:
        check_choice("--conv", cfg.conv or DEFAULT_CONV, CONV_KINDS)
        check_choice("--norm", cfg.norm or AUTO, (AUTO, *NORM_KINDS))
    else:
        _check_unet_options(cfg)
    check_choice("--amp", cfg.amp, AMP_MODES)
    check_choice("--device", cfg.device, DEVICES)
    check_choice("--perceptual", cfg.perceptual, PERCEPTUAL)
    _check_numbers(cfg)


def network_options(cfg: TrainConfig) -> dict[str, Any]:
    """``conv``, ``norm`` and ``base_channels`` as the run uses them: given, or the
    ``--arch``'s (conv and norm None where the arch takes none)."""
    arch = ARCHS[cfg.arch]
    conv = (cfg.conv or DEFAULT_CONV) if arch.takes_conv else None
    norm = paper_norm(conv, cfg.norm or AUTO) if conv else None
    return {"conv": conv, "norm": norm, "base_channels": cfg.base_channels or arch.width}


def _check_unet_options(cfg: TrainConfig) -> None:
    """An ``--arch`` without the U-Net's options refuses them when given (a run would
    otherwise record a conv it never used)."""
    for flag, given in (
        ("--conv", cfg.conv is not None),
        ("--norm", cfg.norm not in (None, AUTO)),
        ("--finetune", cfg.finetune is not None),
    ):
        if given:
            raise WmiError(f"{flag} applies to --arch unet only, not --arch {cfg.arch}")


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
    arch = ARCHS[cfg.arch]
    lr = cfg.lr if cfg.lr is not None else (FINETUNE_LR if cfg.finetune else arch.lr)
    if cfg.lr_final is not None:
        lr_final = cfg.lr_final
    else:
        lr_final = lr if cfg.finetune or arch.lr_final is None else arch.lr_final
    if not (lr > 0 and lr_final > 0 and math.isfinite(lr) and math.isfinite(lr_final)):
        raise WmiError("--lr and --lr-final must be positive numbers")
    amp = cfg.amp
    if amp == AUTO:
        amp = "bf16" if device_type == "cuda" and bf16_supported else "off"
    return dataclasses.replace(
        cfg,
        **network_options(cfg),
        masks=cfg.masks or arch.masks,
        perceptual=cfg.perceptual if arch.takes_conv else "none",  # DeepFill's losses have none
        lr=float(lr),
        lr_final=float(lr_final),
        amp=amp,
        device=device_type,
    )
