"""The network of a run and the state a checkpoint keeps to continue it exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmi.errors import WmiError
from wmi.kinds import paper_norm
from wmi.models.checkpoint import load_checkpoint, save_checkpoint, unwrap
from wmi.models.loading import load_model
from wmi.models.unet import InpaintingUNet
from wmi.training.config import TrainConfig, first_fixed_difference
from wmi.training.step import lr_at

#: What a training checkpoint holds beyond the model (``load_state`` checks them).
TRAINING_KEYS = ("optimizer", "scheduler", "scaler", "step", "loader", "rng", "config")


def make_model(cfg: TrainConfig) -> InpaintingUNet:
    """The network of ``cfg``, initialized from ``cfg.seed`` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        norm = paper_norm(cfg.conv, cfg.norm)
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

    Args:
        model: the network of the fine-tuning run.
        path: a checkpoint file or an export folder (``wmi export``).

    Raises:
        WmiError: unreadable or foreign checkpoint, or another architecture.
    """
    try:
        source, _ = load_model(path)
    except WmiError as exc:
        message = str(exc)
        where = "" if message.startswith(str(path)) else f"{path}: "
        raise WmiError(f"--finetune {where}{message}") from None
    # the running-statistics rate is a training setting, not part of the architecture
    want, have = model.config(), source.config()
    want.pop("norm_momentum"), have.pop("norm_momentum")
    if want != have:
        diff = ", ".join(f"{k}={have[k]} (this run: {want[k]})" for k in want if want[k] != have[k])
        raise WmiError(f"--finetune {path}: the checkpoint's network differs: {diff}")
    model.load_state_dict(source.state_dict())


@dataclass
class TrainState:
    """Where a run is: what the loop advances and a checkpoint keeps.

    Attributes:
        step: optimizer steps done.
        epoch: the epoch the loader is in.
        position: batches of that epoch already trained on.
        best: the validation with the lowest hole L1 (``{"step", "l1", ...}``), or None.
        last_val: the latest validation, or None (not checkpointed).
    """

    step: int = 0
    epoch: int = 0
    position: int = 0
    best: dict[str, Any] | None = None
    last_val: dict[str, Any] | None = None


@dataclass(frozen=True)
class Schedule:
    """The learning rate of every step: a cosine to ``lr_final``, re-planned when a run grows.

    Each segment ``(first, lr, end)`` is a cosine from ``lr`` at step ``first`` down to
    ``lr_final`` at step ``end - 1``; a step follows the last segment that starts at or before
    it. A new run has one segment; ``--resume`` with more ``--steps`` adds one that starts
    where the run stopped, at the rate it had reached there.

    Attributes:
        lr_final: the rate at the last step.
        segments: ``(first step, lr at that step, total steps planned)``, in order.
    """

    lr_final: float
    segments: tuple[tuple[int, float, int], ...]

    @classmethod
    def new(cls, lr: float, lr_final: float, total: int) -> Schedule:
        """The schedule of a new run: one cosine from ``lr`` over ``total`` steps."""
        return cls(lr_final, ((0, lr, total),))

    @property
    def total(self) -> int:
        """The number of steps the run is planned for."""
        return self.segments[-1][2]

    def lr(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (counting from 0)."""
        first, lr, end = next(seg for seg in reversed(self.segments) if seg[0] <= step)
        return lr_at(step - first, end - first, lr, self.lr_final)

    def extended(self, step: int, total: int) -> Schedule:
        """The schedule continued from ``step`` (steps done) to ``total`` steps in all."""
        if total == self.total:
            return self
        return Schedule(self.lr_final, (*self.segments, (step, self.lr(step), total)))

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``scheduler`` entry (``weights_only`` safe)."""
        first_lr = self.segments[0][1]
        return {
            "kind": "cosine",
            "lr": first_lr,
            "lr_final": self.lr_final,
            "total_steps": self.total,
            "segments": [list(seg) for seg in self.segments],
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Schedule:
        """Read a checkpoint's ``scheduler`` entry (older ones have one segment, no list)."""
        segments = values.get("segments") or [[0, values["lr"], values["total_steps"]]]
        return cls(
            float(values["lr_final"]),
            tuple((int(a), float(b), int(c)) for a, b, c in segments),
        )


def restore_schedule(payload: dict[str, Any], total: int) -> Schedule:
    """The schedule of a resumed run of ``total`` steps (re-planned if the run grew)."""
    return Schedule.from_dict(payload["scheduler"]).extended(int(payload["step"]), total)


@dataclass
class Optimization:
    """The optimizer and the fp16 gradient scaler (a no-op for other AMP modes)."""

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def make_optimization(model: nn.Module, cfg: TrainConfig, device: torch.device) -> Optimization:
    """Adam with the paper's betas and eps over the trainable parameters, and the scaler."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    return Optimization(optimizer, torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16"))


def save_state(
    path: Path,
    model: nn.Module,
    opt: Optimization,
    cfg: TrainConfig,
    schedule: Schedule,
    state: TrainState,
) -> None:
    """Write a training checkpoint atomically (``weights_only``-loadable).

    Holds the model, optimizer, schedule (its segments: the lr is a function of the step),
    GradScaler, step, the loader position (epoch and batches consumed in it), the RNG states,
    the effective config and the best validation so far.
    """
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_checkpoint(
        path,
        unwrap(model),
        optimizer=opt.optimizer.state_dict(),
        scheduler=schedule.to_dict(),
        scaler=opt.scaler.state_dict(),
        step=state.step,
        loader={"epoch": state.epoch, "position": state.position},
        rng=rng,
        config=cfg.to_dict(),
        best=state.best,
    )


def load_state(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Read ``last.pt`` for ``--resume`` and check that it belongs to a run configured as ``cfg``.

    ``cfg`` may ask for more steps than the checkpoint's run (see
    :func:`~wmi.training.config.first_fixed_difference`).

    Raises:
        WmiError: corrupt or foreign file, not a training checkpoint, or another configuration.
    """
    payload = load_checkpoint(path)
    missing = [k for k in TRAINING_KEYS if k not in payload]
    if missing:
        raise WmiError(f"{path}: not a training checkpoint (no {', '.join(missing)})")
    difference = first_fixed_difference(payload["config"], cfg.to_dict())
    if difference is not None:
        key, saved, value = difference
        raise WmiError(
            f"{path}: the run was configured with {key}={saved!r}, "
            f"not {value!r}; --resume keeps the configuration"
        )
    return payload


def restore_state(
    payload: dict[str, Any], model: nn.Module, opt: Optimization, device: torch.device
) -> TrainState:
    """Load a :func:`load_state` payload into the model, optimizer, scaler and RNGs."""
    unwrap(model).load_state_dict(payload["model"])
    opt.optimizer.load_state_dict(payload["optimizer"])
    opt.scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng"]["torch"])
    cuda_rng = payload["rng"].get("cuda")
    if device.type == "cuda" and cuda_rng and len(cuda_rng) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_rng)
    loader = payload["loader"]
    return TrainState(
        step=int(payload["step"]),
        epoch=int(loader["epoch"]),
        position=int(loader["position"]),
        best=payload.get("best"),
    )
