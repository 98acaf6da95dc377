"""One way in for trained networks: a checkpoint file, a run folder or an export folder.

:func:`find_model` is the one place that decides what a path given as ``--checkpoint``,
``--finetune`` or ``wmi.load_model(path)`` is; :func:`load_model` loads it. Callers never test
for ``.pt`` files or ``config.json`` themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from wmi.errors import WmiError
from wmi.models.checkpoint import build_model, load_checkpoint
from wmi.models.export import CONFIG_FILE, WEIGHTS_FILE, load_exported

#: A run folder's checkpoints, in the order a run folder given as a model is searched.
RUN_CHECKPOINTS = ("checkpoints/best.pt", "checkpoints/last.pt")


@dataclass(frozen=True)
class ModelSource:
    """What a path names.

    Attributes:
        kind: ``"checkpoint"`` (a ``.pt`` file of ``wmi train``) or ``"export"`` (a folder of
            ``wmi export``).
        path: the checkpoint file or the export folder (a run folder resolves to its
            checkpoint).
        weights: the file that holds the weights (the checkpoint, or ``model.safetensors``).
    """

    kind: Literal["checkpoint", "export"]
    path: Path
    weights: Path


def find_model(path: str | os.PathLike[str]) -> ModelSource:
    """Decide what ``path`` is: a checkpoint file, an export folder, or a run folder.

    A run folder (``wmi train --out``) stands for its ``checkpoints/best.pt`` (else
    ``last.pt``). Nothing is read beyond the folder listing.

    Raises:
        WmiError: none of these, naming the path.
    """
    path = Path(path)
    if path.is_file():
        return ModelSource("checkpoint", path, path)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
            return ModelSource("export", path, path / WEIGHTS_FILE)
        for name in RUN_CHECKPOINTS:
            if (path / name).is_file():
                return ModelSource("checkpoint", path / name, path / name)
        if (path / CONFIG_FILE).is_file():
            raise WmiError(f"{path}: export folder without its {WEIGHTS_FILE}")
        raise WmiError(
            f"{path}: neither an export folder ({CONFIG_FILE} + {WEIGHTS_FILE}) nor a run "
            f"folder ({' or '.join(RUN_CHECKPOINTS)})"
        )
    raise WmiError(f"{path}: no such checkpoint file, run folder or export folder")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about its network besides the weights.

    Attributes:
        amp: the mixed precision it was trained with ("bf16", "fp16" or "off"), so that
            inference can use the same.
        step: the training step it was saved at, or None (not a training checkpoint).
        config: the effective training configuration (``TrainConfig.to_dict()``), or ``{}``;
            for an export folder, the training summary of its config.json.
        source: where the network came from.
    """

    amp: str = "off"
    step: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    source: ModelSource | None = None


def _load(source: ModelSource) -> tuple[nn.Module, CheckpointInfo]:
    if source.kind == "export":
        model, meta = load_exported(source.path)
        training = dict(meta.get("training") or {})
        step = training.get("step")
        return model, CheckpointInfo(str(meta.get("amp", "off")), step, training, source)
    payload = load_checkpoint(source.path)
    model = build_model(payload, str(source.path))
    config = dict(payload.get("config") or {})
    step = payload.get("step")
    info = CheckpointInfo(
        str(config.get("amp", "off")), None if step is None else int(step), config, source
    )
    return model, info


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointInfo]:
    """Load a trained network ready for inference (eval mode, on ``device``).

    Args:
        path: a checkpoint file (``last.pt``, ``best.pt``), a run folder (its best.pt) or an
            export folder written by ``wmi export`` (``model.safetensors`` + ``config.json``);
            a checkpoint and its export give the same network, bit for bit.
        device: where the network goes.

    Returns:
        ``(model, info)``: the network, and :class:`CheckpointInfo` (its training AMP mode,
        step and configuration; for an export folder, the training summary of its
        config.json).

    Example::

        model, info = load_model("runs/wconv/checkpoints/best.pt", device="cuda")
    """
    model, info = _load(find_model(path))
    return model.to(device).eval(), info
