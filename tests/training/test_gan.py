"""DeepFill training steps (wmi.training.gan): local boxes, and one fixed batch overfitted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmi.kinds import ARCHS
from wmi.masks import box
from wmi.models.deepfill import SNPatchGANDiscriminator, WGANGlobalCritic, WGANLocalCritic
from wmi.registry import load
from wmi.training.config import TrainConfig, resolve_config
from wmi.training.gan import crop_boxes, local_boxes
from wmi.training.state import make_loss, make_model, make_optimization
from wmi.training.step import StepParts


def test_local_boxes_recover_the_official_box_of_box_masks() -> None:
    size, patch = 64, 32
    rng = np.random.default_rng(0)
    holes = [box(size, size, rng) for _ in range(8)]
    validity = torch.from_numpy(~np.stack(holes))[:, None].float()
    boxes = local_boxes(validity, patch)
    for hole, (top, left) in zip(holes, boxes, strict=True):
        rows, cols = np.nonzero(hole.any(1))[0], np.nonzero(hole.any(0))[0]
        # the box mask is a size/2 square shrunk by the same amount on opposite sides
        assert rows[0] - top == top + patch - 1 - rows[-1] >= 0
        assert cols[0] - left == left + patch - 1 - cols[-1] >= 0
    crops = crop_boxes(1 - validity, boxes, patch)
    assert crops.shape == (8, 1, patch, patch)
    assert torch.equal(crops.sum((1, 2, 3)), (1 - validity).sum((1, 2, 3)))  # whole hole inside


def test_local_boxes_stay_inside_the_image() -> None:
    validity = torch.ones(3, 1, 16, 24)
    validity[0, :, :2, 20:] = 0  # a hole in the top-right corner
    validity[1, :, 5:11, :] = 0  # wider than the patch: its centre part
    boxes = local_boxes(validity, 8)  # sample 2 has no hole: the centre square
    assert boxes == [(0, 16), (4, 8), (4, 8)]


def _parts(arch: str, lr: float) -> tuple[StepParts, tuple[torch.Tensor, torch.Tensor]]:
    """The arch's step parts at cnum 8 with its critics at width 8 (the official 64 only
    costs time here) and one critic step per generator step, and a fixed batch of 16² ramps
    (smooth: learnable in a few steps) with a box hole each."""
    cfg = TrainConfig(arch=arch, size=16, base_channels=8, lr=lr, steps=1)
    cfg = resolve_config(cfg, "cpu", False)
    torch.manual_seed(0)  # the small critics' weights
    net, loss_fn = make_model(cfg), make_loss(cfg, 1)
    if arch == "deepfill1":
        loss_fn.local_critic, loss_fn.global_critic = WGANLocalCritic(8, 8), WGANGlobalCritic(8, 16)
    else:
        loss_fn.discriminator = SNPatchGANDiscriminator(8)
    opt = make_optimization(net, loss_fn, cfg, torch.device("cpu"))
    parts = StepParts(net, net, loss_fn, opt.optimizer, opt.scaler, None, opt.d_optimizer, 1)
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 16)
    colours = torch.rand(2, 3, 1, 1, generator=g)
    image = colours * ramp[None, :] + (1 - colours) * ramp[:, None]
    validity = torch.ones(2, 1, 16, 16)
    validity[0, :, 2:9, 3:10] = 0
    validity[1, :, 8:14, 6:12] = 0
    return parts, (image, validity)


@pytest.mark.slow
@pytest.mark.parametrize("arch, l1_terms", [("deepfill2", ("ae",)), ("deepfill1", ("l1", "ae"))])
def test_one_fixed_batch_overfits(arch: str, l1_terms: tuple[str, ...]) -> None:
    parts, batch = _parts(arch, lr=5e-3)
    step = load(ARCHS[arch].step)
    draws = []

    def draw():
        draws.append(1)
        return batch

    history = [step(parts, draw) for _ in range(15)]
    assert len(draws) == 15 * 2  # a critic batch and a generator batch per step
    assert set(history[0]) == set(parts.loss_fn.terms)
    for term in l1_terms:
        values = [float(h[term].detach()) for h in history]
        assert np.mean(values[-3:]) < 0.9 * np.mean(values[:2]), (term, values)
    assert all(torch.isfinite(h["d"]) for h in history)
