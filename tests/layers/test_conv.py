"""Masked convolutions against slow float64 references written from the paper's equations."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import wmi
from wmi.kinds import CONV_KINDS
from wmi.layers.conv import gated_conv2d, partial_conv2d, weighted_conv2d
from wmi.registry import load


def reference_masked_conv(x, mask, weight, bias, stride, padding, dilation, rule):
    """Eq. (1) with eq. (2) ("partial") or eq. (3) ("weighted"), one window at a time."""
    n, c, h, w = x.shape
    mask = mask.expand(n, c, h, w)
    kh, kw = weight.shape[-2:]
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    xp = F.pad(x, (pw, pw, ph, ph))  # zero padding ...
    mp = F.pad(mask, (pw, pw, ph, ph))  # ... counts as invalid
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = torch.zeros(n, weight.shape[0], ho, wo, dtype=torch.float64)
    m_new = torch.zeros(n, 1, ho, wo, dtype=torch.float64)
    sum1 = c * kh * kw
    for i, j in itertools.product(range(ho), range(wo)):
        rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
        cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
        for b in range(n):
            xs, ms = xp[b, :, rows, cols], mp[b, :, rows, cols]
            summ = ms.sum()
            if summ > 0:
                y[b, :, i, j] = (weight * (xs * ms)).sum(dim=(1, 2, 3)) * sum1 / summ
                if bias is not None:
                    y[b, :, i, j] += bias
            m_new[b, 0, i, j] = summ / sum1 if rule == "weighted" else float(summ > 0)
    return y, m_new


def make_mask(kind: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    if kind == "binary":
        return (torch.rand(shape, generator=gen, dtype=torch.float64) > 0.5).double()
    if kind == "real":  # a weighted layer's output mask, with some exact zeros
        m = torch.rand(shape, generator=gen, dtype=torch.float64)
        return torch.where(m < 0.3, 0.0, m)
    return torch.full(shape, 1.0 if kind == "ones" else 0.0, dtype=torch.float64)


CASES = [
    # (kernel, stride, padding, dilation)
    *[(k, s, p, 1) for k in (1, 2, 3, 5, 7) for s in (1, 2) for p in (0, 1, 2, 3)],
    *[(k, s, p, 2) for k in (2, 3) for s in (1, 2) for p in (0, 2)],
]


@pytest.mark.parametrize("rule", ["weighted", "partial"])
@pytest.mark.parametrize(("k", "s", "p", "d"), CASES)
def test_against_reference(rule: str, k: int, s: int, p: int, d: int) -> None:
    gen = torch.Generator().manual_seed(k * 1000 + s * 100 + p * 10 + d)
    fn = weighted_conv2d if rule == "weighted" else partial_conv2d
    kinds = ("binary", "real", "ones", "zeros")
    x = torch.randn(len(kinds), 3, 9, 10, generator=gen, dtype=torch.float64)
    weight = torch.randn(4, 3, k, k, generator=gen, dtype=torch.float64)
    bias = torch.randn(4, generator=gen, dtype=torch.float64)
    for channels in (1, 3):
        # one sample per mask kind: random binary, real-valued, all one, all zero
        mask = torch.cat([make_mask(kind, (1, channels, 9, 10), gen) for kind in kinds])
        y, m = fn(x, mask, weight, bias, s, p, d)
        y_ref, m_ref = reference_masked_conv(x, mask, weight, bias, (s, s), (p, p), (d, d), rule)
        assert_close(y, y_ref, msg=f"mask with {channels} channel(s)")
        assert_close(m, m_ref, msg=f"mask with {channels} channel(s)")


def test_rectangular_kernel_and_pairs() -> None:
    gen = torch.Generator().manual_seed(0)
    conv = wmi.WeightedConv2d(3, 2, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    conv.double()
    x = torch.randn(1, 3, 9, 8, generator=gen, dtype=torch.float64)
    mask = make_mask("real", (1, 1, 9, 8), gen)
    y, m = conv(x, mask)
    y_ref, m_ref = reference_masked_conv(
        x, mask, conv.weight, conv.bias, (2, 1), (1, 0), (1, 2), "weighted"
    )
    assert_close(y, y_ref)
    assert_close(m, m_ref)


def test_all_ones_mask_is_an_ordinary_convolution_inside() -> None:
    conv = wmi.WeightedConv2d(3, 5, 3, padding=0)
    x = torch.randn(2, 3, 12, 12)
    y, m = conv(x, torch.ones(2, 1, 12, 12))
    assert_close(y, F.conv2d(x, conv.weight, conv.bias))
    assert torch.equal(m, torch.ones_like(m))


@pytest.mark.parametrize("fn", [weighted_conv2d, partial_conv2d])
def test_gradcheck(fn) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = make_mask("binary", (1, 1, 6, 5), gen)
    mask[..., :3, :3] = 0  # a window with no valid input at all
    assert torch.autograd.gradcheck(
        lambda x, w, b: fn(x, mask, w, b, 2, 1)[0], (x, w, b), fast_mode=True
    )


def test_gradcheck_through_a_real_valued_mask() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64)
    mask = (0.2 + 0.8 * torch.rand(1, 1, 5, 5, generator=gen, dtype=torch.float64)).requires_grad_()

    assert torch.autograd.gradcheck(
        lambda x, m: weighted_conv2d(x, m, w, None, 1, 1), (x, mask), fast_mode=True
    )


def test_gated_against_definition() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    w = torch.randn(8, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, generator=gen, dtype=torch.float64)
    mask = make_mask("binary", (2, 1, 8, 8), gen)
    y, m = gated_conv2d(x, mask, w, b, 1, 1)
    feat = F.conv2d(x, w[:4], b[:4], 1, 1)
    gate = F.conv2d(x, w[4:], b[4:], 1, 1)
    assert_close(y, F.elu(feat) * torch.sigmoid(gate))
    _, m_ref = reference_masked_conv(x, mask, w[:4].detach(), None, (1, 1), (1, 1), (1, 1), "p")
    assert_close(m, m_ref)
    assert torch.autograd.gradcheck(
        lambda w: gated_conv2d(x, mask, w, b, 1, 1)[0], (w,), fast_mode=True
    )


def test_plain_ignores_mask_values() -> None:
    conv = wmi.create_conv("plain", 3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:, :] = 1
    y, m = conv(x, mask)
    assert_close(y, F.conv2d(x, conv.weight, conv.bias, padding=1))
    assert set(m.unique().tolist()) == {0.0, 1.0}


def _averaging_chain(layer_cls, signal, valid, stride):
    """Consecutive 2-tap averaging layers (kernel [0.5, 0.5]) until one sample is left."""
    x = torch.tensor(signal, dtype=torch.float64).view(1, 1, 1, -1)
    m = torch.tensor(valid, dtype=torch.float64).view(1, 1, 1, -1)
    layer = layer_cls(1, 1, (1, 2), stride=(1, stride), bias=False).double()
    with torch.no_grad():
        layer.weight.fill_(0.5)
    while x.shape[-1] > 1:
        x, m = layer(x, m)
    return x.item()


def test_fig2_weighted_gives_the_mean_of_the_valid_samples() -> None:
    # Fig. 2: 8 samples, 4 missing, averaged by non-overlapping 2-tap filters (stride 2).
    signal = [0.9, 0.2, 0.4, 0.8, 0.1, 0.6, 0.7, 0.3]
    valid = [1, 0, 0, 0, 1, 1, 1, 0]
    mean_valid = sum(s for s, v in zip(signal, valid, strict=True) if v) / sum(valid)
    weighted = _averaging_chain(wmi.WeightedConv2d, signal, valid, stride=2)
    partial = _averaging_chain(wmi.PartialConv2d, signal, valid, stride=2)
    assert weighted == pytest.approx(mean_valid, abs=1e-12)
    assert abs(partial - mean_valid) > 0.05


def test_fig2_with_overlapping_windows_gives_the_binomial_mean() -> None:
    # With stride 1 each layer is a [1/2, 1/2] filter on both x⊙m and m, so after L layers
    # weighted conv returns the valid samples averaged with binomial weights C(L, i):
    # exact for the masked signal, whatever the mask. Partial conv does not.
    signal = [0.9, 0.2, 0.4, 0.8, 0.1, 0.6, 0.7, 0.3]
    valid = [1, 0, 0, 0, 1, 1, 1, 0]
    from math import comb

    w = [comb(7, i) * v for i, v in enumerate(valid)]
    expected = sum(wi * s for wi, s in zip(w, signal, strict=True)) / sum(w)
    weighted = _averaging_chain(wmi.WeightedConv2d, signal, valid, stride=1)
    partial = _averaging_chain(wmi.PartialConv2d, signal, valid, stride=1)
    assert weighted == pytest.approx(expected, abs=1e-12)
    assert abs(partial - expected) > 0.05


def test_mixed_precision_mask_math_stays_float32() -> None:
    conv = wmi.WeightedConv2d(8, 8, 3, padding=1)
    x = torch.randn(1, 8, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 0, 0] = 1e-4  # tiny validity: sum(1)/sum(M) is 9e4, beyond float16's range
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, m = conv(x, mask)
    assert y.dtype == torch.bfloat16
    assert m.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert m[0, 0, 0, 0].item() == pytest.approx(1e-4 / 9, rel=1e-5)


def test_half_precision_does_not_overflow() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 64, 8, 8, generator=gen)
    w = torch.randn(4, 64, 3, 3, generator=gen) / 24
    mask = torch.zeros(1, 64, 8, 8)
    mask[..., 3, 3] = 1e-5  # sum(1)/sum(M) = 576/(64e-5) ≈ 9e5, beyond float16's 65504
    y32, _ = weighted_conv2d(x, mask, w, None, 1, 1)
    y16, _ = weighted_conv2d(x.half(), mask, w.half(), None, 1, 1)
    assert y16.dtype == torch.float16
    assert torch.isfinite(y16).all()
    assert_close(y16.float(), y32, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("kind", CONV_KINDS.names())
def test_factory_builds_each_kind_with_nn_conv2d_parameters(kind: str) -> None:
    conv = wmi.create_conv(kind, 3, 6, 5, stride=2, padding=2)
    assert isinstance(conv, load(CONV_KINDS[kind].layer))
    assert conv.weight.shape[1:] == (3, 5, 5) and conv.bias is not None
    y, m = conv(torch.rand(2, 3, 20, 20), torch.ones(2, 3, 20, 20))
    assert y.shape == (2, 6, 10, 10) and m.shape == (2, 1, 10, 10) and m.dtype == torch.float32


def test_factory_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown conv kind 'wieghted'"):
        wmi.create_conv("wieghted", 3, 3, 3)


@pytest.mark.parametrize(
    ("x", "mask", "message"),
    [
        (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 7), r"mask must have shape \(1, 1, 8, 8\)"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 2, 8, 8), "mask must have 1 or 3 channels"),
        (torch.rand(1, 3, 8, 8), torch.ones(2, 1, 8, 8), "mask must have shape"),
        (torch.ones(1, 3, 8, 8, dtype=torch.uint8), torch.ones(1, 1, 8, 8), "x must be a float"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.bool), "mask must be a float"),
        (torch.rand(3, 8, 8), torch.ones(1, 8, 8), r"x must have shape \(N, C, H, W\)"),
    ],
)
@pytest.mark.parametrize("kind", CONV_KINDS.names())
def test_bad_input_is_a_clear_value_error(kind, x, mask, message) -> None:
    conv = wmi.create_conv(kind, 3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=message):
        conv(x, mask)


def test_public_api_names() -> None:
    import wmi.functional as wf

    assert wmi.functional.weighted_conv2d is weighted_conv2d
    assert wf.partial_conv2d is partial_conv2d
    assert wmi.create_conv("weighted", 1, 1, 1).__class__ is wmi.WeightedConv2d
