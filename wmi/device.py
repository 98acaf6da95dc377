"""Choosing the compute device from ``--device`` (:data:`wmi.kinds.DEVICES`)."""

from __future__ import annotations

import torch

from wmi.errors import WmiError
from wmi.kinds import DEVICES


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    choice = DEVICES[choice].name
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise WmiError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    """A human-readable name: the GPU model, or the CPU with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"
