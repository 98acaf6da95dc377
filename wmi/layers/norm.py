"""Weighted normalization (Kang et al., eqs. (4)–(6)): statistics weighted by the validity mask.

With mask M (1 = known) the statistics of a feature X are

* eq. (4): ``E(X) = E(X ⊙ M) / E(M)``
* eq. (6): ``Var(X) = E((X − μ)² ⊙ M) / E(M)`` (the paper's simplified form, used to normalize)

over (N, H, W) per channel for batch norm and over (H, W) per sample and channel for instance
norm. The running variance is updated with the unbiased form of eq. (5), ``Σm(x−μ)² / (V₁ −
V₂/V₁)`` with ``V₁ = Σm``, ``V₂ = Σm²``, which reduces to ``nn.BatchNorm2d``'s ``n/(n−1)``
correction when the mask is all ones, so an all-ones mask gives exactly ``nn.BatchNorm2d``.

A channel whose mask sums to zero in a batch has no statistics: it is normalized with the
running statistics (or left centred at 0 with unit variance when none are tracked), and the
running statistics are not updated for it, so no NaN can appear.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wmi.kinds import NORM_KINDS
from wmi.layers.conv import check_masked_input
from wmi.registry import load


def _weighted_moments(
    x: Tensor, mask: Tensor, dims: tuple[int, ...]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Weighted mean and variance (eqs. 4, 6–7) in float32 or wider, plus V₁ = Σm, V₂ = Σm².

    Shapes keep the reduced dims (size 1); the mask broadcasts over channels.
    """
    acc = torch.promote_types(x.dtype, torch.float32)
    xf, m = x.to(acc), mask.to(acc)
    v1 = m.sum(dims, keepdim=True)
    v2 = m.square().sum(dims, keepdim=True)
    has = v1 > 0
    denom = torch.where(has, v1, torch.ones_like(v1))
    # Eq. (7): Var = E(X²) − E(X)², with E(X²) = E(X ⊙ X ⊙ M) / E(M). One weighted product
    # serves both sums, so training keeps two activation-sized tensors for the backward pass
    # instead of four; in float32 the cancellation is harmless at the scale of activations.
    xm = xf * m
    mean = xm.sum(dims, keepdim=True) / denom
    var = ((xm * xf).sum(dims, keepdim=True) / denom - mean.square()).clamp_min(0.0)
    # A single-channel mask gives the same V₁, V₂ for every channel.
    return mean, var, v1.expand_as(mean), v2.expand_as(mean)


def weighted_batch_norm(
    x: Tensor,
    mask: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = True,
    momentum: float = 0.001,
    eps: float = 1e-8,
) -> Tensor:
    """Weighted batch normalization, eqs. (4)–(6).

    Args:
        x: features ``(N, C, H, W)``.
        mask: validity ``(N, 1, H, W)`` or ``(N, C, H, W)`` in [0, 1].
        running_mean, running_var: ``(C,)`` buffers updated in place when ``training``; if None,
            batch statistics are always used.
        weight, bias: affine parameters ``(C,)`` or None.
        training: use (and update the running averages with) the weighted batch statistics;
            otherwise use the running statistics, like ``nn.BatchNorm2d``.
        momentum: running average update rate (the paper's decay 0.999 is momentum 0.001).
        eps: added to the variance (paper: 1e-8).

    Returns:
        normalized features, same shape and dtype as x. Statistics are computed in float32.
    """
    check_masked_input(x, mask)
    c = x.shape[1]
    track = running_mean is not None and running_var is not None
    if training or not track:
        mean, var, v1, v2 = _weighted_moments(x, mask, (0, 2, 3))
        mean, var, v1, v2 = (t.view(c) for t in (mean, var, v1, v2))
        has = v1 > 0
        if track:
            with torch.no_grad():
                denom = v1 - v2 / torch.where(has, v1, torch.ones_like(v1))
                ok = has & (denom > 0)
                unbiased = var * v1 / torch.where(ok, denom, torch.ones_like(denom))
                running_mean.copy_(
                    torch.where(ok, running_mean + momentum * (mean - running_mean), running_mean)
                )
                running_var.copy_(
                    torch.where(ok, running_var + momentum * (unbiased - running_var), running_var)
                )
            fallback_mean, fallback_var = running_mean.to(mean.dtype), running_var.to(var.dtype)
        else:
            fallback_mean, fallback_var = torch.zeros_like(mean), torch.ones_like(var)
        mean = torch.where(has, mean, fallback_mean)
        var = torch.where(has, var, fallback_var)
        flat = _single_value(v1, v2).view(1, c, 1, 1)
    else:
        acc = torch.promote_types(x.dtype, torch.float32)
        mean, var, flat = running_mean.to(acc), running_var.to(acc), None
    return _affine(x, mean.view(1, c, 1, 1), var.view(1, c, 1, 1), weight, bias, eps, flat)


def weighted_instance_norm(
    x: Tensor,
    mask: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Weighted instance normalization: eqs. (4) and (6) over (H, W) per sample and channel.

    Args:
        x: features ``(N, C, H, W)``.
        mask: validity ``(N, 1, H, W)`` or ``(N, C, H, W)`` in [0, 1].
        weight, bias: affine parameters ``(C,)`` or None.

    Returns:
        normalized features like x. A (sample, channel) with no valid pixel is passed through
        with mean 0 and variance 1.
    """
    check_masked_input(x, mask)
    mean, var, v1, v2 = _weighted_moments(x, mask, (2, 3))
    has = v1 > 0
    mean = torch.where(has, mean, torch.zeros_like(mean))
    var = torch.where(has, var, torch.ones_like(var))
    return _affine(x, mean, var, weight, bias, eps, _single_value(v1, v2))


def _single_value(v1: Tensor, v2: Tensor) -> Tensor:
    """Where the statistics came from one valid value (one nonzero weight: V₁² = V₂).

    Its mean is that value and its variance 0, so eqs. (4)–(6) normalize it to the shift β
    exactly (docs/paper.md). Computed as x·rstd − μ·rstd with rstd = 1/√ε it would be rounding
    noise times 10⁴ instead.
    """
    return (v1 > 0) & (v1 * v1 <= v2)


def _affine(
    x: Tensor,
    mean: Tensor,
    var: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    flat: Tensor | None = None,
) -> Tensor:
    """``(x − μ)·rstd·w + b``; where ``flat`` (statistics of a single value), ``b`` exactly."""
    # as one per-channel scale and shift: a single pass over x
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.to(scale.dtype).view(1, -1, 1, 1)
    if flat is not None:
        scale = torch.where(flat, torch.zeros_like(scale), scale)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.to(scale.dtype).view(1, -1, 1, 1)
    return torch.addcmul(shift, x.to(scale.dtype), scale).to(x.dtype)


class WeightedBatchNorm2d(nn.BatchNorm2d):
    """Weighted batch normalization (Kang et al.), ``forward(x, mask) -> y``.

    Parameters and buffers are those of ``nn.BatchNorm2d`` (so its state dicts load), with the
    paper's defaults eps = 1e-8 and momentum = 0.001 (decay 0.999).

    Shapes:
        x ``(N, C, H, W)``; mask ``(N, 1, H, W)`` or ``(N, C, H, W)`` validity in [0, 1].
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-8,
        momentum: float | None = 0.001,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        momentum = self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average, as in nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        return weighted_batch_norm(
            x,
            mask,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            momentum or 0.0,
            self.eps,
        )


class WeightedInstanceNorm2d(nn.Module):
    """Weighted instance normalization, ``forward(x, mask) -> y``; statistics per sample.

    Args:
        num_features: channels C.
        eps: added to the variance.
        affine: learn a per-channel scale and shift (like ``nn.InstanceNorm2d``, off by default).
    """

    def __init__(self, num_features: int, eps: float = 1e-8, affine: bool = False) -> None:
        super().__init__()
        self.num_features, self.eps, self.affine = num_features, eps, affine
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return weighted_instance_norm(x, mask, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the masked-layer interface; the mask is ignored.

    Defaults follow the paper (eps 1e-8, momentum 0.001) so that "batch" and "weighted"
    networks differ only in the weighting.
    """

    def __init__(self, num_features: int, eps: float = 1e-8, momentum: float = 0.001) -> None:
        super().__init__(num_features, eps, momentum)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return super().forward(x)


class NoNorm(nn.Module):
    """Identity with the masked-layer interface."""

    def __init__(self, num_features: int = 0) -> None:
        super().__init__()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x


def create_norm(kind: str, num_features: int, momentum: float = 0.001) -> nn.Module:
    """Build a normalization layer by its name in :data:`wmi.kinds.NORM_KINDS`.

    Built in: "weighted", "batch", "instance", "none".

    Every returned module is called as ``norm(x, mask)``. ``momentum`` is the running-average
    rate of the batch norms (the paper's decay 0.999 is 0.001); the others have no running
    statistics.
    """
    cls = load(NORM_KINDS[kind].layer)
    if issubclass(cls, nn.BatchNorm2d):
        return cls(num_features, momentum=momentum)
    return cls(num_features)
