"""The network of a run and the state a checkpoint keeps to continue it exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmi.errors import WmiError
from wmi.kinds import ARCHS
from wmi.models.checkpoint import load_checkpoint, model_from_config, save_checkpoint, unwrap
from wmi.models.loading import load_model
from wmi.models.unet import InpaintingUNet
from wmi.registry import load
from wmi.training.config import TrainConfig, first_fixed_difference, network_options
from wmi.training.step import lr_at

#: What a training checkpoint holds beyond the model (``load_state`` checks them).
TRAINING_KEYS = ("optimizer", "scheduler", "scaler", "step", "loader", "rng", "config")


def network_config(cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint's ``model_config`` of ``cfg``: the ``--arch`` and the network's
    constructor arguments (``--conv``, ``--norm``, ``--layers``, the momentum only where the
    arch takes them)."""
    net = network_options(cfg)
    if ARCHS[cfg.arch].takes_conv:
        args = {"conv": net["conv"], "norm": net["norm"], "layers": cfg.layers,
                "in_channels": 3, "base_channels": net["base_channels"],
                "norm_momentum": cfg.bn_momentum}  # fmt: skip
    else:
        args = {"cnum": net["base_channels"]}
    return {"arch": cfg.arch, **args}


def make_model(cfg: TrainConfig) -> nn.Module:
    """The generator of ``cfg``, initialized from ``cfg.seed`` (the global RNG is left as it
    was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return model_from_config(network_config(cfg))


def make_loss(cfg: TrainConfig, world: int) -> nn.Module:
    """The arch's loss module (``ARCHS[arch].loss``); discriminators are initialized from
    ``cfg.seed + 1`` (the global RNG is left as it was).

    Raises:
        WmiError: an option the arch's recipe cannot run with (or VGG16 weights missing).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        return load(ARCHS[cfg.arch].loss)(cfg, world)


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
    """The optimizers and the fp16 gradient scaler (a no-op for other AMP modes).

    Attributes:
        optimizer: Adam over the generator's trainable parameters.
        scaler: the fp16 gradient scaler.
        d_optimizer: Adam over the discriminators (the loss module's trainable parameters),
            or None when the arch has none.
    """

    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    d_optimizer: torch.optim.Optimizer | None = None

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer of the run (all follow the run's learning rate)."""
        return [self.optimizer] + ([self.d_optimizer] if self.d_optimizer else [])


def make_optimization(
    model: nn.Module, loss_fn: nn.Module, cfg: TrainConfig, device: torch.device
) -> Optimization:
    """Adam with the arch's betas (eps 1e-8) over the generator's trainable parameters, a
    second one over the loss module's (the discriminators; VGG16 is frozen), and the scaler."""
    betas = ARCHS[cfg.arch].betas

    def adam(module: nn.Module) -> torch.optim.Optimizer | None:
        params = [p for p in module.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=cfg.lr, betas=betas, eps=1e-8) if params else None

    optimizer = adam(model)
    assert optimizer is not None, "a generator without trainable parameters"
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    return Optimization(optimizer, scaler, adam(loss_fn))


def save_state(
    path: Path,
    model: nn.Module,
    opt: Optimization,
    cfg: TrainConfig,
    schedule: Schedule,
    state: TrainState,
    loss_fn: nn.Module,
) -> None:
    """Write a training checkpoint atomically (``weights_only``-loadable).

    Holds the model, optimizer, schedule (its segments: the lr is a function of the step),
    GradScaler, step, the loader position (epoch and batches consumed in it), the RNG states,
    the effective config and the best validation so far; with an adversary also
    ``discriminator`` (the loss module's state: weights, spectral-norm vectors, its random
    source) and ``d_optimizer``.
    """
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    adversary: dict[str, Any] = {}
    if opt.d_optimizer is not None:
        adversary = {
            "discriminator": unwrap(loss_fn).state_dict(),
            "d_optimizer": opt.d_optimizer.state_dict(),
        }
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
        **adversary,
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
    payload: dict[str, Any],
    model: nn.Module,
    opt: Optimization,
    device: torch.device,
    loss_fn: nn.Module,
) -> TrainState:
    """Load a :func:`load_state` payload into the model, optimizers, discriminators, scaler
    and RNGs.

    Raises:
        WmiError: the run has discriminators and the checkpoint does not hold them.
    """
    unwrap(model).load_state_dict(payload["model"])
    opt.optimizer.load_state_dict(payload["optimizer"])
    if opt.d_optimizer is not None:
        if "discriminator" not in payload or "d_optimizer" not in payload:
            raise WmiError("checkpoint holds no discriminator state to resume the run with")
        unwrap(loss_fn).load_state_dict(payload["discriminator"])
        opt.d_optimizer.load_state_dict(payload["d_optimizer"])
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
