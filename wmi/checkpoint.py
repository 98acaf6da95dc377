"""Checkpoints: one file with the model, its architecture, and (for training) the full state.

Checkpoints are plain ``torch.save`` dictionaries of tensors and primitive values and are
always loaded with ``torch.load(weights_only=True)``: opening a checkpoint never runs code.
Files are written atomically, so a crash while saving keeps the previous checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.unet import InpaintingUNet

FORMAT = "wmi-checkpoint"
VERSION = 1


def model_config(model: InpaintingUNet) -> dict[str, Any]:
    """The constructor arguments that rebuild ``model``."""
    return {
        "conv": model.conv_kind,
        "norm": model.norm_kind,
        "layers": model.layers,
        "in_channels": model.in_channels,
        "base_channels": model.base_channels,
        "norm_momentum": model.norm_momentum,
    }


def save_checkpoint(path: str | os.PathLike[str], model: InpaintingUNet, **state: Any) -> None:
    """Write ``model`` (its weights and architecture) plus any extra ``state`` atomically.

    Args:
        path: destination file.
        model: the bare network (unwrap DDP / ``torch.compile`` first).
        **state: anything ``torch.load(weights_only=True)`` can read back: optimizer and
            scheduler state dicts, step, RNG states, the training config as a dict, metrics.
    """
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_config(model),
        "model": model.state_dict(),
        **state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, safely.

    Raises:
        WmiError: the file is missing, corrupt, not a wmi checkpoint, or of a newer version.
    """
    path = Path(path)
    if not path.is_file():
        raise WmiError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by torch
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise WmiError(f"{path}: not a readable wmi checkpoint ({reason[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WmiError(f"{path}: not a wmi checkpoint (no '{FORMAT}' header)")
    if payload.get("version", 0) > VERSION:
        raise WmiError(
            f"{path}: checkpoint format version {payload['version']} is newer than this wmi "
            f"supports ({VERSION}); upgrade wmi"
        )
    return payload


def build_model(payload: dict) -> InpaintingUNet:
    """Rebuild the network of a loaded checkpoint and load its weights."""
    try:
        model = InpaintingUNet(**payload["model_config"])
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise WmiError(f"checkpoint does not hold a valid wmi model ({reason[:120]})") from None
    return model


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about its network besides the weights.

    Attributes:
        amp: the mixed precision it was trained with ("bf16", "fp16" or "off"), so that
            inference can use the same.
        step: the training step it was saved at, or None (not a training checkpoint).
        config: the effective training configuration (``TrainConfig.to_dict()``), or ``{}``.
    """

    amp: str = "off"
    step: int | None = None
    config: dict[str, Any] = field(default_factory=dict)


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[InpaintingUNet, CheckpointInfo]:
    """Load a trained network ready for inference (eval mode, on ``device``).

    Returns:
        ``(model, info)``: the network, and :class:`CheckpointInfo` (its training AMP mode,
        step and configuration).

    Example::

        model, info = load_model("runs/wconv/checkpoints/best.pt", device="cuda")
    """
    payload = load_checkpoint(path)
    try:
        model = build_model(payload)
    except WmiError as exc:
        raise WmiError(f"{path}: {exc}") from None
    config = dict(payload.get("config") or {})
    step = payload.get("step")
    info = CheckpointInfo(
        str(config.get("amp", "off")), None if step is None else int(step), config
    )
    return model.to(device).eval(), info


def unwrap(model: nn.Module) -> nn.Module:
    """The bare network inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module"):  # DistributedDataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model
