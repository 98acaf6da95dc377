"""Training throughput: images/s of full training steps per arch, conv kind and precision mode."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from wmi.bench import interleaved_medians
from wmi.device import amp_dtype, device_name
from wmi.kinds import ARCHS, paper_norm
from wmi.registry import load
from wmi.training.config import TrainConfig, check_choice, resolve_config
from wmi.training.loader import to_device
from wmi.training.state import make_loss, make_model, make_optimization
from wmi.training.step import StepParts, backward_step, forward_loss

#: Benchmark modes: name -> (amp, channels_last, compile).
BENCH_MODES = {
    "fp32": ("off", False, False),
    "bf16+cl": ("bf16", True, False),
    "bf16+cl+compile": ("bf16", True, True),
}


def _batch(batch_size: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images with a box hole each, a quarter to a half of the side, like the paper's."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch_size, 3, size, size, generator=gen)
    mask = torch.ones(batch_size, 1, size, size)
    for i in range(batch_size):
        h, w = (int(v) for v in torch.randint(size // 4, size // 2 + 1, (2,), generator=gen))
        top, left = (int(v) for v in torch.randint(0, size - max(h, w) + 1, (2,), generator=gen))
        mask[i, :, top : top + h, left : left + w] = 0
    return image, mask


def _training_step(
    cfg: TrainConfig,
    mode: str,
    batch: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    perceptual: bool,
) -> Any:
    """A closure running one step of :func:`wmi.training.loop.train` for ``cfg`` in ``mode``."""
    from wmi.training.losses import InpaintingLoss, VGG16Features

    amp, channels_last, compiled = BENCH_MODES[mode]
    cfg = resolve_config(cfg, device.type, True)
    model = make_model(cfg).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        features = VGG16Features() if perceptual else None
    loss_fn = InpaintingLoss(features).to(device)
    x, m = to_device(*batch, device, channels_last)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        loss_fn.to(memory_format=torch.channels_last)
    optimizer = make_optimization(model, loss_fn, cfg, device).optimizer
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    net, loss = (torch.compile(model), torch.compile(loss_fn)) if compiled else (model, loss_fn)
    model.train()
    dtype = amp_dtype(amp)

    def step() -> None:
        terms = forward_loss(net, loss, x, m, dtype)
        backward_step(terms["total"], optimizer, scaler)

    return step


def _arch_step(
    cfg: TrainConfig, mode: str, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device
) -> Any:
    """A closure running one step of ``ARCHS[cfg.arch].step`` (critic steps included, all on
    ``batch``) as :func:`wmi.training.loop.train` does, in ``mode`` (no compile)."""
    amp, channels_last, _ = BENCH_MODES[mode]
    cfg = resolve_config(dataclasses.replace(cfg, amp=amp), device.type, True)
    net, loss_fn = make_model(cfg).to(device), make_loss(cfg, 1).to(device)
    opt = make_optimization(net, loss_fn, cfg, device)
    x, m = to_device(*batch, device, channels_last)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    net.train()
    arch = ARCHS[cfg.arch]
    parts = StepParts(net, net, loss_fn, opt.optimizer, opt.scaler, amp_dtype(amp),
                      opt.d_optimizer, arch.critic_steps)  # fmt: skip
    step = load(arch.step)
    return lambda: step(parts, lambda: (x, m))


def benchmark_train(
    device: torch.device | str = "cpu",
    size: int = 256,
    batch_size: int = 25,
    layers: int = 7,
    convs: Sequence[str] = ("weighted", "plain"),
    modes: Sequence[str] = ("fp32", "bf16+cl", "bf16+cl+compile"),
    perceptual: bool = True,
    rounds: int = 5,
    warmup: int = 2,
    seed: int = 0,
    archs: Sequence[str] = (),
) -> dict[str, Any]:
    """Training throughput: images/s of full training steps, per arch, conv kind and mode.

    A U-Net step is what :func:`wmi.training.loop.train` does per batch: forward under
    autocast, the PConv loss (with a randomly initialized VGG16 when ``perceptual``: the speed
    does not depend on the weights), backward, Adam. Another arch's step is its registered
    step with its discriminator steps, each on a batch (the same one here), so its images/s
    counts every image a step trains on, the critics' included, as ``wmi train`` logs it.
    Variants are timed round-robin in the same run (median of ``rounds``), so the ratios are
    fair even on a busy machine; compile time is in the warm-up.

    Args:
        device: where to run.
        size, batch_size, layers: the training shape (the paper: 256, 25, 7; DeepFill's
            default width, whatever ``layers``).
        convs: U-Net conv kinds, each with its paper normalization; "plain" is the baseline.
        modes: keys of :data:`BENCH_MODES`: "fp32", "bf16+cl" (bf16 autocast + channels_last),
            "bf16+cl+compile" (U-Net only: the other archs refuse ``--compile``).
        perceptual: include the VGG16 perceptual and style terms (U-Net).
        rounds: timed steps per variant.
        warmup: untimed steps per variant first.
        seed: seeds the data and weights.
        archs: further archs of ``ARCHS`` without conv kinds (``deepfill1``, ``deepfill2``).

    Returns:
        ``{"device", "device_name", "torch", "size", "batch_size", "layers", "perceptual",
        "rows": [{"arch", "conv", "norm", "mode", "ms_per_step", "images_per_s",
        "speedup_vs_fp32", "ratio_vs_plain"}]}``; ``ratio_vs_plain`` is seconds per image
        against the plain U-Net's; the ratios are None when their baseline was not measured.
    """
    device = torch.device(device)
    for mode in modes:
        check_choice("mode", mode, BENCH_MODES)
    for arch in archs:
        check_choice("arch", arch, [a.name for a in ARCHS.entries() if not a.takes_conv])
    batch = _batch(batch_size, size, seed)
    steps = {
        ("unet", conv, mode): _training_step(
            TrainConfig(conv=conv, layers=layers, size=size, seed=seed, steps=1),
            mode,
            batch,
            device,
            perceptual,
        )
        for conv in convs
        for mode in modes
    }
    for arch in archs:
        for mode in modes:
            if not BENCH_MODES[mode][2]:  # compile: not for these archs
                cfg = TrainConfig(arch=arch, size=size, batch_size=batch_size, steps=1, seed=seed)
                steps[(arch, "", mode)] = _arch_step(cfg, mode, batch, device)
    medians = interleaved_medians(steps, device, rounds, warmup)
    rows = []
    for arch, conv, mode in steps:
        images = batch_size * (1 + ARCHS[arch].critic_steps)
        seconds = medians[(arch, conv, mode)]
        fp32 = medians.get((arch, conv, "fp32"))
        plain = medians.get(("unet", "plain", mode))
        rows.append(
            {
                "arch": arch,
                "conv": conv,
                "norm": paper_norm(conv) if conv else "",
                "mode": mode,
                "ms_per_step": seconds * 1e3,
                "images_per_s": images / seconds,
                "speedup_vs_fp32": fp32 / seconds if fp32 else None,
                "ratio_vs_plain": seconds / images / (plain / batch_size) if plain else None,
            }
        )
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "size": size,
        "batch_size": batch_size,
        "layers": layers,
        "perceptual": perceptual,
        "rows": rows,
    }
