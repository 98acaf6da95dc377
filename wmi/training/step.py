"""One training step (shared by :mod:`wmi.training.loop` and :mod:`wmi.bench.train`) and the lr."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def lr_at(step: int, total: int, lr: float, lr_final: float) -> float:
    """Cosine decay from ``lr`` at step 0 to ``lr_final`` at step ``total - 1``."""
    t = step / max(1, total - 1)
    return lr_final + (lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


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
