"""The PConv loss (eq. 7) term by term against hand computations in float64 numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wmi.errors import WmiError
from wmi.training.losses import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LOSS_WEIGHTS,
    InpaintingLoss,
    VGG16Features,
    build_loss,
    gram_matrix,
    resolve_vgg_weights,
    total_variation_loss,
)


def _batch(seed: int = 0, n: int = 2, h: int = 6, w: int = 7):
    g = torch.Generator().manual_seed(seed)
    out = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    gt = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    mask = torch.ones(n, 1, h, w, dtype=torch.float64)
    mask[0, :, 1:3, 2:5] = 0
    mask[1, :, 4:, 0] = 0  # touches the border
    mask[1, :, 0, 6] = 0
    return out, gt, mask


def _tv_by_hand(comp: np.ndarray, hole: np.ndarray) -> float:
    """Per-image TV exactly as specified, with explicit loops: comp (C, H, W), hole (H, W)."""
    c, h, w = comp.shape
    region = np.zeros_like(hole)
    for i in range(h):
        for j in range(w):
            region[i, j] = any(
                hole[y, x]
                for y in range(max(0, i - 1), min(h, i + 2))
                for x in range(max(0, j - 1), min(w, j + 2))
            )
    total = 0.0
    for i in range(h):
        for j in range(w):
            if j + 1 < w and region[i, j] and region[i, j + 1]:
                total += sum(abs(comp[k, i, j + 1] - comp[k, i, j]) for k in range(c))
            if i + 1 < h and region[i, j] and region[i + 1, j]:
                total += sum(abs(comp[k, i + 1, j] - comp[k, i, j]) for k in range(c))
    return total / (c * h * w)


def _gram_by_hand(f: np.ndarray) -> np.ndarray:
    c, h, w = f.shape
    g = np.zeros((c, c))
    for a in range(c):
        for b in range(c):
            g[a, b] = sum(f[a, i, j] * f[b, i, j] for i in range(h) for j in range(w))
    return g / (c * h * w)


class TwoScales(nn.Module):
    """A stand-in feature extractor whose features are easy to compute by hand."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [2 * x, F.avg_pool2d(x, 2)]

    @staticmethod
    def numpy(x: np.ndarray) -> list[np.ndarray]:  # x (C, H, W)
        c, h, w = x.shape
        pooled = x[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).mean((2, 4))
        return [2 * x, pooled]


def test_pixel_and_tv_terms_by_hand() -> None:
    out, gt, mask = _batch()
    terms = InpaintingLoss(None)(out, gt, mask)
    o, g, m = out.numpy(), gt.numpy(), mask.numpy()
    n = o.shape[0]
    # Means over every element (N·C·H·W), not over the hole only: PConv's definition.
    valid = np.mean([abs(m[i, 0] * (o[i] - g[i])) for i in range(n)])
    hole = np.mean([abs((1 - m[i, 0]) * (o[i] - g[i])) for i in range(n)])
    comp = m * g + (1 - m) * o
    tv = np.mean([_tv_by_hand(comp[i], m[i, 0] < 0.5) for i in range(n)])
    assert terms["valid"].item() == pytest.approx(valid, rel=1e-9)
    assert terms["hole"].item() == pytest.approx(hole, rel=1e-9)
    assert terms["tv"].item() == pytest.approx(tv, rel=1e-9)
    assert tv > 0 and hole > 0
    assert set(terms) == {"total", "valid", "hole", "tv"}
    assert terms["total"].item() == pytest.approx(valid + 6 * hole + 0.1 * tv, rel=1e-9)


def test_tv_counts_only_pairs_with_both_pixels_in_the_dilated_hole() -> None:
    comp = torch.zeros(1, 1, 5, 5)
    mask = torch.ones(1, 1, 5, 5)
    mask[0, 0, 2, 2] = 0  # dilated hole: rows/cols 1..3
    comp[0, 0, 2, 4] = 1.0  # just outside the dilated hole: its pairs must not count
    assert total_variation_loss(comp, mask).item() == 0.0
    comp[0, 0, 2, 3] = 1.0  # inside: pairs (2,2)-(2,3), (1,3)-(2,3), (2,3)-(3,3) count
    assert total_variation_loss(comp, mask).item() == pytest.approx(3 / 25)


def test_gram_matrix_by_hand_and_float32_under_autocast() -> None:
    f = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    g = gram_matrix(f)
    for i in range(2):
        np.testing.assert_allclose(g[i].numpy(), _gram_by_hand(f[i].double().numpy()), rtol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(f.to(torch.bfloat16)).dtype == torch.float32


def test_perceptual_and_style_terms_by_hand() -> None:
    out, gt, mask = _batch(seed=3, h=6, w=8)
    loss = InpaintingLoss(TwoScales())
    terms = loss(out, gt, mask)
    o, g, m = out.numpy(), gt.numpy(), mask.numpy()
    comp = m * g + (1 - m) * o
    n = o.shape[0]
    perceptual = style_out = style_comp = 0.0
    for layer in range(2):
        fo = np.stack([TwoScales.numpy(o[i])[layer] for i in range(n)])
        fc = np.stack([TwoScales.numpy(comp[i])[layer] for i in range(n)])
        fg = np.stack([TwoScales.numpy(g[i])[layer] for i in range(n)])
        perceptual += np.abs(fo - fg).mean() + np.abs(fc - fg).mean()
        gg = [_gram_by_hand(fg[i]) for i in range(n)]
        style_out += np.mean([np.abs(_gram_by_hand(fo[i]) - gg[i]) for i in range(n)])
        style_comp += np.mean([np.abs(_gram_by_hand(fc[i]) - gg[i]) for i in range(n)])
    assert terms["perceptual"].item() == pytest.approx(perceptual, rel=1e-9)
    assert terms["style_out"].item() == pytest.approx(style_out, rel=1e-9)
    assert terms["style_comp"].item() == pytest.approx(style_comp, rel=1e-9)
    assert style_out != pytest.approx(style_comp)  # the composite differs from the output
    w = LOSS_WEIGHTS
    expected = (
        w["valid"] * terms["valid"]
        + w["hole"] * terms["hole"]
        + w["perceptual"] * perceptual
        + w["style_out"] * style_out
        + w["style_comp"] * style_comp
        + w["tv"] * terms["tv"]
    )
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-9)
    assert loss.terms == tuple(terms)
    assert w == {
        "valid": 1.0,
        "hole": 6.0,
        "perceptual": 0.05,
        "style_out": 120.0,
        "style_comp": 120.0,
        "tv": 0.1,
    }


def test_composite_terms_send_no_gradient_to_known_pixels() -> None:
    out, gt, mask = _batch(seed=1)
    out = out.clone().requires_grad_(True)
    terms = InpaintingLoss(TwoScales())(out, gt, mask)
    (terms["tv"] + terms["style_comp"]).backward()
    known = mask.expand_as(out) > 0.5
    assert out.grad[known].abs().max().item() == 0.0
    assert out.grad[~known].abs().max().item() > 0.0


def _vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-style vgg16 state dict (random), with a classifier key to ignore."""
    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    state["features.17.weight"] = torch.zeros(512, 256, 3, 3)  # deeper layers: ignored
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def test_vgg16_features_load_torchvision_keys_and_normalize(tmp_path: Path) -> None:
    state = _vgg_state()
    torch.save(state, tmp_path / "vgg16.pth")
    vgg = VGG16Features.from_file(tmp_path / "vgg16.pth")
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training  # stays frozen inside a module put in train mode

    x = torch.rand(2, 3, 32, 24)
    f1, f2, f3 = vgg(x)
    assert f1.shape == (2, 64, 16, 12) and f2.shape == (2, 128, 8, 6) and f3.shape == (2, 256, 4, 3)
    # pool1 by hand from the file's tensors: ImageNet normalization, conv-relu twice, max pool.
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    h = (x - mean) / std
    for i in (0, 2):
        h = F.relu(
            F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1)
        )
    torch.testing.assert_close(f1, F.max_pool2d(h, 2), rtol=1e-5, atol=1e-5)


def test_vgg_weights_errors_name_the_ways_out(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WmiError) as info:
        resolve_vgg_weights(None)
    message = str(info.value)
    assert "--vgg-weights" in message and "--perceptual none" in message
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in message
    assert "\n" not in message
    with pytest.raises(WmiError, match="missing.pth: no such file"):
        build_loss("vgg16", tmp_path / "missing.pth")
    # a folder is searched for torchvision's file name, as --weights-dir is by wmi eval
    (tmp_path / "weights").mkdir()
    with pytest.raises(WmiError, match=f"no {tmp_path / 'weights' / 'vgg16-397923af.pth'}"):
        resolve_vgg_weights(tmp_path / "weights")
    (tmp_path / "weights" / "vgg16-397923af.pth").write_bytes(b"")
    assert resolve_vgg_weights(tmp_path / "weights") == tmp_path / "weights" / "vgg16-397923af.pth"
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(WmiError, match="other.pth: not a torchvision vgg16 state dict"):
        build_loss("vgg16", tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WmiError, match="junk.pth: not a readable VGG16 state dict"):
        build_loss("vgg16", tmp_path / "junk.pth")
    # issue 21, item 17: a text file said "(101)", torch's KeyError for the byte 'e'
    (tmp_path / "text.pth").write_text("hello\n")
    with pytest.raises(
        WmiError, match=r"text.pth: not a readable VGG16 state dict \(not a PyTorch"
    ):
        build_loss("vgg16", tmp_path / "text.pth")
    assert build_loss("none", None).features is None
    # The cache location is used when no path is given.
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(_vgg_state(), cache / "vgg16-397923af.pth")
    assert isinstance(build_loss("vgg16", None).features, VGG16Features)


def test_loss_under_bf16_autocast_is_float32_and_close() -> None:
    torch.manual_seed(0)
    vgg = VGG16Features()
    out, gt, mask = (t.float() for t in _batch(seed=2, h=16, w=16))
    loss = InpaintingLoss(vgg)
    ref = loss(out, gt, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss(out.to(torch.bfloat16), gt, mask)
    for key, value in low.items():
        assert value.dtype == torch.float32, key
        assert value.item() == pytest.approx(ref[key].item(), rel=0.05), key


def test_tv_term_is_the_tv_metric_of_wmi_eval() -> None:
    from wmi.eval.metrics import dilate_hole_3x3, total_variation

    out, gt, mask = _batch(seed=5, n=3, h=9, w=11)
    comp = mask * gt + (1 - mask) * out
    expected = np.mean(
        [
            total_variation(
                comp[i].permute(1, 2, 0).numpy(), dilate_hole_3x3(mask[i, 0].numpy() < 0.5)
            )
            for i in range(3)
        ]
    )
    assert total_variation_loss(comp, mask).item() == pytest.approx(expected, rel=1e-9)
