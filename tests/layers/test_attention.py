"""Contextual attention against a float64 loop reference and against the official TF op."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from wmi.layers.attention import ContextualAttention, contextual_attention, resize_nearest_tf

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "contextual_attention_reference.npz"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tf_same(size: int, k: int, s: int) -> int:
    """Padding before, TF 'SAME'."""
    out = math.ceil(size / s)
    return max((out - 1) * s + k - size, 0) // 2


def _nearest(size_in: int, size_out: int) -> list[int]:
    """align_corners=True nearest neighbour: round(i·(in-1)/(out-1)), halves up."""
    scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    return [min(math.floor(i * scale + 0.5), size_in - 1) for i in range(size_out)]


def _down(x: torch.Tensor, rate: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., _nearest(h, h // rate), :][..., _nearest(w, w // rate)]


def _window(x: torch.Tensor, i: int, j: int, k: int, pad: int) -> torch.Tensor:
    """x[:, i-pad : i-pad+k, j-pad : j-pad+k] with zeros outside: (C, k, k)."""
    c, h, w = x.shape
    out = x.new_zeros(c, k, k)
    for a in range(k):
        for b in range(k):
            y, z = i - pad + a, j - pad + b
            if 0 <= y < h and 0 <= z < w:
                out[:, a, b] = x[:, y, z]
    return out


def _fuse_flat(s: torch.Tensor) -> torch.Tensor:
    """3×3 identity-kernel correlation of a 2-D matrix, zero padding."""
    p, q = s.shape
    out = torch.zeros_like(s)
    for d in (-1, 0, 1):
        for i in range(p):
            if 0 <= i + d < p:
                lo, hi = max(0, -d), min(q, q - d)
                out[i, lo:hi] += s[i + d, lo + d : hi + d]
    return out


def reference(f, b, validity, rate=2, softmax_scale=10.0, fuse=True):
    """Loops over samples, straight from the description (ksize 3, stride 1, fuse_k 3)."""
    f, b = f.double(), b.double()
    n, _, h, w = f.shape
    out = torch.zeros_like(f)
    k2 = 2 * rate
    for s in range(n):
        fs, bs = _down(f[s], rate), _down(b[s], rate)
        hf, wf = fs.shape[-2:]
        hb, wb = bs.shape[-2:]
        hole = torch.zeros(hb, wb, dtype=torch.float64)
        if validity is not None:
            hole = 1 - _down(validity[s if validity.shape[0] > 1 else 0, 0].double(), rate)
        patches, known = [], []
        for i in range(hb):
            for j in range(wb):
                p = _window(bs, i, j, 3, 1)
                patches.append(p / max(p.norm().item(), 1e-4))
                known.append(float(_window(hole[None], i, j, 3, 1).sum() == 0))
        kn = torch.tensor(known, dtype=torch.float64)
        scores = torch.zeros(hf * wf, hb * wb, dtype=torch.float64)
        for i in range(hf):
            for j in range(wf):
                fw = _window(fs, i, j, 3, 1)
                scores[i * wf + j] = torch.stack([(fw * p).sum() for p in patches])
        if fuse:
            scores = _fuse_flat(scores)
            t = scores.reshape(hf, wf, hb, wb).permute(1, 0, 3, 2).reshape(hf * wf, hb * wb)
            t = _fuse_flat(t)
            scores = t.reshape(wf, hf, wb, hb).permute(1, 0, 3, 2).reshape(hf * wf, hb * wb)
        logits = scores * kn * softmax_scale
        e = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        attn = e / e.sum(dim=1, keepdim=True) * kn
        pb = _tf_same(b.shape[-2], k2, rate), _tf_same(b.shape[-1], k2, rate)
        raw = [
            _window(b[s], i * rate - pb[0], j * rate - pb[1], k2, 0)
            for i in range(hb)
            for j in range(wb)
        ]
        ph, pw = _tf_same(h, k2, rate), _tf_same(w, k2, rate)
        for i in range(hf):
            for j in range(wf):
                patch = sum(attn[i * wf + j, q] * raw[q] for q in range(hb * wb))
                for a in range(k2):
                    for bb in range(k2):
                        y, x = i * rate - ph + a, j * rate - pw + bb
                        if 0 <= y < h and 0 <= x < w:
                            out[s, :, y, x] += patch[:, a, bb]
    return out / 4


def _box_validity(n, h, w, boxes):
    v = torch.ones(n, 1, h, w)
    for s, (t, le, bh, bw) in enumerate(boxes):
        v[s, :, t : t + bh, le : le + bw] = 0
    return v


def test_resize_nearest_tf_picks_the_official_pixels():
    x = torch.arange(8.0).reshape(1, 1, 1, 8)
    assert resize_nearest_tf(x, (1, 4))[0, 0, 0].tolist() == [0, 2, 5, 7]
    x4 = torch.arange(4.0).reshape(1, 1, 1, 4)
    assert resize_nearest_tf(x4, (1, 8))[0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert resize_nearest_tf(x4, (1, 3))[0, 0, 0].tolist() == [0, 2, 3]  # 1.5 rounds up
    assert resize_nearest_tf(x, (1, 4), align_corners=False)[0, 0, 0].tolist() == [0, 2, 4, 6]


@pytest.mark.parametrize(
    ("shape", "boxes", "fuse"),
    [
        ((2, 3, 16, 16), [(0, 5, 7, 9), (0, 5, 7, 9)], True),  # hole on the top border
        ((2, 2, 20, 28), [(4, 0, 8, 10), (9, 14, 11, 14)], True),  # non-square, per sample
        ((1, 2, 12, 8), [(2, 2, 5, 4)], False),
    ],
)
def test_matches_float64_reference(shape, boxes, fuse):
    f = torch.randn(shape, generator=_gen(0), dtype=torch.float64)
    v = _box_validity(shape[0], shape[2], shape[3], boxes).double()
    got = contextual_attention(f, f, v, fuse=fuse)
    torch.testing.assert_close(got, reference(f, f, v, fuse=fuse), rtol=1e-9, atol=1e-9)


def test_separate_background_no_mask_and_scale():
    g = _gen(1)
    f = torch.randn(2, 2, 8, 12, generator=g, dtype=torch.float64)
    b = torch.randn(2, 2, 8, 12, generator=g, dtype=torch.float64)
    got = contextual_attention(f, b, None, softmax_scale=3.0)
    torch.testing.assert_close(got, reference(f, b, None, softmax_scale=3.0))


def test_one_mask_for_the_batch_equals_the_same_mask_per_sample():
    f = torch.randn(3, 4, 16, 16, generator=_gen(2))
    v = _box_validity(1, 16, 16, [(3, 4, 8, 8)])
    one = contextual_attention(f, f, v)
    torch.testing.assert_close(one, contextual_attention(f, f, v.expand(3, -1, -1, -1)))


@pytest.mark.parametrize(
    "name",
    ["square_border_hole", "nonsquare_20x28", "nofuse_separate_b", "no_mask_scale5", "rate1"],
)
def test_matches_official_tensorflow_outputs(name):
    kwargs = {
        "square_border_hole": {"rate": 2},
        "nonsquare_20x28": {"rate": 2},
        "nofuse_separate_b": {"rate": 2, "fuse": False},
        "no_mask_scale5": {"rate": 2, "softmax_scale": 5.0},
        "rate1": {"rate": 1},
    }[name]
    data = np.load(DATA)

    def nchw(key):
        return torch.from_numpy(data[key]).permute(0, 3, 1, 2)

    f = nchw(f"{name}/f")
    b = nchw(f"{name}/b") if f"{name}/b" in data else f
    validity = 1 - nchw(f"{name}/mask") if f"{name}/mask" in data else None  # official: 1 = hole
    got = contextual_attention(f, b, validity, **kwargs)
    torch.testing.assert_close(got, nchw(f"{name}/y"), rtol=1e-5, atol=2e-5)


def test_gradcheck():
    g = _gen(3)
    f = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    v = _box_validity(2, 8, 8, [(0, 0, 4, 4), (4, 2, 4, 4)]).double()
    assert torch.autograd.gradcheck(
        lambda f, b: contextual_attention(f, b, v), (f, b), fast_mode=True
    )


def test_module_defaults_b_to_f():
    f = torch.randn(1, 2, 8, 8, generator=_gen(4))
    module = ContextualAttention(rate=2, softmax_scale=10.0)
    assert "rate=2" in repr(module)
    torch.testing.assert_close(module(f), contextual_attention(f, f))


@pytest.mark.parametrize(
    ("f_shape", "mask_shape"),
    [((1, 2, 9, 8), None), ((1, 2, 8, 8), (2, 1, 8, 8)), ((1, 2, 8, 8), (1, 1, 4, 4))],
)
def test_rejects_shapes_that_do_not_fit(f_shape, mask_shape):
    f = torch.zeros(f_shape)
    mask = None if mask_shape is None else torch.ones(mask_shape)
    with pytest.raises(ValueError):
        contextual_attention(f, f, mask)


def test_stride_2_runs_on_a_coarser_patch_grid():
    """Not an official setting (the TF op only runs with stride 1): shapes and finiteness only."""
    f = torch.rand(2, 3, 16, 24, generator=_gen(6))
    v = _box_validity(2, 16, 24, [(4, 5, 5, 7), (0, 0, 8, 8)])
    out = contextual_attention(f, f, v, stride=2)
    assert out.shape == f.shape and torch.isfinite(out).all()


def test_public_name_and_defaults_are_the_official_ones() -> None:
    import inspect

    import wmi

    params = inspect.signature(wmi.functional.contextual_attention).parameters
    official = {
        "ksize": 3,
        "stride": 1,
        "rate": 2,
        "fuse_k": 3,
        "softmax_scale": 10.0,
        "fuse": True,
    }
    assert {name: params[name].default for name in official} == official
    assert list(params)[:3] == ["f", "b", "mask"]
