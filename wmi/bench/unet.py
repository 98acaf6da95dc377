"""Layers and the U-Net per conv kind (:data:`wmi.kinds.CONV_KINDS`), as ratios to "plain".

Each conv kind is paired with the norm the paper pairs it with (``ConvKind.paper_norm``):
WConv with weighted batch norm, the others with batch norm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from wmi.bench import environment, interleaved_medians
from wmi.device import amp_dtype
from wmi.kinds import CONV_KINDS
from wmi.layers.conv import create_conv
from wmi.models.unet import InpaintingUNet, check_training_size

#: ``progress(variant, done, total)``: called before each variant (batch and pass) is timed
#: and once more at the end with ``done == total``.
VariantProgress = Callable[[str, int, int], None]


def _step(
    model: torch.nn.Module, x: torch.Tensor, m: torch.Tensor, backward: bool, amp: str = "off"
):
    dtype = amp_dtype(amp)

    def run() -> None:
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=bool(dtype)):
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
    kinds: Sequence[str] | None = None,
    layers: int = 7,
    rounds: int = 5,
    mode: str = "fp32",
    progress: VariantProgress | None = None,
) -> dict[str, Any]:
    """Forward and forward+backward time of the U-Net per conv kind, as ratios to "plain".

    ``kinds``: conv kinds to time (default: every registered one), each with its paper norm.
    ``mode``: a key of :data:`wmi.bench.train.BENCH_MODES` ("fp32", "bf16+cl": bf16 autocast
    and channels_last, "bf16+cl+compile": and ``torch.compile``; compile time is in the
    warm-up), the same for every kind. ``progress``: told about each variant (batch size and
    pass) before it is timed.

    Returns:
        ``{"device", "device_name", "torch", "size", "layers", "mode", "rows": [{"kind",
        "norm", "batch", "pass", "ms", "ratio_vs_plain"}]}``.

    Raises:
        WmiError: ``size`` is not a multiple of ``2**layers`` or too small for batch 1's
            batch norms, or an unknown mode.
    """
    from wmi.bench.train import BENCH_MODES
    from wmi.training.config import check_choice

    check_choice("mode", mode, BENCH_MODES)
    kinds = CONV_KINDS.names() if kinds is None else tuple(kinds)
    norms = {k: CONV_KINDS[k].paper_norm for k in kinds}
    check_training_size(size, layers, min(batches), norms.values())
    report = progress or (lambda variant, done, total: None)
    total, done = 2 * len(batches), 0
    amp, channels_last, compiled = BENCH_MODES[mode]
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, size, size, generator=gen).to(device, memory_format=fmt)
        m = (torch.rand(batch, 1, size, size, generator=gen) > 0.25).float()
        m = m.to(device, memory_format=fmt)
        nets = {
            k: InpaintingUNet(conv=k, norm=norms[k], layers=layers).to(device, memory_format=fmt)
            for k in kinds
        }
        for backward in (False, True):
            report(f"batch {batch}, {'forward+backward' if backward else 'forward'}", done, total)
            done += 1
            for net in nets.values():
                net.train(backward)
            fns = {
                k: _step(torch.compile(net) if compiled else net, x, m, backward, amp)
                for k, net in nets.items()
            }
            med = interleaved_medians(fns, device, rounds)
            for k in kinds:
                rows.append(
                    {
                        "kind": k,
                        "norm": norms[k],
                        "batch": batch,
                        "pass": "forward+backward" if backward else "forward",
                        "ms": med[k] * 1e3,
                        "ratio_vs_plain": med[k] / med["plain"] if "plain" in med else None,
                    }
                )
    report("done", total, total)
    return {**environment(device), "size": size, "layers": layers, "mode": mode, "rows": rows}


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
            for kind in CONV_KINDS
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
    return {**environment(device), "rows": rows}
