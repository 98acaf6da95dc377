"""One training step of each arch (the U-Net's here, DeepFill's in :mod:`wmi.training.gan`),
shared by :mod:`wmi.training.loop` and :mod:`wmi.bench.train`, and the lr."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: Draws the next training batch ``(image (N, 3, H, W) in [0, 1], validity (N, 1, H, W))`` on
#: the device; a step calls it once per batch it trains on (DeepFill's critics take their own).
Draw = Callable[[], tuple[Tensor, Tensor]]


def lr_at(step: int, total: int, lr: float, lr_final: float) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr_final`` at step ``total - 1``."""
    t = step / max(1, total - 1)
    return lr_final + (lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


@dataclass
class StepParts:
    """What a step works with.

    Attributes:
        net: the bare generator (``ARCHS[arch].network``).
        model: the same, wrapped for training (DDP, ``torch.compile``); the U-Net calls it.
        loss_fn: ``ARCHS[arch].loss``'s module (DeepFill's holds the discriminators).
        optimizer: Adam over the generator.
        scaler: the fp16 gradient scaler (a no-op unless ``--amp fp16``).
        dtype: the autocast dtype, or None for float32.
        d_optimizer: Adam over the discriminators, or None (no adversary).
        critic_steps: discriminator steps per generator step (``ARCHS[arch].critic_steps``).
    """

    net: nn.Module
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    d_optimizer: torch.optim.Optimizer | None = None
    critic_steps: int = 0


def forward_loss(
    model: nn.Module,
    loss_fn: nn.Module,
    image: Tensor,
    mask: Tensor,
    dtype: torch.dtype | None,
) -> dict[str, Tensor]:
    """Forward pass and loss terms under autocast to ``dtype`` (the loss works in float32)."""
    with torch.autocast(image.device.type, dtype=dtype or torch.float32, enabled=bool(dtype)):
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


def unet_step(parts: StepParts, draw: Draw) -> dict[str, Tensor]:
    """``--arch unet``: one batch, PConv's loss, one Adam step. Returns the loss terms."""
    image, mask = draw()
    terms = forward_loss(parts.model, parts.loss_fn, image, mask, parts.dtype)
    backward_step(terms["total"], parts.optimizer, parts.scaler)
    return terms
