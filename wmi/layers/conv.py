"""Masked convolution layers: weighted (Kang et al.), partial (Liu et al.), gated, plain.

Every layer has the same interface, ``forward(x, mask) -> (y, new_mask)``, so a network switches
between them with one argument (:func:`create_conv`). ``mask`` is validity: 1 = known, 0 = hole,
shape ``(N, 1, H, W)`` (broadcast over channels) or ``(N, C, H, W)``; ``new_mask`` is always
``(N, 1, H_out, W_out)``, float32 (float64 when the mask is float64).

For a window with input block X, mask block M (broadcast to C channels), kernel W and bias b
(docs/paper.md#the-layers):

* eq. (1), weighted and partial: ``y = Wᵀ(X ⊙ M) · sum(1)/sum(M) + b`` if ``sum(M) > 0`` else 0;
* eq. (2), partial update: ``m' = 1[sum(M) > 0]``;
* eq. (3), weighted update: ``m' = sum(M) / sum(1)``, real-valued.

Zero padding counts as invalid (the mask is padded with zeros). ``sum(M)`` is a single-channel
box filter over the channel-summed mask, never a C_out×C_in ones kernel, and all mask
arithmetic runs in float32 even under autocast: in float16 the ratio ``sum(1)/sum(M)`` overflows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wmi.kinds import CONV_KINDS
from wmi.registry import load

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def check_masked_input(x: Tensor, mask: Tensor) -> None:
    """Validate an ``(x, mask)`` pair: both floating, 4-D, mask ``(N, 1|C, H, W)`` like x.

    Raises:
        ValueError: saying what was expected and what came.
    """
    if not torch.is_tensor(x) or not torch.is_tensor(mask):
        raise ValueError("x and mask must be tensors")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
    if not mask.is_floating_point():
        raise ValueError(
            f"mask must be a floating-point tensor of validity in [0, 1], got {mask.dtype}"
        )
    if x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    if mask.dim() != 4 or mask.shape[0] != n or mask.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"mask must have shape ({n}, 1, {h}, {w}) or ({n}, {c}, {h}, {w}) to match x, "
            f"got {tuple(mask.shape)}"
        )
    if mask.shape[1] not in (1, c):
        raise ValueError(f"mask must have 1 or {c} channels (like x), got {mask.shape[1]} channels")


def mask_dtype(mask: Tensor) -> torch.dtype:
    """The dtype of mask arithmetic: float32, or float64 for a float64 mask, never lower."""
    return torch.promote_types(mask.dtype, torch.float32)


def mask_window_sum(
    mask: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """Sum of the channel-summed mask over every convolution window, in float32.

    Args:
        mask: validity ``(N, C_m, H, W)``.
        kernel_size, stride, padding, dilation: as for ``nn.Conv2d``; padding is zero (invalid).

    Returns:
        ``(N, 1, H_out, W_out)``, float32 (float64 for a float64 mask): ``sum(M)`` of eq. (1)
        when ``C_m`` equals the input channels, or ``sum(M) / C`` for a single-channel mask
        broadcast over C channels.
    """
    k, s, p, d = (
        _pair(v, n)
        for v, n in (
            (kernel_size, "kernel_size"),
            (stride, "stride"),
            (padding, "padding"),
            (dilation, "dilation"),
        )
    )
    m = mask.to(mask_dtype(mask))
    if m.shape[1] > 1:
        m = m.sum(dim=1, keepdim=True)
    # Keep this out of autocast: a bf16/fp16 box sum of a real-valued mask loses the small
    # windows that decide whether the ratio below is finite.
    with torch.autocast(device_type=m.device.type, enabled=False):
        if d == (1, 1) and p[0] <= k[0] // 2 and p[1] <= k[1] // 2:
            # avg_pool2d with divisor 1 is an exact float32 box sum (no TF32 on GPU).
            return F.avg_pool2d(m, k, s, p, count_include_pad=True, divisor_override=1)
        ones = torch.ones((1, 1, *k), dtype=m.dtype, device=m.device)
        return F.conv2d(m, ones, None, s, p, d)


def _masked_conv2d(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
    weighted_update: bool,
    premasked: bool,
) -> tuple[Tensor, Tensor]:
    check_masked_input(x, mask)
    kh, kw = weight.shape[-2:]
    msum = mask_window_sum(mask, (kh, kw), stride, padding, dilation)
    # sum(1) in the units of msum: C·k·k for a per-channel mask, k·k for a broadcast one.
    total = float(kh * kw * (x.shape[1] if mask.shape[1] > 1 else 1))
    valid = msum > 0
    # sum(1)/sum(M) where sum(M) > 0; the where keeps the unused branch finite, so no inf·0
    # reaches the backward pass (never 1/(sum + eps) and a clamp).
    ratio = total / torch.where(valid, msum, torch.ones_like(msum))

    xm = x if premasked else x * mask.to(x.dtype)
    raw = F.conv2d(xm, weight, None, stride, padding, dilation)
    # float16 overflows at raw·ratio in deep layers; bfloat16 and float32 have the range.
    out_dtype = raw.dtype
    acc = torch.float32 if out_dtype == torch.float16 else out_dtype
    raw, ratio = raw.to(acc), ratio.to(acc)
    if bias is None:
        y = raw * torch.where(valid, ratio, 0.0)
    else:
        # (raw·ratio + b)·1[sum(M) > 0] in two passes over the output instead of three
        y = torch.addcmul(bias.to(acc).view(1, -1, 1, 1), raw, ratio).mul_(valid.to(acc))
    new_mask = (msum / total).clamp_(max=1.0) if weighted_update else valid.to(msum.dtype)
    return y.to(out_dtype), new_mask


def weighted_conv2d(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    premasked: bool = False,
) -> tuple[Tensor, Tensor]:
    """Weighted mask convolution: eq. (1) with the real-valued mask update of eq. (3).

    Args:
        x: input ``(N, C, H, W)``, floating point.
        mask: validity ``(N, 1, H, W)`` or ``(N, C, H, W)`` in [0, 1], 1 = known.
        weight: ``(C_out, C, kH, kW)``.
        bias: ``(C_out,)`` or None; added only where the window saw a valid input.
        stride, padding, dilation: int or pair, as in ``nn.Conv2d``; padding counts as invalid.
        premasked: x already equals ``x ⊙ mask`` (used by the U-Net after a skip concatenation).

    Returns:
        ``(y, new_mask)``: y ``(N, C_out, H_out, W_out)`` in x's dtype, new_mask
        ``(N, 1, H_out, W_out)`` float32 (float64 for a float64 mask) in [0, 1].
    """
    return _masked_conv2d(x, mask, weight, bias, stride, padding, dilation, True, premasked)


def partial_conv2d(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    premasked: bool = False,
) -> tuple[Tensor, Tensor]:
    """Partial convolution (Liu et al.): eq. (1) with the binary mask update of eq. (2).

    Arguments and shapes as :func:`weighted_conv2d`; ``new_mask`` is 0 or 1.
    """
    return _masked_conv2d(x, mask, weight, bias, stride, padding, dilation, False, premasked)


def partial_mask_update(
    mask: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """Eq. (2) alone: 1 where the window holds any valid input, else 0; ``(N, 1, H_o, W_o)``."""
    msum = mask_window_sum(mask, kernel_size, stride, padding, dilation)
    return (msum > 0).to(msum.dtype)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "elu": F.elu,
    "lrelu": lambda t: F.leaky_relu(t, 0.2),
    "relu": F.relu,
    "none": lambda t: t,
}


def gated_conv2d(
    x: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    activation: str = "elu",
) -> tuple[Tensor, Tensor]:
    """Gated convolution (DeepFill v2): ``y = φ(conv_f(X)) ⊙ σ(conv_g(X))``.

    The mask does not enter the arithmetic (DeepFill feeds it as an input channel); it is
    updated like partial convolution so that networks can swap layer kinds.

    Args:
        weight: ``(2·C_out, C, kH, kW)``: the first C_out filters are features, the rest gates.
        activation: φ, one of ``ACTIVATIONS`` ("elu", "lrelu", "relu", "none").

    Returns:
        ``(y, new_mask)`` with y ``(N, C_out, H_out, W_out)`` and the eq. (2) mask.
    """
    check_masked_input(x, mask)
    both = F.conv2d(x, weight, bias, stride, padding, dilation)
    features, gates = both.chunk(2, dim=1)
    y = ACTIVATIONS[activation](features) * torch.sigmoid(gates)
    return y, partial_mask_update(mask, weight.shape[-2:], stride, padding, dilation)


class _MaskedConv(nn.Conv2d):
    """``nn.Conv2d`` parameters with a ``forward(x, mask) -> (y, new_mask)`` interface."""

    #: Whether the layer multiplies its input by the mask. Networks use it to decide whether
    #: concatenated features must be masked part by part (see ``InpaintingUNet``).
    masked: bool = True
    #: Whether the layer reads a real-valued validity in [0, 1] (eq. 3) rather than 0/1: soft
    #: masks (``--blend soft``) are then given to the network as they are.
    takes_real_validity: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            _pair(kernel_size, "kernel_size"),
            _pair(stride, "stride"),
            _pair(padding, "padding"),
            _pair(dilation, "dilation"),
            bias=bias,
            device=device,
            dtype=dtype,
        )


class WeightedConv2d(_MaskedConv):
    """Weighted mask convolution (Kang et al.), eqs. (1) and (3).

    Same constructor as ``nn.Conv2d`` (no groups, zero padding only).

    Example:
        >>> conv = WeightedConv2d(3, 8, 3, padding=1)
        >>> y, m = conv(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16))
        >>> y.shape, m.shape
        (torch.Size([1, 8, 16, 16]), torch.Size([1, 1, 16, 16]))
    """

    takes_real_validity = True

    def forward(self, x: Tensor, mask: Tensor, premasked: bool = False) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, C, H, W)``, ``mask`` ``(N, 1|C, H, W)`` → ``(y, new_mask)``."""
        return weighted_conv2d(
            x, mask, self.weight, self.bias, self.stride, self.padding, self.dilation, premasked
        )


class PartialConv2d(_MaskedConv):
    """Partial convolution (Liu et al., ECCV 2018), eqs. (1) and (2), with the ``sum(1)`` factor."""

    def forward(self, x: Tensor, mask: Tensor, premasked: bool = False) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, C, H, W)``, ``mask`` ``(N, 1|C, H, W)`` → ``(y, new_mask)``."""
        return partial_conv2d(
            x, mask, self.weight, self.bias, self.stride, self.padding, self.dilation, premasked
        )


class PlainConv2d(_MaskedConv):
    """An ordinary convolution of x; the mask is only carried along (partial-conv update)."""

    masked = False

    def forward(self, x: Tensor, mask: Tensor, premasked: bool = False) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, C, H, W)``, ``mask`` ``(N, 1|C, H, W)`` → ``(conv(x), new_mask)``."""
        check_masked_input(x, mask)
        new_mask = partial_mask_update(
            mask, self.kernel_size, self.stride, self.padding, self.dilation
        )
        return super().forward(x), new_mask


class GatedConv2d(_MaskedConv):
    """Gated convolution (Yu et al., DeepFill v2, the paper's "DF2" layer).

    ``weight`` holds ``2·out_channels`` filters: features first, then gates.

    Args:
        activation: φ applied to the features: "elu" (DeepFill's default), "lrelu", "relu"
            or "none" (when a network applies its own normalization and activation after).
    """

    masked = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        bias: bool = True,
        activation: str = "elu",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        super().__init__(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            bias,
            device,
            dtype,
        )
        self.out_channels = out_channels
        self.activation = activation

    def forward(self, x: Tensor, mask: Tensor, premasked: bool = False) -> tuple[Tensor, Tensor]:
        """``x`` ``(N, C, H, W)``, ``mask`` ``(N, 1|C, H, W)`` → ``(y, new_mask)``."""
        return gated_conv2d(
            x,
            mask,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.activation,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


def create_conv(
    kind: str, in_channels: int, out_channels: int, kernel_size: IntPair, **kwargs
) -> _MaskedConv:
    """Build a convolution layer by its name in :data:`wmi.kinds.CONV_KINDS`.

    "weighted", "partial", "gated" and "plain" are built in; a kind registered there is built
    the same way. Extra keyword arguments go to the layer (stride, padding, dilation, bias,
    activation for "gated").

    Raises:
        ValueError: an unknown kind (a :class:`~wmi.errors.WmiError` naming the choices).
    """
    return load(CONV_KINDS[kind].layer)(in_channels, out_channels, kernel_size, **kwargs)
