"""Training: the paper's recipe for every network of Table I, on one device or many.

``train(TrainConfig(...))`` is what ``wmi train`` runs. The loop is short on purpose; the
helpers around it do the bookkeeping. One run lives in one folder, RUN_DIR::

    config.json              the effective configuration (file defaults + flags, autos resolved)
    checkpoints/last.pt      everything needed to continue exactly (see save_state)
    checkpoints/best.pt      the same, at the validation with the lowest hole L1
    metrics.jsonl            one JSON object per log line: loss terms, lr, images/s; validations
    train.log                the human-readable log
    previews/step-NNNNNNNN.png   masked input | output | composite | ground truth, per validation

Recipe (REFERENCE.md §4): Adam β = (0.9, 0.999), ε = 1e-8; the learning rate follows a cosine
from ``lr`` (5e-4) down to ``lr_final`` (1e-5) over the run (the paper says only "decreased
gradually"; a cosine spends longer near both ends than a linear ramp). ``finetune`` is PConv's
second stage: start from a trained checkpoint at a constant 5e-5 with the encoder's batch-norm
layers frozen (running statistics used, affine parameters fixed).

Multi-GPU: under ``torchrun`` the model is wrapped in DistributedDataParallel; each rank
normalizes with the statistics of its own batch of ``batch_size`` (the paper's batch of 25 per
GPU, so normalization behaves as in the paper whatever the GPU count) and rank 0's running
statistics are broadcast to the others at every forward (DDP's ``broadcast_buffers``).
docs/training.md explains the choice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from wmi.checkpoint import build_model, load_checkpoint, model_config, save_checkpoint, unwrap
from wmi.conv import CONV_LAYERS
from wmi.device import resolve_device
from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.losses import build_loss
from wmi.norm import NORM_LAYERS
from wmi.unet import InpaintingUNet

CONV_KINDS = tuple(sorted(CONV_LAYERS))
NORM_KINDS = ("auto", *sorted(NORM_LAYERS))
#: The normalization each network of the paper uses when ``norm`` is "auto".
DEFAULT_NORM = {"weighted": "weighted", "partial": "batch", "gated": "batch", "plain": "batch"}
AMP_MODES = ("auto", "bf16", "fp16", "off")
DEVICES = ("auto", "cpu", "cuda")
PERCEPTUAL = ("vgg16", "none")
LR, LR_FINAL, FINETUNE_LR = 5e-4, 1e-5, 5e-5
#: What a resumed run may change: how it runs, not what it computes.
RESUME_MUTABLE = frozenset(
    {"data", "out", "workers", "val_every", "val_images", "save_every", "log_every", "device"}
)
#: Files and folders of a run; --overwrite removes exactly these.
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "train.log", "previews")


@dataclass
class TrainConfig:
    """Every setting of a training run. ``wmi train`` flags map one to one onto fields.

    Attributes:
        data: folder of HDF5 shards (``train-*.h5``, ``val-*.h5``) from ``wmi data prepare``.
        out: the run folder (RUN_DIR).
        conv: "weighted" (WConv), "partial" (PConv), "gated" (DeepFill v2) or "plain".
        norm: "auto" (weighted for weighted conv, else batch), "weighted", "batch",
            "instance" or "none".
        masks: "freeform" (DeepFill v2 training masks) or a folder of mask PNGs (white = hole).
        size: training crop side in pixels; a multiple of ``2**layers``.
        layers: encoder depth (7 for 256², 8 for 512²).
        base_channels: channels of the first layer (64 in the paper).
        bn_momentum: running-statistics rate of the batch norms; the paper's decay 0.999 is
            0.001, which needs thousands of steps to settle: short runs use more (0.1).
        batch_size: images per step per process (25 in the paper).
        steps: optimizer steps; exactly one of ``steps`` and ``epochs`` is set.
        epochs: passes over the training split (the last partial batch is dropped).
        lr: initial learning rate; None = 5e-4, or 5e-5 with ``finetune``.
        lr_final: learning rate at the last step; None = 1e-5, or ``lr`` with ``finetune``.
        finetune: checkpoint to start from, PConv's second stage (encoder batch norm frozen).
        amp: "bf16", "fp16" (with a GradScaler), "off", or "auto" (bf16 on a CUDA GPU that
            supports it, off otherwise).
        compile: run the network and the loss through ``torch.compile``.
        channels_last: NHWC memory layout (faster convolutions on tensor-core GPUs).
        device: "auto" (cuda if available), "cpu" or "cuda".
        workers: DataLoader worker processes per training process.
        val_every: validate (Table I metrics, preview) every this many steps, and at the end.
        val_images: validation images used (the first ones of the val split).
        save_every: write ``checkpoints/last.pt`` every this many steps, and at the end.
        log_every: write a ``metrics.jsonl`` training line every this many steps.
        seed: seeds the weights, the data order, the crops and the masks.
        vgg_weights: torchvision vgg16 state dict; None = torchvision's cache.
        perceptual: "vgg16" (the paper's loss) or "none" (no perceptual and style terms).
    """

    data: str | None = None
    out: str | None = None
    conv: str = "weighted"
    norm: str = "auto"
    masks: str = "freeform"
    size: int = 256
    layers: int = 7
    base_channels: int = 64
    bn_momentum: float = 0.001
    batch_size: int = 25
    steps: int | None = None
    epochs: int | None = None
    lr: float | None = None
    lr_final: float | None = None
    finetune: str | None = None
    amp: str = "auto"
    compile: bool = False
    channels_last: bool = False
    device: str = "auto"
    workers: int = 4
    val_every: int = 1000
    val_images: int = 100
    save_every: int = 1000
    log_every: int = 10
    seed: int = 0
    vgg_weights: str | None = None
    perceptual: str = "vgg16"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON and ``weights_only`` safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build a config from a dict, checking names and types.

        Keys may use ``-`` or ``_`` (``batch-size`` or ``batch_size``).

        Raises:
            WmiError: an unknown key or a value of the wrong type, naming ``source``.
        """
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in types:
                raise WmiError(f"{source}: unknown option {key!r}")
            clean[name] = _coerce(value, types[name], f"{source}: {key}")
        return cls(**clean)


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


def make_config(
    config_file: str | os.PathLike[str] | None, overrides: dict[str, Any]
) -> TrainConfig:
    """The effective configuration: the file's values over the defaults, flags over both.

    Args:
        config_file: a TOML or JSON file, or None.
        overrides: field -> value from the command line; None values mean "not given".
    """
    base = TrainConfig()
    if config_file is not None:
        base = TrainConfig.from_dict(read_config_file(config_file), f"--config {config_file}")
    return _override(base, {k: v for k, v in overrides.items() if v is not None})


def _override(base: TrainConfig, given: dict[str, Any]) -> TrainConfig:
    """``base`` with the fields in ``given`` replaced (names and types checked)."""
    checked = TrainConfig.from_dict(given, "option")
    names = [k.replace("-", "_") for k in given]
    return dataclasses.replace(base, **{k: getattr(checked, k) for k in names})


def resume_config(run_dir: str | os.PathLike[str], overrides: dict[str, Any]) -> TrainConfig:
    """The configuration of the run in ``run_dir``, for ``--resume``.

    Only the options in :data:`RESUME_MUTABLE` (data location, workers, validation and save
    intervals, device) may differ from the saved ones.

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
    given = {k: v for k, v in overrides.items() if v is not None}
    changed = TrainConfig.from_dict(given, "option")
    for key in given:
        name = key.replace("-", "_")
        new, old = getattr(changed, name), getattr(saved, name)
        if new != old and name not in RESUME_MUTABLE:
            raise WmiError(
                f"--resume continues the run as it was configured: --{name.replace('_', '-')} "
                f"was {old!r}, now {new!r} (start a new run, or --finetune from its checkpoint)"
            )
    return _override(saved, given | {"out": str(run_dir)})


def resolve_config(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """Check ``cfg`` and replace its "auto"/None choices by what this run will use.

    Raises:
        WmiError: an invalid option, named.
    """
    _choice("--conv", cfg.conv, CONV_KINDS)
    _choice("--norm", cfg.norm, NORM_KINDS)
    _choice("--amp", cfg.amp, AMP_MODES)
    _choice("--device", cfg.device, DEVICES)
    _choice("--perceptual", cfg.perceptual, PERCEPTUAL)
    for name in ("layers", "base_channels", "batch_size", "val_every", "save_every", "log_every"):
        if getattr(cfg, name) < 1:
            raise WmiError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 < cfg.bn_momentum <= 1.0:
        raise WmiError(f"--bn-momentum must be in (0, 1], got {cfg.bn_momentum}")
    if cfg.workers < 0 or cfg.val_images < 0:
        raise WmiError("--workers and --val-images must not be negative")
    if (cfg.steps is None) == (cfg.epochs is None):
        raise WmiError("give exactly one of --steps N and --epochs N")
    if (cfg.steps or 1) < 1 or (cfg.epochs or 1) < 1:
        raise WmiError("--steps and --epochs must be at least 1")
    multiple = 2**cfg.layers
    if cfg.size < multiple or cfg.size % multiple:
        nearest = max(multiple, round(cfg.size / multiple) * multiple)
        raise WmiError(
            f"--size {cfg.size} is not a multiple of 2**layers = {multiple} (--layers "
            f"{cfg.layers}); use --size {nearest}"
        )
    lr = cfg.lr if cfg.lr is not None else (FINETUNE_LR if cfg.finetune else LR)
    lr_final = cfg.lr_final if cfg.lr_final is not None else (lr if cfg.finetune else LR_FINAL)
    if not (lr > 0 and lr_final > 0 and math.isfinite(lr) and math.isfinite(lr_final)):
        raise WmiError("--lr and --lr-final must be positive numbers")
    amp = cfg.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    return dataclasses.replace(
        cfg,
        norm=DEFAULT_NORM[cfg.conv] if cfg.norm == "auto" else cfg.norm,
        lr=float(lr),
        lr_final=float(lr_final),
        amp=amp,
        device=device.type,
    )


def _choice(option: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise WmiError(f"{option} {value!r}: expected one of {', '.join(allowed)}")


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → cuda if available else cpu; on CUDA, this rank's GPU (under torchrun)."""
    _choice("--device", name, DEVICES)
    device = resolve_device(name)
    return torch.device("cuda", local_rank) if device.type == "cuda" else device


def lr_at(step: int, total: int, lr: float, lr_final: float) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr_final`` at step ``total - 1``."""
    t = step / max(1, total - 1)
    return lr_final + (lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


# --------------------------------------------------------------------------------------------
# Data


class EpochSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way through, for exact resumption.

    The order of epoch ``e`` is ``DistributedSampler``'s shuffle for ``seed + e`` (the same on
    every rank, each taking every ``world``-th index); ``set_epoch(e, skip)`` drops the first
    ``skip`` indices of this rank's share, i.e. the batches already trained on.
    """

    def __init__(self, dataset: Dataset, world: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def open_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The train split (augmented) and the val split (fixed crops and seeded masks) of ``cfg.data``.

    Raises:
        WmiError: missing data folder, no train shards, shards of another size, bad masks.
    """
    if cfg.data is None:
        raise WmiError("--data is required: a folder of shards from wmi data prepare")
    data = Path(cfg.data)
    if not data.is_dir():
        raise WmiError(f"--data {data}: no such directory")
    from wmi.data import InpaintingDataset, check_shards, find_shards

    shards = find_shards(data, "train")
    if not shards:
        raise WmiError(
            f"--data {data}: no training shards (train-*.h5); create them with wmi data prepare"
        )
    check_shards(shards, cfg.size, exact=True)
    train_set = InpaintingDataset(shards, cfg.masks, size=cfg.size, augment=True, seed=cfg.seed)
    val_shards = find_shards(data, "val")
    val_set = None
    if val_shards:
        check_shards(val_shards, cfg.size, exact=True)
        # augment=False and epoch 0 forever: the same crops and masks at every validation.
        val_set = InpaintingDataset(
            val_shards, cfg.masks, size=cfg.size, augment=False, seed=cfg.seed
        )
    return train_set, val_set


# --------------------------------------------------------------------------------------------
# Model, optimizer, checkpoints


def make_model(cfg: TrainConfig) -> InpaintingUNet:
    """The network of ``cfg``, initialized from ``cfg.seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        norm = DEFAULT_NORM.get(cfg.conv, cfg.norm) if cfg.norm == "auto" else cfg.norm
        return InpaintingUNet(cfg.conv, norm, cfg.layers, 3, cfg.base_channels, cfg.bn_momentum)


def freeze_encoder_norms(model: InpaintingUNet) -> None:
    """PConv fine-tuning: the encoder's normalization layers keep their statistics and weights."""
    for block in model.encoder:
        block.norm.requires_grad_(False)


def set_train_mode(model: InpaintingUNet, frozen_encoder_norms: bool) -> None:
    """``model.train()``, except that frozen encoder norms stay in eval mode (running stats)."""
    model.train()
    if frozen_encoder_norms:
        for block in model.encoder:
            block.norm.eval()


def load_finetune_weights(model: InpaintingUNet, path: str) -> None:
    """Load the weights of a trained checkpoint of the same architecture into ``model``.

    Raises:
        WmiError: unreadable or foreign checkpoint, or another architecture.
    """
    payload = load_checkpoint(path)
    try:
        source = build_model(payload)
    except WmiError as exc:
        raise WmiError(f"--finetune {path}: {exc}") from None
    # the running-statistics rate is a training setting, not part of the architecture
    want, have = model_config(model), model_config(source)
    want.pop("norm_momentum"), have.pop("norm_momentum")
    if want != have:
        diff = ", ".join(f"{k}={have[k]} (this run: {want[k]})" for k in want if want[k] != have[k])
        raise WmiError(f"--finetune {path}: the checkpoint's network differs: {diff}")
    model.load_state_dict(source.state_dict())


def save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cfg: TrainConfig,
    total_steps: int,
    step: int,
    epoch: int,
    position: int,
    best: dict[str, Any] | None,
) -> None:
    """Write a training checkpoint atomically (``weights_only``-loadable).

    Holds the model, optimizer, scheduler (its parameters: the lr is a function of the step),
    GradScaler, step, the loader position (epoch and batches consumed in it), the RNG states,
    the effective config and the best validation so far.
    """
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_checkpoint(
        path,
        unwrap(model),
        optimizer=optimizer.state_dict(),
        scheduler={
            "kind": "cosine",
            "lr": cfg.lr,
            "lr_final": cfg.lr_final,
            "total_steps": total_steps,
        },
        scaler=scaler.state_dict(),
        step=step,
        loader={"epoch": epoch, "position": position},
        rng=rng,
        config=cfg.to_dict(),
        best=best,
    )


TRAINING_KEYS = ("optimizer", "scheduler", "scaler", "step", "loader", "rng", "config")


def load_state(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Read ``last.pt`` for ``--resume`` and check that it belongs to a run configured as ``cfg``.

    Raises:
        WmiError: corrupt or foreign file, not a training checkpoint, or another configuration.
    """
    payload = load_checkpoint(path)
    missing = [k for k in TRAINING_KEYS if k not in payload]
    if missing:
        raise WmiError(f"{path}: not a training checkpoint (no {', '.join(missing)})")
    saved = payload["config"]
    for key, value in cfg.to_dict().items():
        if key not in RESUME_MUTABLE and saved.get(key) != value:
            raise WmiError(
                f"{path}: the run was configured with {key}={saved.get(key)!r}, "
                f"not {value!r}; --resume keeps the configuration"
            )
    return payload


# --------------------------------------------------------------------------------------------
# Validation


@torch.no_grad()
def validate(
    model: InpaintingUNet,
    loader: DataLoader,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    preview_count: int = 4,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Table I metrics averaged over the validation images, and preview tiles.

    Images with an empty hole have no hole metrics and are skipped.

    Returns:
        ``(metrics, tiles)``: metric -> mean over images (plus ``images``, the count), and for
        the first ``preview_count`` images four tiles each: masked input (holes white),
        output, composite, ground truth; float ``(H, W, 3)`` in [0, 1].
    """
    from wmi.metrics import hole_metrics  # the Table I definitions of wmi eval

    model.eval()
    sums: dict[str, float] = {}
    count = 0
    tiles: list[np.ndarray] = []
    for image, mask in loader:
        image, mask = _to_device(image, mask, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=bool(amp_dtype)):
            output = model(image, mask)
        output = output.float().clamp(0, 1)
        comp = mask * image + (1 - mask) * output
        for i in range(image.shape[0]):
            gt = image[i].permute(1, 2, 0).cpu().numpy()
            pred = output[i].permute(1, 2, 0).cpu().numpy()
            hole = mask[i, 0].cpu().numpy() < 0.5
            if len(tiles) < 4 * preview_count:
                shown = np.where(hole[..., None], 1.0, gt)
                tiles += [shown, pred, comp[i].permute(1, 2, 0).cpu().numpy(), gt]
            if not hole.any():
                continue
            for key, value in hole_metrics(pred, gt, hole).items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
    metrics = {k: v / count for k, v in sums.items()} if count else {}
    return {**metrics, "images": count}, tiles


def _to_device(
    image: Tensor, mask: Tensor, device: torch.device, channels_last: bool
) -> tuple[Tensor, Tensor]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image = image.to(device, non_blocking=True).contiguous(memory_format=fmt)
    mask = mask.to(device, non_blocking=True).contiguous(memory_format=fmt)
    return image, mask


# --------------------------------------------------------------------------------------------
# One training step (shared with the benchmark)


def amp_dtype_of(amp: str) -> torch.dtype | None:
    """``"bf16"`` → bfloat16, ``"fp16"`` → float16, ``"off"`` → None."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]


def forward_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    image: Tensor,
    mask: Tensor,
    amp_dtype: torch.dtype | None,
) -> dict[str, Tensor]:
    """Forward pass and loss terms under autocast (the loss itself works in float32)."""
    with torch.autocast(
        image.device.type, dtype=amp_dtype or torch.float32, enabled=bool(amp_dtype)
    ):
        output = model(image, mask)
        return loss_fn(output, image, mask)


def backward_step(
    total: Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> None:
    """Backward pass and optimizer step (the scaler is a no-op unless fp16)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()


# --------------------------------------------------------------------------------------------
# Bookkeeping: distributed setup, run folder, log, Ctrl-C


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_name: str) -> _Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not tdist.is_initialized():
        cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
        if cuda:
            torch.cuda.set_device(local_rank)
        tdist.init_process_group("nccl" if cuda else "gloo")
        owns = True
    return _Dist(rank, world, local_rank, owns)


def _all_ranks_ok(dist: _Dist, error: BaseException | None, device: torch.device) -> None:
    """Raise on every rank if any rank failed (so none waits forever in a collective)."""
    if dist.world > 1:
        flag = torch.tensor([0.0 if error is None else 1.0], device=device)
        tdist.all_reduce(flag)
        if error is None and flag.item() > 0:
            raise WmiError("another training process failed; see its error")
    if error is not None:
        raise error


def check_run_dir(out: str | None, resume: bool, overwrite: bool) -> Path:
    """Check (without writing) that RUN_DIR can hold this run.

    Raises:
        WmiError: no --out, --out is a file, a run is already there (without --resume or
            --overwrite), or --resume with no checkpoint to continue from.
    """
    if out is None:
        raise WmiError("--out is required: the folder of this run (RUN_DIR)")
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise WmiError(f"--out {run_dir}: is a file, not a folder")
    if resume and overwrite:
        raise WmiError("--resume and --overwrite exclude each other")
    if resume:
        if not (run_dir / "checkpoints" / "last.pt").is_file():
            raise WmiError(f"--resume: {run_dir} holds no checkpoints/last.pt to continue from")
    elif not overwrite and any((run_dir / name).exists() for name in RUN_FILES):
        raise WmiError(
            f"--out {run_dir}: already holds a run; pass --resume to continue it or "
            "--overwrite to start over"
        )
    return run_dir


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Make RUN_DIR writable and, with --overwrite, remove the previous run's files (only those).

    Raises:
        WmiError: RUN_DIR cannot be created or written.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise WmiError(f"--out {run_dir}: cannot write there ({exc.strerror or exc})") from None
    if overwrite:
        for name in RUN_FILES:
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics lines written after the checkpoint a run resumes from (they are redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except ValueError:
            continue  # a line cut short by a crash
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")


class _RunLog:
    """train.log, metrics.jsonl and stderr messages; silent on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool, echo: bool) -> None:
        self.enabled, self.echo = enabled, echo
        self.log_path, self.metrics_path = run_dir / "train.log", run_dir / "metrics.jsonl"
        self.console = None
        if enabled and echo:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {message}\n")
        if self.console is not None:
            self.console.print(message, markup=False)

    def metrics(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, allow_nan=True) + "\n")


class _GracefulStop:
    """First Ctrl-C (SIGINT) or SIGTERM: stop after the current step, which then saves last.pt.

    torchrun passes the signal it got on to its workers (and kills them after a grace
    period); batch schedulers send SIGTERM before preemption. A second signal acts at once
    (KeyboardInterrupt or termination), keeping the last saved checkpoint. Only installed in
    the main thread (Python delivers signals there).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _GracefulStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader worker init: Ctrl-C reaches the whole process group, but only the main
    process should act on it (a worker that died of it would abort the run unsaved)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _progress(enabled: bool, total: int, start: int) -> Any:
    """A rich progress bar on stderr showing step, loss and images/s (or a no-op stand-in)."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("step"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[speed]} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    progress.start()
    progress.add_task("train", total=total, completed=start, loss="-", speed="-")
    return progress


# --------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        run_dir: the run folder.
        step: steps completed (the step of last.pt).
        status: "done" or "interrupted" (Ctrl-C; last.pt saved).
        best: the best validation (``{"step", "l1", ...}``) or None.
        last_val: the last validation metrics or None.
        config: the effective configuration.
        rank: this process's rank (0 without torchrun); only rank 0 logs and saves.
    """

    run_dir: Path
    step: int
    status: str
    best: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    rank: int = 0


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    progress: bool = True,
    echo: bool = True,
) -> TrainResult:
    """Train an inpainting network as configured; see the module docstring for RUN_DIR.

    Args:
        cfg: the configuration (``resume_config`` builds it for ``--resume``).
        resume: continue ``cfg.out`` from ``checkpoints/last.pt``, exactly.
        overwrite: replace the run in ``cfg.out`` (its files only).
        train_set, val_set: datasets of ``(image (3, H, W) in [0, 1], mask (1, H, W) validity)``
            to use instead of the shards of ``cfg.data`` (tests, custom data).
        progress: show a progress bar on stderr.
        echo: print log lines to stderr (they always go to train.log).

    Returns:
        :class:`TrainResult`.

    Raises:
        WmiError: a bad option, data, checkpoint or RUN_DIR (nothing of an old run is changed),
            or a non-finite loss (the step is named; the last good checkpoint is kept).
    """
    dist = _setup_distributed(cfg.device)
    try:
        return _train(cfg, dist, resume, overwrite, train_set, val_set, progress, echo)
    finally:
        if dist.owns_group:
            tdist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    dist: _Dist,
    resume: bool,
    overwrite: bool,
    train_set: Dataset | None,
    val_set: Dataset | None,
    progress: bool,
    echo: bool,
) -> TrainResult:
    # ---- everything that can fail on the user's input, before anything is written ----
    device = pick_device(cfg.device, dist.local_rank)
    cfg = resolve_config(cfg, device)
    run_dir = check_run_dir(cfg.out, resume, overwrite)
    if train_set is None:
        train_set, val_set = open_datasets(cfg)
    per_step = cfg.batch_size * dist.world
    if len(train_set) < per_step:
        raise WmiError(
            f"the training split has {len(train_set)} images, fewer than one step needs "
            f"({cfg.batch_size} per process × {dist.world})"
        )
    loss_fn = build_loss(cfg.perceptual, cfg.vgg_weights).to(device)
    model = make_model(cfg)
    if cfg.finetune:
        if not resume:  # a resumed fine-tuning run gets its weights from last.pt
            load_finetune_weights(model, cfg.finetune)
        freeze_encoder_norms(model)
    state = load_state(run_dir / "checkpoints" / "last.pt", cfg) if resume else None

    sampler = EpochSampler(train_set, dist.world, dist.rank, cfg.seed)
    steps_per_epoch = len(sampler) // cfg.batch_size
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch

    error = None
    if dist.main:
        try:
            prepare_run_dir(run_dir, overwrite)
        except WmiError as exc:
            error = exc
    _all_ranks_ok(dist, error, device)
    log = _RunLog(run_dir, dist.main, echo)

    # ---- model, optimizer, state ----
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
        loss_fn.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    step, epoch, position = 0, 0, 0
    best: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None
    if state is not None:
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best = int(state["step"]), state.get("best")
        epoch, position = int(state["loader"]["epoch"]), int(state["loader"]["position"])
        torch.set_rng_state(state["rng"]["torch"])
        cuda_rng = state["rng"].get("cuda")
        if device.type == "cuda" and cuda_rng and len(cuda_rng) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_rng)
        if dist.main:
            _truncate_metrics(log.metrics_path, step)
        del state
    elif dist.main:
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")
    bare = model
    set_train_mode(bare, bool(cfg.finetune))
    if dist.world > 1:
        # broadcast_buffers: rank 0's BN running statistics reach every rank at each forward.
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.compile:
        model = torch.compile(model)
        loss_fn = torch.compile(loss_fn)

    loader = DataLoader(
        train_set,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=cfg.workers > 0,
        worker_init_fn=_ignore_stop_signals,
        # Worker seeds come from here, not from the global RNG (the items seed themselves).
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    val_loader = None
    if val_set is not None and cfg.val_images > 0 and dist.main:
        val_subset = Subset(val_set, range(min(cfg.val_images, len(val_set))))
        val_loader = DataLoader(val_subset, batch_size=cfg.batch_size, num_workers=0)

    amp_dtype = amp_dtype_of(cfg.amp)
    terms_names = unwrap(loss_fn).terms
    log.info(
        f"{'resuming at' if step else 'training from'} step {step} of {total_steps}: "
        f"conv={cfg.conv} norm={cfg.norm} layers={cfg.layers} size={cfg.size} "
        f"batch={cfg.batch_size}×{dist.world} device={device} amp={cfg.amp} "
        f"params={sum(p.numel() for p in bare.parameters()):,} lr {cfg.lr:g}→{cfg.lr_final:g}"
    )
    if cfg.perceptual == "none":
        log.info("perceptual none: training WITHOUT the VGG16 perceptual and style terms")
    if cfg.finetune:
        log.info(f"fine-tuning {cfg.finetune}: encoder batch norm frozen")
    if val_loader is None and dist.main:
        log.info("no validation split (val-*.h5) or --val-images 0: validation skipped")

    def checkpoint(name: str) -> None:
        if dist.main:
            path = run_dir / "checkpoints" / name
            save_state(
                path, model, optimizer, scaler, cfg, total_steps, step, epoch, position, best
            )

    def run_validation() -> None:
        nonlocal best, last_val
        if val_loader is None:
            return
        metrics, tiles = validate(bare, val_loader, device, amp_dtype, cfg.channels_last)
        last_val = {"step": step, **metrics}
        set_train_mode(bare, bool(cfg.finetune))
        log.metrics({"step": step, "kind": "val", **metrics})
        log.info(f"step {step} validation: " + _fmt(metrics))
        if tiles:
            from wmi.preview import save_contact_sheet

            labels = ["input", "output", "composite", "truth"] * (len(tiles) // 4)
            save_contact_sheet(
                run_dir / "previews" / f"step-{step:08d}.png", tiles, columns=4, labels=labels
            )
        if "l1" in metrics and (best is None or metrics["l1"] < best["l1"]):
            best = {"step": step, **metrics}
            checkpoint("best.pt")

    bar = _progress(progress and dist.main, total_steps, step)
    batches: Iterator | None = None
    window = {"t": time.perf_counter(), "steps": 0, "sums": np.zeros(len(terms_names))}
    status = "done"
    try:
        with _GracefulStop() as stop:
            while step < total_steps:
                # The loader position is part of the state: epoch e, batch `position` in it.
                if position == steps_per_epoch:
                    epoch, position, batches = epoch + 1, 0, None
                if batches is None:
                    sampler.set_epoch(epoch, skip=position * cfg.batch_size)
                    if hasattr(train_set, "set_epoch"):
                        train_set.set_epoch(epoch)
                    batches = iter(loader)
                image, mask = _to_device(*next(batches), device, cfg.channels_last)
                lr = lr_at(step, total_steps, cfg.lr, cfg.lr_final)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                terms = forward_loss(model, loss_fn, image, mask, amp_dtype)
                # One sync per step: the loss terms (averaged over ranks) for the log, the
                # NaN check before any weight changes, and whether any rank got Ctrl-C.
                stats = torch.stack([terms[k].detach().float() for k in terms_names])
                stats = torch.cat([stats, stats.new_tensor([float(stop.requested)])])
                if dist.world > 1:
                    tdist.all_reduce(stats)
                    stats[:-1] /= dist.world
                values = stats.tolist()
                if not math.isfinite(values[0]):
                    last = run_dir / "checkpoints" / "last.pt"
                    kept = f"; {last} keeps the last good state" if last.exists() else ""
                    raise WmiError(
                        f"loss is {values[0]} at step {step + 1}: training stopped{kept}"
                    )
                backward_step(terms["total"], optimizer, scaler)
                step, position = step + 1, position + 1

                window["steps"] += 1
                window["sums"] += np.asarray(values[:-1])
                if step % cfg.log_every == 0 or step == total_steps:
                    elapsed = time.perf_counter() - window["t"]
                    speed = window["steps"] * per_step / max(elapsed, 1e-9)
                    means = window["sums"] / window["steps"]
                    record = {"step": step, "kind": "train", "epoch": epoch, "lr": lr}
                    record["images_per_s"] = speed
                    record.update(zip(terms_names, means.tolist(), strict=True))
                    log.metrics(record)
                    if bar is not None:
                        bar.update(0, completed=step, loss=f"{means[0]:.4f}", speed=f"{speed:.1f}")
                    window = {"t": time.perf_counter(), "steps": 0, "sums": np.zeros_like(means)}
                elif bar is not None:
                    bar.update(0, completed=step)
                paused = time.perf_counter()  # validation and saving do not count as speed
                if dist.main and (step % cfg.val_every == 0 or step == total_steps):
                    run_validation()
                stopping = values[-1] > 0  # Ctrl-C/SIGTERM on some rank: all stop here
                if step % cfg.save_every == 0 or step == total_steps or stopping:
                    checkpoint("last.pt")
                window["t"] += time.perf_counter() - paused
                if stopping:
                    status = "interrupted"
                    log.info(f"interrupted at step {step}: saved checkpoints/last.pt")
                    break
    finally:
        if bar is not None:
            bar.stop()
    if status == "done":
        log.info(f"finished {step} steps; checkpoints in {run_dir / 'checkpoints'}")
    return TrainResult(run_dir, step, status, best, last_val, cfg.to_dict(), dist.rank)


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


# --------------------------------------------------------------------------------------------
# Benchmark


#: Benchmark modes: name -> (amp, channels_last, compile).
BENCH_MODES = {
    "fp32": ("off", False, False),
    "bf16+cl": ("bf16", True, False),
    "bf16+cl+compile": ("bf16", True, True),
}


def benchmark_train(
    device: torch.device | str = "cpu",
    size: int = 256,
    batch_size: int = 25,
    layers: int = 7,
    convs: Sequence[str] = ("weighted", "plain"),
    modes: Sequence[str] = ("fp32", "bf16+cl", "bf16+cl+compile"),
    perceptual: bool = True,
    rounds: int = 5,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Training throughput: images/s of full training steps, per conv kind and precision mode.

    One step is what :func:`train` does per batch: forward under autocast, the PConv loss
    (with a randomly initialized VGG16 when ``perceptual``: the speed does not depend on the
    weights), backward, Adam. Variants are timed round-robin in the same run (median of
    ``rounds``), so the ratios are fair even on a busy machine; compile time is in the warm-up.

    Args:
        device: where to run.
        size, batch_size, layers: the training shape (the paper: 256, 25, 7).
        convs: conv kinds, each with its paper normalization; "plain" is the baseline.
        modes: keys of :data:`BENCH_MODES`: "fp32", "bf16+cl" (bf16 autocast + channels_last),
            "bf16+cl+compile".
        perceptual: include the VGG16 perceptual and style terms.
        rounds: timed steps per variant.
        warmup: untimed steps per variant first.
        seed: seeds the data and weights.

    Returns:
        ``{"device", "device_name", "torch", "size", "batch_size", "layers", "perceptual",
        "rows": [{"conv", "norm", "mode", "ms_per_step", "images_per_s", "speedup_vs_fp32",
        "ratio_vs_plain"}]}``; the ratios are None when their baseline was not measured.
    """
    from wmi.bench import interleaved_medians
    from wmi.device import device_name
    from wmi.losses import InpaintingLoss, VGG16Features

    device = torch.device(device)
    for mode in modes:
        _choice("mode", mode, tuple(BENCH_MODES))
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch_size, 3, size, size, generator=gen)
    mask = torch.ones(batch_size, 1, size, size)
    for i in range(batch_size):  # boxes of a quarter to a half of the side, like the paper's
        h, w = (int(v) for v in torch.randint(size // 4, size // 2 + 1, (2,), generator=gen))
        top, left = (int(v) for v in torch.randint(0, size - max(h, w) + 1, (2,), generator=gen))
        mask[i, :, top : top + h, left : left + w] = 0

    steps = {}
    for conv in convs:
        for mode in modes:
            amp, channels_last, compiled = BENCH_MODES[mode]
            cfg = TrainConfig(conv=conv, layers=layers, size=size, seed=seed)
            model = make_model(cfg).to(device)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                features = VGG16Features() if perceptual else None
            loss_fn = InpaintingLoss(features).to(device)
            x, m = _to_device(image, mask, device, channels_last)
            if channels_last:
                model.to(memory_format=torch.channels_last)
                loss_fn.to(memory_format=torch.channels_last)
            optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
            scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
            net, loss = (
                (torch.compile(model), torch.compile(loss_fn)) if compiled else (model, loss_fn)
            )
            model.train()

            def step(net=net, loss=loss, x=x, m=m, optimizer=optimizer, scaler=scaler, amp=amp):
                terms = forward_loss(net, loss, x, m, amp_dtype_of(amp))
                backward_step(terms["total"], optimizer, scaler)

            steps[(conv, mode)] = step
    medians = interleaved_medians(steps, device, rounds, warmup)
    rows = []
    for conv, mode in steps:
        seconds = medians[(conv, mode)]
        fp32 = medians.get((conv, "fp32"))
        plain = medians.get(("plain", mode))
        rows.append(
            {
                "conv": conv,
                "norm": DEFAULT_NORM[conv],
                "mode": mode,
                "ms_per_step": seconds * 1e3,
                "images_per_s": batch_size / seconds,
                "speedup_vs_fp32": fp32 / seconds if fp32 else None,
                "ratio_vs_plain": seconds / plain if plain else None,
            }
        )
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "size": size,
        "batch_size": batch_size,
        "layers": layers,
        "perceptual": perceptual,
        "rows": rows,
    }
