from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import wmi
from wmi.kinds import CONV_KINDS


def small_net(conv: str, norm: str = "weighted", layers: int = 4) -> wmi.InpaintingUNet:
    torch.manual_seed(0)
    return wmi.InpaintingUNet(
        conv=conv, norm=norm if conv != "plain" else "batch", layers=layers, base_channels=8
    )


def pconv_unet_parameter_count(layers: int, base: int = 64, image: int = 3) -> int:
    """Count from the architecture of docs/paper.md#the-network-and-the-training-recipe,
    independently of the code."""
    kernels = [7, 5, 5, 3, 3, 3, 3, 3][:layers]
    chans = [base * 2 ** min(i, 3) for i in range(layers)]
    count, prev = 0, image
    for i, (k, ch) in enumerate(zip(kernels, chans, strict=True)):
        count += k * k * prev * ch + (2 * ch if i > 0 else 0)  # no BN in the first layer
        prev = ch
    skips = [image, *chans[:-1]]
    for i in reversed(range(layers)):
        out = image if i == 0 else skips[i]
        count += 9 * (prev + skips[i]) * out + (out if i == 0 else 2 * out)  # bias | BN
        prev = skips[i]
    return count


@pytest.mark.parametrize(("layers", "millions"), [(7, 25.8), (8, 32.9)])
def test_parameter_count_matches_the_pconv_unet(layers: int, millions: float) -> None:
    net = wmi.InpaintingUNet(layers=layers)
    n = sum(p.numel() for p in net.parameters())
    assert n == pconv_unet_parameter_count(layers)
    assert n / 1e6 == pytest.approx(millions, abs=0.05)


@pytest.mark.parametrize("conv", CONV_KINDS.names())
def test_output_shape_for_every_conv_kind(conv: str) -> None:
    net = small_net(conv)
    out = net(torch.rand(2, 3, 32, 48), (torch.rand(2, 1, 32, 48) > 0.3).float())
    assert out.shape == (2, 3, 32, 48)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("norm", ["weighted", "batch", "instance", "none"])
def test_every_norm_kind(norm: str) -> None:
    net = wmi.InpaintingUNet(conv="weighted", norm=norm, layers=3, base_channels=4)
    out = net(torch.rand(2, 3, 16, 16), torch.ones(2, 3, 16, 16))
    assert out.shape == (2, 3, 16, 16)


@pytest.mark.parametrize("conv", CONV_KINDS.names())
@pytest.mark.parametrize("train", [True, False])
def test_hole_pixels_never_reach_the_output(conv: str, train: bool) -> None:
    net = small_net(conv).train(train)
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 32, 32, generator=gen)
    mask = (torch.rand(2, 1, 32, 32, generator=gen) > 0.5).float()
    other = torch.where(mask.bool(), image, torch.rand(2, 3, 32, 32, generator=gen) * 100)
    with torch.no_grad():
        out1 = net(image, mask)
        out2 = net(other, mask)
    assert torch.equal(out1, out2)
    assert not torch.equal(image, other)


def test_size_not_a_multiple_names_the_nearest_valid_size() -> None:
    net = wmi.InpaintingUNet(layers=7, base_channels=4)
    with pytest.raises(ValueError, match=r"300×260 is not a multiple of 2\*\*7 = 128.*256×256"):
        net(torch.rand(1, 3, 300, 260), torch.ones(1, 1, 300, 260))


def test_unknown_kinds_and_bad_masks() -> None:
    with pytest.raises(ValueError, match="unknown conv kind"):
        wmi.InpaintingUNet(conv="dilated")
    with pytest.raises(ValueError, match="unknown norm kind"):
        wmi.InpaintingUNet(norm="layer")
    net = small_net("weighted")
    with pytest.raises(ValueError, match="mask must have shape"):
        net(torch.rand(1, 3, 32, 32), torch.ones(1, 1, 16, 16))


def test_skip_concatenation_is_exact() -> None:
    """Masking each part and passing the channel-weighted mean mask equals a per-channel mask."""
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 5, 8, 8, generator=gen), torch.randn(2, 3, 8, 8, generator=gen)
    ma = torch.rand(2, 1, 8, 8, generator=gen)
    mb = (torch.rand(2, 1, 8, 8, generator=gen) > 0.5).float()
    net = small_net("weighted")
    x, m = net._concat(a, ma, b, mb)
    conv = wmi.WeightedConv2d(8, 4, 3, padding=1)
    y, new_m = conv(x, m, premasked=True)
    full_mask = torch.cat([ma.expand(-1, 5, -1, -1), mb.expand(-1, 3, -1, -1)], dim=1)
    y_ref, m_ref = conv(torch.cat([a, b], dim=1), full_mask)
    assert_close(y, y_ref)
    assert_close(new_m, m_ref)


def test_per_channel_input_mask() -> None:
    net = small_net("weighted").eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.ones(1, 3, 32, 32)
    mask[:, 0, 8:20, 8:20] = 0
    with torch.no_grad():
        out = net(image, mask)
        changed = net(torch.where(mask.bool(), image, 5.0), mask)
    assert torch.equal(out, changed)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "base"),
    # the full network in bfloat16; float16 convolutions are very slow on CPU, and the mask
    # ratios that overflow float16 do not depend on the width, so a narrow network shows it
    [(torch.bfloat16, 64), (torch.float16, 4)],
)
def test_full_unet_under_autocast_with_a_90_percent_hole_is_finite(
    dtype: torch.dtype, base: int
) -> None:
    torch.manual_seed(0)
    net = wmi.InpaintingUNet(conv="weighted", norm="weighted", layers=7, base_channels=base)
    image = torch.rand(2, 3, 256, 256)
    mask = torch.ones(2, 1, 256, 256)
    mask[:, :, 12:-12, 12:-12] = 0  # about 82 % hole, all of the centre
    mask[1, :, :, :] = 0
    mask[1, :, :40, :40] = 1  # sample 2: 97.6 % hole in one corner
    with torch.autocast("cpu", dtype=dtype):
        out = net(image, mask)
        out.float().mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
