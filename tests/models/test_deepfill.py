"""DeepFill v1/v2 networks: official parameter counts, wmi's call, sizes, a short overfit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wmi.models.deepfill import (
    DeepFillV1Generator,
    DeepFillV2Generator,
    SameConv2d,
    SNPatchGANDiscriminator,
    WGANGlobalCritic,
    WGANLocalCritic,
    count_parameters,
)

GENERATORS = [DeepFillV1Generator, DeepFillV2Generator]
REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "deepfill_reference.npz"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(n=2, h=32, w=32, seed=0):
    g = _gen(seed)
    image = torch.rand(n, 3, h, w, generator=g)
    validity = torch.ones(n, 1, h, w)
    validity[0, :, h // 4 : h // 2, w // 4 : 3 * w // 4] = 0
    validity[-1, :, h // 2 :, : w // 2] = 0
    return image, validity


@pytest.mark.parametrize(
    ("network", "count"),
    [
        (DeepFillV1Generator(), 3_601_542),
        (DeepFillV2Generator(), 4_052_478),
        (SNPatchGANDiscriminator(), 5_946_816),
        (WGANLocalCritic(size=128), 4_339_329),
        (WGANGlobalCritic(size=256), 2_733_441),
    ],
    ids=["df1_g", "df2_g", "df2_d", "df1_local", "df1_global"],
)
def test_parameter_counts_equal_the_official_graphs(network, count):
    assert count_parameters(network) == count


def test_spectral_norm_vectors_are_buffers_not_parameters():
    d = SNPatchGANDiscriminator(cnum=8)
    buffers = [name for name, _ in d.named_buffers()]
    assert any(name.endswith("_u") for name in buffers)
    assert count_parameters(d) == sum(p.numel() for p in d.parameters())


@pytest.mark.parametrize("cls", GENERATORS)
def test_forward_takes_wmi_images_and_returns_both_stages(cls):
    torch.manual_seed(0)  # weights only; inputs come from their own generator
    net = cls(cnum=8).eval()
    image, validity = _batch(h=32, w=40)
    with torch.no_grad():
        x1, x2 = net.forward_stages(image, validity)
        out = net(image, validity)
    assert x1.shape == x2.shape == out.shape == image.shape
    torch.testing.assert_close(out, x2)
    assert float(x1.min()) >= 0 and float(x2.max()) <= 1


@pytest.mark.parametrize("cls", GENERATORS)
def test_pixels_inside_the_hole_are_never_seen(cls):
    net = cls(cnum=8).eval()
    image, validity = _batch()
    noise = torch.rand(image.shape, generator=_gen(5))
    other = image * validity + noise * (1 - validity)
    with torch.no_grad():
        torch.testing.assert_close(net(image, validity), net(other, validity))


def test_v1_stages_are_clipped_and_v2_stages_are_tanh():
    image, validity = _batch()
    v1 = DeepFillV1Generator(cnum=4)
    with torch.no_grad():
        v1.coarse[-1].conv.bias.fill_(5.0)  # conv17 far above 1
        x1, _ = v1.forward_signed(image * 2 - 1, validity)
    assert torch.equal(x1, torch.ones_like(x1))
    v2 = DeepFillV2Generator(cnum=4)
    with torch.no_grad():
        v2.coarse[-1].conv.bias.fill_(0.5)
        v2.coarse[-1].conv.weight.zero_()
        x1, _ = v2.forward_signed(image * 2 - 1, validity)
    torch.testing.assert_close(x1, torch.full_like(x1, torch.tanh(torch.tensor(0.5)).item()))


def test_v2_layers_are_gated_halves_and_v1_layers_are_not():
    v1, v2 = DeepFillV1Generator(cnum=8), DeepFillV2Generator(cnum=8)
    assert v1.coarse.conv1.conv.out_channels == v1.coarse.conv1.out_channels == 8
    assert v2.coarse.conv1.conv.out_channels == 8 and v2.coarse.conv1.out_channels == 4
    assert v2.coarse.conv17.conv.in_channels == 2  # conv16: cnum // 2 filters → 2 channels
    assert v1.hallucination.xconv1.conv.in_channels == 5  # [x, ones, mask]
    assert v2.hallucination.xconv1.conv.in_channels == 3


def test_same_conv_pads_like_tensorflow():
    conv = SameConv2d(1, 1, 3, stride=2)
    x = torch.randn(1, 1, 8, 8, generator=_gen(1))
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(conv(x), expected)
    dilated = SameConv2d(1, 1, 3, dilation=4)
    expected = F.conv2d(F.pad(x, (4, 4, 4, 4)), dilated.weight, dilated.bias, dilation=4)
    torch.testing.assert_close(dilated(x), expected)


@pytest.mark.parametrize("cls", [*GENERATORS, SNPatchGANDiscriminator, WGANLocalCritic])
def test_config_round_trips_through_json(cls):
    net = cls(cnum=4)
    rebuilt = cls.from_config(json.loads(json.dumps(net.config())))
    assert rebuilt.config() == net.config()
    assert count_parameters(rebuilt) == count_parameters(net)


@pytest.mark.parametrize("size", [(30, 32), (32, 4)])
def test_generators_reject_sizes_that_are_not_multiples_of_8(size):
    net = DeepFillV1Generator(cnum=4)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 3, *size), torch.ones(1, 1, *size))


def test_discriminator_and_critic_shapes():
    image, validity = _batch(h=64, w=128)
    assert SNPatchGANDiscriminator(cnum=4)(image, validity).shape == (2, 16, 1, 2)
    assert WGANGlobalCritic(cnum=4, size=(64, 128))(image).shape == (2, 1)
    local = WGANLocalCritic(cnum=4, size=32)
    assert local(image[..., :32, :32]).shape == (2, 1)
    with pytest.raises(ValueError, match="built for"):
        local(image)


def _overfit(cls, steps: int, cnum: int = 8) -> tuple[float, float]:
    torch.manual_seed(0)  # weights only
    net = cls(cnum=cnum)
    _, validity = _batch(n=2, h=32, w=32)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    colours = torch.rand(2, 3, 1, 1, generator=_gen(3))
    image = (colours * xx + (1 - colours) * yy).clamp(0, 1)  # smooth ramps: learnable
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)

    def l1() -> torch.Tensor:
        x1, x2 = net.forward_stages(image, validity)
        return (image - x1).abs().mean() + (image - x2).abs().mean()

    with torch.no_grad():
        first = float(l1())
    for _ in range(steps):
        opt.zero_grad()
        loss = l1()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return first, float(l1())


@pytest.mark.slow  # ~1-2 s on one free core, much more on 2 busy ones
@pytest.mark.parametrize("cls", GENERATORS)
def test_overfits_one_fixed_batch(cls):
    first, last = _overfit(cls, 30)
    assert last < 0.7 * first, (first, last)


def _official_weights(net, seed: int, scale: float) -> None:
    """The numpy draws of tests/fixtures/make_deepfill_reference.py, in creation order.

    Each layer draws its kernel (HWIO), then its bias; a dense layer is a 1×1 kernel.
    """
    rng = np.random.default_rng(seed)
    layers = [m for m in net.modules() if isinstance(m, (SameConv2d, torch.nn.Linear))]
    with torch.no_grad():
        for layer in layers:
            dense = isinstance(layer, torch.nn.Linear)
            k = 1 if dense else layer.kernel_size[0]
            cin, cout = (layer.in_features, 1) if dense else (layer.in_channels, layer.out_channels)
            kernel = scale * rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)
            bias = 0.1 * rng.standard_normal(cout)
            kernel = torch.from_numpy(kernel.astype(np.float32)).permute(3, 2, 0, 1)
            layer.weight.copy_(kernel[:, :, 0, 0] if dense else kernel)
            layer.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


@pytest.mark.parametrize(("version", "cls"), [(1, DeepFillV1Generator), (2, DeepFillV2Generator)])
def test_matches_the_official_tensorflow_graph(version, cls):
    """Same weights as the official build_inpaint_net in TF (cnum 8, 16×24, one hole)."""
    seed, (h, w), (top, left, bh, bw) = 7, (16, 24), (11, 10, 3, 6)
    rng = np.random.default_rng(seed)
    image = torch.from_numpy((rng.integers(-4, 5, (1, h, w, 3)) / 4).astype(np.float32))
    image = image.permute(0, 3, 1, 2)
    validity = torch.ones(1, 1, h, w)
    validity[..., top : top + bh, left : left + bw] = 0
    net = cls(cnum=8)
    _official_weights(net, seed + version, float(version))  # v2: gain 2, see the script
    with torch.no_grad():
        x1, x2 = net.forward_signed(image, validity)
    ref = np.load(REFERENCE)
    for got, key in ((x1, "x1"), (x2, "x2")):
        expected = torch.from_numpy(ref[f"v{version}/{key}"]).permute(0, 3, 1, 2)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "cls", "size"),
    [("local", WGANLocalCritic, (24, 16)), ("global", WGANGlobalCritic, (16, 40))],
)
def test_critics_match_the_official_tensorflow_graph(name, cls, size):
    """v1.0.0's critics with the script's weights: 'SAME' stride-2 convs, NHWC flatten, dense."""
    net = cls(cnum=4, size=size)
    _official_weights(net, 7 + 10, 1.0)
    ref = np.load(REFERENCE)
    x = torch.from_numpy(ref[f"{name}/x"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        got = net.forward_signed(x)
    torch.testing.assert_close(got, torch.from_numpy(ref[f"{name}/y"]), rtol=1e-4, atol=1e-4)
