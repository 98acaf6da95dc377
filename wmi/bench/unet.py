"""Benchmarks that report ratios against a baseline measured in the same run.

Absolute times depend on the machine; ratios (masked against plain convolution, masked U-Net
against the plain U-Net of the same shape) are what carries over. Variants are timed in
interleaved rounds so that drift in machine load hits all of them alike, and the median of
the rounds is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from wmi.conv import CONV_LAYERS, create_conv
from wmi.device import device_name
from wmi.unet import InpaintingUNet

#: The normalization each conv kind is paired with in the paper's comparisons.
PAPER_NORM = {"weighted": "weighted", "partial": "batch", "gated": "batch", "plain": "batch"}


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


def _environment(device: torch.device) -> dict[str, Any]:
    return {"device": device.type, "device_name": device_name(device), "torch": torch.__version__}


def _step(model: torch.nn.Module, x: torch.Tensor, m: torch.Tensor, backward: bool):
    def run() -> None:
        if backward:
            model.zero_grad(set_to_none=True)
            model(x, m).float().mean().backward()
        else:
            with torch.inference_mode():
                model(x, m)

    return run


def benchmark_unet(
    device: torch.device,
    size: int = 256,
    batches: Sequence[int] = (1, 8),
    kinds: Sequence[str] = ("weighted", "partial", "gated", "plain"),
    layers: int = 7,
    rounds: int = 5,
) -> dict[str, Any]:
    """Forward and forward+backward time of the U-Net per conv kind, as ratios to "plain".

    Returns:
        ``{"device", "device_name", "torch", "size", "rows": [{"kind", "norm", "batch",
        "pass", "ms", "ratio_vs_plain"}]}``.
    """
    gen = torch.Generator().manual_seed(0)
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, size, size, generator=gen).to(device)
        m = (torch.rand(batch, 1, size, size, generator=gen) > 0.25).float().to(device)
        nets = {
            k: InpaintingUNet(conv=k, norm=PAPER_NORM[k], layers=layers).to(device) for k in kinds
        }
        for backward in (False, True):
            for net in nets.values():
                net.train(backward)
            fns = {k: _step(net, x, m, backward) for k, net in nets.items()}
            med = interleaved_medians(fns, device, rounds)
            for k in kinds:
                rows.append(
                    {
                        "kind": k,
                        "norm": PAPER_NORM[k],
                        "batch": batch,
                        "pass": "forward+backward" if backward else "forward",
                        "ms": med[k] * 1e3,
                        "ratio_vs_plain": med[k] / med["plain"] if "plain" in med else None,
                    }
                )
    return {**_environment(device), "size": size, "layers": layers, "rows": rows}


def benchmark_layers(device: torch.device, rounds: int = 10) -> dict[str, Any]:
    """Single layers of the U-Net's shapes: each conv kind against ``nn.Conv2d``-only "plain".

    Returns:
        ``{"device", "device_name", "torch", "rows": [{"layer", "kind", "ms",
        "ratio_vs_plain"}]}``.
    """
    shapes = {
        # name: (batch, in, out, kernel, stride, size)
        "enc2 64→128 k5 s2 @128²": (8, 64, 128, 5, 2, 128),
        "enc5 512→512 k3 s2 @16²": (8, 512, 512, 3, 2, 16),
        "dec2 192→64 k3 s1 @128²": (8, 192, 64, 3, 1, 128),
    }
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, (n, cin, cout, k, s, hw) in shapes.items():
        x = torch.randn(n, cin, hw, hw, generator=gen).to(device)
        m = (torch.rand(n, 1, hw, hw, generator=gen) > 0.25).float().to(device)
        convs = {
            kind: create_conv(kind, cin, cout, k, stride=s, padding=k // 2).to(device)
            for kind in CONV_LAYERS
        }

        fns = {kind: _step(c, x, m, backward=False) for kind, c in convs.items()}
        med = interleaved_medians(fns, device, rounds)
        for kind in convs:
            rows.append(
                {
                    "layer": name,
                    "kind": kind,
                    "ms": med[kind] * 1e3,
                    "ratio_vs_plain": med[kind] / med["plain"],
                }
            )
    return {**_environment(device), "rows": rows}
