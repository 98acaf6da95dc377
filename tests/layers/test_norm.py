"""Weighted normalization against float64 references written from eqs. (4)–(6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import wmi
from wmi.layers.norm import weighted_batch_norm, weighted_instance_norm


def reference_stats(x, mask, dims):
    """Eq. (4) mean, eq. (6) variance and eq. (5)'s unbiased variance, element by element."""
    m = mask.expand_as(x)
    v1 = m.sum(dims, keepdim=True)
    mean = (x * m).sum(dims, keepdim=True) / v1
    var = ((x - mean) ** 2 * m).sum(dims, keepdim=True) / v1
    v2 = (m * m).sum(dims, keepdim=True)
    unbiased = ((x - mean) ** 2 * m).sum(dims, keepdim=True) / (v1 - v2 / v1)
    return mean, var, unbiased


def random_inputs(seed: int, mask_channels: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64) * 2 + 1
    mask = torch.rand(3, mask_channels, 5, 6, generator=gen, dtype=torch.float64)
    mask = torch.where(mask < 0.3, 0.0, mask)  # real-valued with holes
    return x, mask


@pytest.mark.parametrize("mask_channels", [1, 4])
def test_batch_norm_train_and_eval_against_reference(mask_channels: int) -> None:
    x, mask = random_inputs(0, mask_channels)
    bn = wmi.WeightedBatchNorm2d(4, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.1, -0.3, 2.0]))
    y = bn(x, mask)

    mean, var, unbiased = reference_stats(x, mask, (0, 2, 3))
    w, b = bn.weight.view(1, -1, 1, 1), bn.bias.view(1, -1, 1, 1)
    assert_close(y, (x - mean) / torch.sqrt(var + 1e-8) * w + b)
    assert_close(bn.running_mean, 0.9 * torch.zeros(4, dtype=torch.float64) + 0.1 * mean.view(4))
    assert_close(bn.running_var, 0.9 * torch.ones(4, dtype=torch.float64) + 0.1 * unbiased.view(4))
    assert bn.num_batches_tracked.item() == 1

    bn.eval()
    x2, mask2 = random_inputs(1, mask_channels)
    rm, rv = bn.running_mean.view(1, -1, 1, 1), bn.running_var.view(1, -1, 1, 1)
    assert_close(bn(x2, mask2), (x2 - rm) / torch.sqrt(rv + 1e-8) * w + b)
    assert_close(bn.running_mean, 0.1 * mean.view(4))  # eval leaves the statistics alone


def test_paper_defaults() -> None:
    bn = wmi.WeightedBatchNorm2d(8)
    assert bn.eps == 1e-8 and bn.momentum == 0.001  # decay 0.999


def test_all_ones_mask_equals_nn_batchnorm() -> None:
    gen = torch.Generator().manual_seed(2)
    ours, ref = wmi.WeightedBatchNorm2d(5), nn.BatchNorm2d(5, eps=1e-8, momentum=0.001)
    for _ in range(3):
        x = torch.randn(4, 5, 6, 7, generator=gen)
        assert_close(ours(x, torch.ones(4, 1, 6, 7)), ref(x))
    assert_close(ours.running_mean, ref.running_mean)
    assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    assert_close(ours(x, torch.ones(4, 1, 6, 7)), ref(x))


def test_holes_do_not_leak_into_statistics() -> None:
    x, mask = random_inputs(3, 1)
    binary = (mask > 0).double()
    y1 = weighted_batch_norm(x, binary, None, None)
    x_changed = torch.where(binary.bool().expand_as(x), x, torch.full_like(x, 1e3))
    y2 = weighted_batch_norm(x_changed, binary, None, None)
    valid = binary.bool().expand_as(x)
    assert_close(y1[valid], y2[valid])


def test_channel_with_empty_mask_gives_no_nan_and_keeps_running_stats() -> None:
    bn = wmi.WeightedBatchNorm2d(3, momentum=0.5)
    x = torch.randn(2, 3, 4, 4)
    mask = torch.ones(2, 3, 4, 4)
    mask[:, 1] = 0  # channel 1 has no valid pixel in this batch
    y = bn(x, mask)
    assert torch.isfinite(y).all()
    assert bn.running_mean[1] == 0 and bn.running_var[1] == 1
    assert bn.running_mean[0] != 0
    # an all-hole batch: nothing valid anywhere
    y = bn(x, torch.zeros(2, 1, 4, 4))
    assert torch.isfinite(y).all()
    assert torch.isfinite(bn.running_var).all() and torch.isfinite(bn.running_mean).all()


def test_batch_norm_gradcheck() -> None:
    x, mask = random_inputs(4, 1)
    x = x[:, :, :3, :3].contiguous().requires_grad_()
    mask = mask[:, :, :3, :3].contiguous()
    w = torch.randn(4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: weighted_batch_norm(x, mask, None, None, w, b, eps=1e-5),
        (x, w, b),
        fast_mode=True,
    )


@pytest.mark.parametrize("mask_channels", [1, 4])
def test_instance_norm_against_reference(mask_channels: int) -> None:
    x, mask = random_inputs(5, mask_channels)
    mean, var, _ = reference_stats(x, mask, (2, 3))
    inorm = wmi.WeightedInstanceNorm2d(4)
    assert_close(inorm(x, mask), (x - mean) / torch.sqrt(var + 1e-8))
    mask[0] = 0  # a sample with no valid pixel passes through unchanged
    y = weighted_instance_norm(x, mask)
    assert torch.isfinite(y).all()
    assert_close(y[0], x[0])
    xr = x[:, :, :3, :3].contiguous().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda t: weighted_instance_norm(t, mask[:, :, :3, :3], eps=1e-5), (xr,), fast_mode=True
    )


def test_statistics_in_float32_under_autocast() -> None:
    bn = wmi.WeightedBatchNorm2d(4)
    x = torch.randn(2, 4, 8, 8).bfloat16() * 100 + 1000
    y = bn(x, torch.ones(2, 1, 8, 8))
    assert y.dtype == torch.bfloat16
    assert bn.running_mean.dtype == torch.float32
    assert_close(y.float().mean((0, 2, 3)), torch.zeros(4), atol=0.05, rtol=0)


def test_factory_and_bad_input() -> None:
    assert isinstance(wmi.create_norm("weighted", 4), wmi.WeightedBatchNorm2d)
    for kind in ("batch", "instance", "none"):
        out = wmi.create_norm(kind, 4)(torch.randn(2, 4, 3, 3), torch.ones(2, 1, 3, 3))
        assert out.shape == (2, 4, 3, 3)
    with pytest.raises(ValueError, match="unknown norm kind"):
        wmi.create_norm("group", 4)
    with pytest.raises(ValueError, match="mask must have 1 or 4 channels"):
        wmi.WeightedBatchNorm2d(4)(torch.randn(2, 4, 3, 3), torch.ones(2, 2, 3, 3))


def test_momentum_none_is_a_cumulative_average_like_nn_batchnorm() -> None:
    gen = torch.Generator().manual_seed(7)
    ours, ref = (
        wmi.WeightedBatchNorm2d(3, momentum=None),
        nn.BatchNorm2d(3, eps=1e-8, momentum=None),
    )
    for _ in range(4):
        x = torch.randn(2, 3, 5, 5, generator=gen)
        ours(x, torch.ones(2, 1, 5, 5)), ref(x)
    assert_close(ours.running_mean, ref.running_mean)
    assert_close(ours.running_var, ref.running_var)


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_a_single_valid_value_normalizes_to_the_shift_exactly(weight: float) -> None:
    # a 1×1 bottleneck at batch 1: one value per channel (docs/paper.md); nn.BatchNorm2d
    # refuses it, the weighted norm gives β, and before it gave β + rounding noise × 10⁴
    norm = wmi.WeightedBatchNorm2d(8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(1, 8, 1, 1, generator=torch.Generator().manual_seed(0)) * 3
    y = norm(x, torch.full((1, 1, 1, 1), weight))
    assert torch.equal(y.flatten(), norm.bias.detach())
    assert torch.equal(norm.running_var, torch.ones(8))  # not updated from one value
    # one valid pixel among holes: that pixel is β too, for instance norm as well
    x = torch.randn(2, 8, 3, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(2, 1, 3, 3)
    mask[0, 0, 1, 2] = weight
    y = norm(x, mask)
    assert torch.equal(y[0, :, 1, 2], norm.bias.detach())
    inst = weighted_instance_norm(x, mask, norm.weight, norm.bias)
    assert torch.equal(inst[0, :, 1, 2], norm.bias.detach())
