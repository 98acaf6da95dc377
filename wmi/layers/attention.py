"""Contextual attention of DeepFill (Yu et al., CVPR 2018), as the official TensorFlow code does it.

The function follows ``contextual_attention`` of JiahuiYu/generative_inpainting
(``inpaint_ops.py``, identical on the v1.0.0 branch and on master) step by step:

1. raw ``2·rate × 2·rate`` patches of the full-resolution background ``b`` (stride
   ``rate·stride``, TF 'SAME' zero padding) are kept for pasting back;
2. ``f``, ``b`` and the mask are downsampled by ``rate`` with TF1's
   ``resize_nearest_neighbor(align_corners=True)`` (:func:`resize_nearest_tf`, the exact pixels
   it picks);
3. ``ksize × ksize`` patches of the downsampled ``b`` are the matching kernels, each divided by
   ``max(‖patch‖, 1e-4)`` (``f`` is not normalised), and are correlated with ``f``;
4. the scores are fused with a ``fuse_k × fuse_k`` identity kernel over the flattened
   (foreground, background) score matrix, once in row-major and once in column-major order;
5. scores of background patches that touch the hole are multiplied by 0, a softmax over all
   background patches with ``softmax_scale`` follows, and the hole patches are multiplied by 0
   again (so they take part in the softmax's denominator with a score of 0, as in the original);
6. the attention map pastes the raw patches back with a transposed convolution, divided by 4.

Matching and pasting are batched matrix products over all samples at once (the official op
loops over the batch): ``(N, P, C·k²) @ (N, C·k², L)`` scores, then the ``(N, P, L)`` attention
times the ``(N, L, C·(2r)²)`` raw patches, overlap-added with ``F.fold`` (the transposed
convolution).

Unlike the official op, each sample may have its own mask (the official op uses the first
sample's mask for the whole batch); with one mask for the batch both give the same result.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ContextualAttention", "contextual_attention", "resize_nearest_tf", "same_padding"]


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding (before, after) for one dimension.

    The output has ``ceil(size / stride)`` samples; the total padding
    ``max((out - 1)·stride + (kernel - 1)·dilation + 1 - size, 0)`` is split with the smaller
    half before, the larger after (PyTorch's symmetric ``padding=`` differs when it is odd).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _nearest_index(size_in: int, size_out: int, align_corners: bool) -> np.ndarray:
    """Source index of each output pixel of TF1's legacy nearest-neighbour resize (float32)."""
    if align_corners and size_out > 1:
        scale = np.float32(size_in - 1) / np.float32(size_out - 1)
    else:
        scale = np.float32(size_in) / np.float32(size_out)
    pos = np.arange(size_out, dtype=np.float32) * np.float32(scale)
    if align_corners:
        low = np.floor(pos)
        idx = low + (pos - low >= 0.5)  # roundf: halves away from zero
    else:
        idx = np.floor(pos)
    return np.minimum(idx.astype(np.int64), size_in - 1)


def resize_nearest_tf(x: Tensor, size: tuple[int, int], align_corners: bool = True) -> Tensor:
    """``tf.compat.v1.image.resize_nearest_neighbor`` (half_pixel_centers=False) on NCHW tensors.

    neuralgym's ``resize`` (used by the official DeepFill code for the generator's 2×
    upsampling, the mask resizing and contextual attention's downsampling) passes
    ``align_corners=True``: output pixel ``i`` takes input pixel
    ``round(i · (in - 1) / (out - 1))`` (float32, halves rounded up), which is not the plain
    ``floor(i · in / out)`` of ``F.interpolate(mode="nearest")``.

    Args:
        x: ``(N, C, H, W)``, any dtype.
        size: output ``(height, width)``.
        align_corners: TF1's flag (neuralgym's default: True).

    Returns:
        ``(N, C, size[0], size[1])``, pixels of ``x`` (differentiable: a gather).
    """
    h, w = x.shape[-2:]
    rows = torch.from_numpy(_nearest_index(h, size[0], align_corners)).to(x.device)
    cols = torch.from_numpy(_nearest_index(w, size[1], align_corners)).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _patches(x: Tensor, kernel: int, stride: int) -> Tensor:
    """``tf.extract_image_patches`` with 'SAME' zero padding: ``(N, L, C, kernel, kernel)``."""
    n, c, h, w = x.shape
    ph, pw = same_padding(h, kernel, stride), same_padding(w, kernel, stride)
    x = F.pad(x, (*pw, *ph))
    cols = F.unfold(x, kernel, stride=stride)  # (N, C·k·k, L)
    return cols.transpose(1, 2).reshape(n, -1, c, kernel, kernel)


def _fuse_diagonal(scores: Tensor, k: int) -> Tensor:
    """Correlate ``(N, P, Q)`` with a ``k × k`` identity kernel, TF 'SAME' zero padding."""
    before = (k - 1) // 2
    p, q = scores.shape[-2:]
    padded = F.pad(scores, (before, k - 1 - before, before, k - 1 - before))
    return sum(padded[:, i : i + p, i : i + q] for i in range(k))


def _fuse(scores: Tensor, f_hw: tuple[int, int], b_hw: tuple[int, int], k: int) -> Tensor:
    """The official two-pass fuse of ``(N, hf·wf, hb·wb)`` scores (row-major, then column-major)."""
    n = scores.shape[0]
    (hf, wf), (hb, wb) = f_hw, b_hw
    scores = _fuse_diagonal(scores, k)
    scores = scores.reshape(n, hf, wf, hb, wb).permute(0, 2, 1, 4, 3).reshape(n, wf * hf, -1)
    scores = _fuse_diagonal(scores, k)
    return scores.reshape(n, wf, hf, wb, hb).permute(0, 2, 1, 4, 3).reshape(n, hf * wf, -1)


def _known_patches(
    mask: Tensor | None,
    size: tuple[int, int],
    n: int,
    ksize: int,
    stride: int,
    rate: int,
    like: Tensor,
) -> Tensor:
    """``(N, L)``: 1 where the patch's whole window of the downsampled mask is known ('mm')."""
    if mask is None:
        hole = like.new_zeros(1, 1, *size)
    else:
        hm, wm = mask.shape[-2:]
        small = (int(hm * (1.0 / rate)), int(wm * (1.0 / rate)))
        hole = 1.0 - resize_nearest_tf(mask.to(like.dtype), small)
    windows = _patches(hole, ksize, stride).flatten(2)  # padding counts as known, as in TF
    known = (windows.sum(-1) == 0).to(like.dtype)
    return known.expand(n, -1)


def _paste(cols: Tensor, size: tuple[int, int], grid: tuple[int, int], rate: int) -> Tensor:
    """Overlap-add ``(N, P, C·2r·2r)`` patches on the ``grid`` with stride ``rate`` and crop the
    TF 'SAME' padding: ``tf.nn.conv2d_transpose(..., strides=rate, padding='SAME')``."""
    k = 2 * rate
    full = ((grid[0] - 1) * rate + k, (grid[1] - 1) * rate + k)
    out = F.fold(cols.transpose(1, 2), full, k, stride=rate)
    top, left = same_padding(size[0], k, rate)[0], same_padding(size[1], k, rate)[0]
    return out[..., top : top + size[0], left : left + size[1]]


def _check(f: Tensor, b: Tensor, mask: Tensor | None, rate: int) -> None:
    if f.dim() != 4 or b.dim() != 4 or f.shape[:2] != b.shape[:2]:
        raise ValueError(
            f"f and b must be (N, C, H, W) with the same N and C, got {tuple(f.shape)} and "
            f"{tuple(b.shape)}"
        )
    for name, t in (("f", f), ("b", b)):
        if t.shape[-1] % rate or t.shape[-2] % rate:
            raise ValueError(
                f"{name}'s height and width must be multiples of rate={rate}, got "
                f"{tuple(t.shape[-2:])}"
            )
    if mask is not None and (
        mask.dim() != 4
        or mask.shape[1] != 1
        or mask.shape[0] not in (1, b.shape[0])
        or mask.shape[-2:] != b.shape[-2:]
    ):
        raise ValueError(
            f"mask must be (N, 1, H, W) or (1, 1, H, W) with b's height and width "
            f"{tuple(b.shape[-2:])}, got {tuple(mask.shape)}"
        )


def contextual_attention(
    f: Tensor,
    b: Tensor,
    mask: Tensor | None = None,
    ksize: int = 3,
    stride: int = 1,
    rate: int = 2,
    fuse_k: int = 3,
    softmax_scale: float = 10.0,
    fuse: bool = True,
) -> Tensor:
    """Fill ``f`` with patches of ``b`` weighted by their cosine similarity (DeepFill v1/v2).

    Args:
        f: foreground features ``(N, C, H, W)``, any range (DeepFill: post-ReLU features).
        b: background features ``(N, C, Hb, Wb)``; DeepFill passes ``b = f``.
        mask: validity of ``b`` (1 = known, 0 = hole), ``(N, 1, Hb, Wb)`` or ``(1, 1, Hb, Wb)``
            for the whole batch, values in [0, 1]; None: everything is known. A background patch
            is used only if its whole ``ksize × ksize`` window of the downsampled mask is 1.
            The official op reads the first sample's mask for the whole batch; here each sample
            uses its own (the same result when all masks are equal).
        ksize: matching patch size on the downsampled maps.
        stride: patch stride on the downsampled maps (the official op only runs with 1).
        rate: downsampling factor of matching; pasted patches are ``2·rate`` pixels wide.
        fuse_k: size of the identity kernel that fuses neighbouring scores.
        softmax_scale: temperature of the softmax over background patches.
        fuse: apply the fuse step.

    Returns:
        ``(N, C, H, W)``, like ``f``: the sum of ``b``'s raw patches weighted by attention,
        divided by 4 (the official constant).

    Raises:
        ValueError: on shapes that do not fit (H, W, Hb, Wb must be multiples of ``rate``).
    """
    _check(f, b, mask, rate)
    n, _, h, w = f.shape
    raw = _patches(b, 2 * rate, rate * stride)  # (N, L, C, 2r, 2r), pasted back
    fs = resize_nearest_tf(f, (int(h * (1.0 / rate)), int(w * (1.0 / rate))))
    bs = resize_nearest_tf(b, (int(b.shape[-2] / rate), int(b.shape[-1] / rate)))
    w_patches = _patches(bs, ksize, stride)  # (N, L, C, k, k)
    grid = (-(-bs.shape[-2] // stride), -(-bs.shape[-1] // stride))
    norms = w_patches.flatten(2).norm(dim=-1).clamp_min(1e-4)
    kernels = (w_patches / norms[..., None, None, None]).flatten(2)  # (N, L, C·k·k)
    scores = torch.bmm(_patches(fs, ksize, 1).flatten(2), kernels.transpose(1, 2))  # (N, P, L)
    if fuse:
        scores = _fuse(scores, tuple(fs.shape[-2:]), grid, fuse_k)
    known = _known_patches(mask, tuple(bs.shape[-2:]), n, ksize, stride, rate, scores)[:, None]
    attn = torch.softmax(scores * known * softmax_scale, dim=-1) * known
    return _paste(torch.bmm(attn, raw.flatten(2)), (h, w), tuple(fs.shape[-2:]), rate) / 4.0


class ContextualAttention(nn.Module):
    """Module form of :func:`contextual_attention` (no parameters).

    ``forward(f, b=None, mask=None)``: ``b`` defaults to ``f`` (as DeepFill uses it); shapes and
    mask as for :func:`contextual_attention`.
    """

    def __init__(
        self,
        ksize: int = 3,
        stride: int = 1,
        rate: int = 2,
        fuse_k: int = 3,
        softmax_scale: float = 10.0,
        fuse: bool = True,
    ) -> None:
        super().__init__()
        self.ksize, self.stride, self.rate = ksize, stride, rate
        self.fuse_k, self.softmax_scale, self.fuse = fuse_k, softmax_scale, fuse

    def forward(self, f: Tensor, b: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        return contextual_attention(
            f,
            f if b is None else b,
            mask,
            self.ksize,
            self.stride,
            self.rate,
            self.fuse_k,
            self.softmax_scale,
            self.fuse,
        )

    def extra_repr(self) -> str:
        return (
            f"ksize={self.ksize}, stride={self.stride}, rate={self.rate}, fuse_k={self.fuse_k}, "
            f"softmax_scale={self.softmax_scale}, fuse={self.fuse}"
        )
