"""Benchmarks that report ratios against a baseline measured in the same run.

Absolute times depend on the machine; ratios (masked against plain convolution, masked U-Net
against the plain U-Net of the same shape, the loader against raw reads) are what carries
over. Variants are timed in interleaved rounds so that drift in machine load hits all of them
alike, and the median of the rounds is reported.

One module per subject: :mod:`wmi.bench.unet` (layers and the U-Net per conv kind),
:mod:`wmi.bench.data` (shard preparation and the training loader), :mod:`wmi.bench.train`
(training steps), :mod:`wmi.bench.inpaint` (classical inpainting). This module holds the
timing helpers they share.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from wmi.device import device_name


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: dict[str, Callable[[], Any]], device: torch.device, rounds: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def environment(device: torch.device) -> dict[str, Any]:
    """``{"device", "device_name", "torch"}``: where a benchmark ran."""
    return {"device": device.type, "device_name": device_name(device), "torch": torch.__version__}
