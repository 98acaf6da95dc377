"""The PConv U-Net of Liu et al. (ECCV 2018) with every convolution and normalization swappable.

One class serves every comparison of the paper: ``InpaintingUNet(conv="weighted",
norm="weighted")`` is WConv, ``conv="partial", norm="batch"`` is PConv, and "gated"/"plain"
are the DeepFill-style and ordinary baselines built on the same architecture
(docs/paper.md#the-network-and-the-training-recipe).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wmi.errors import WmiError
from wmi.kinds import ARCH_LIMITS, CONV_KINDS, NORM_KINDS
from wmi.layers.conv import check_masked_input, create_conv, mask_dtype
from wmi.layers.norm import create_norm
from wmi.registry import load

#: Encoder kernel sizes of the PConv U-Net; layer 8 (512² inputs) repeats the last.
ENCODER_KERNELS = (7, 5, 5, 3, 3, 3, 3)


def check_multiple(height: int, width: int, layers: int, option: str | None = None) -> None:
    """The U-Net's one size rule: height and width are positive multiples of ``2**layers``.

    Args:
        height, width: the input size.
        layers: U-Net depth.
        option: the command-line option that set a square size (``"--size"``), for the message.

    Raises:
        WmiError: naming the size and the nearest valid size.
    """
    m = 2**layers
    if height >= m and width >= m and not height % m and not width % m:
        return
    nh, nw = max(m, round(height / m) * m), max(m, round(width / m) * m)
    if option:
        raise WmiError(
            f"{option} {height} is not a multiple of 2**layers = {m} (--layers {layers}); "
            f"use {option} {nh}"
        )
    raise WmiError(
        f"image size {height}×{width} is not a multiple of 2**{layers} = {m}; the nearest "
        f"valid size is {nh}×{nw} (pad or resize the input)"
    )


#: Measured / counted bytes of :meth:`InpaintingUNet.inference_bytes`: the paper's network
#: (base 64, 7 layers) on a 2-core CPU grew by 726 MB at 1024x768 and 2,594 MB at 2048x1536,
#: 791 bytes per pixel, where the tensors counted make 991 (PyTorch frees some early).
INFERENCE_CALIBRATION = 0.8


def check_training_size(
    size: int, layers: int, batch_size: int, norms: Iterable[str], option: str = "--size"
) -> None:
    """:func:`check_multiple` for square ``size`` crops, and that every norm of the network
    gets enough values per channel in training: the bottleneck's ``batch_size·(size/2**layers)²``
    (a 1×1 bottleneck at batch 1 gives one value, which ``nn.BatchNorm2d`` refuses).

    Args:
        size: the crop side.
        layers: U-Net depth (the first layer has no norm).
        batch_size: the smallest batch that will be trained or timed.
        norms: :data:`wmi.kinds.NORM_KINDS` names of the networks.
        option: the option that set ``size``, for the message.

    Raises:
        WmiError: one line naming the smallest size that works (and the batch size that would).
    """
    m = 2**layers
    need = max((NORM_KINDS[n].min_values for n in norms), default=1) if layers > 1 else 1
    side = math.ceil(math.sqrt(need / batch_size))  # the bottleneck side that gives `need`
    use = max(m * side, round(size / m) * m)
    if size % m:
        raise WmiError(
            f"{option} {size} is not a multiple of 2**layers = {m} (--layers {layers}); "
            f"use {option} {use}"
        )
    if size >= m * side:
        return
    have = size // m
    norm = next(n for n in norms if NORM_KINDS[n].min_values > batch_size * have**2)
    raise WmiError(
        f"{option} {size} with --layers {layers} leaves a {have}×{have} bottleneck: at batch "
        f"size {batch_size} its {norm} norm gets {batch_size * have**2} value per channel and "
        f"needs {need}; use {option} {use} or --batch-size {math.ceil(need / have**2)}"
    )


def checked_architecture(config: Any, where: str) -> dict[str, Any]:
    """An architecture read from a file, checked before anything is built from it.

    Args:
        config: the constructor arguments (a checkpoint's ``model_config``, an export's
            ``architecture``).
        where: the file, for the message.

    Returns:
        the arguments, as :class:`InpaintingUNet` takes them.

    Raises:
        WmiError: not a dict of its arguments, a kind that is not registered, or a number of
            the wrong type or outside :data:`ARCH_LIMITS`.
    """
    if not isinstance(config, dict):
        raise WmiError(f"{where}: the architecture is not a table of settings")
    known = ("conv", "norm", "norm_momentum", *ARCH_LIMITS)
    unknown = [str(k) for k in config if k not in known]
    if unknown:
        raise WmiError(f"{where}: unknown architecture setting {unknown[0]!r}")
    for name, registry in (("conv", CONV_KINDS), ("norm", NORM_KINDS)):
        value = config.get(name, "weighted")
        if not isinstance(value, str) or value not in registry:
            raise WmiError(f"{where}: architecture {name} {value!r} is not one of {list(registry)}")
    for name, (low, high) in ARCH_LIMITS.items():
        value = config.get(name)
        if value is None:
            continue
        if type(value) is not int or not low <= value <= high:
            raise WmiError(f"{where}: architecture {name} {value!r} is not a whole number from "
                           f"{low} to {high}")  # fmt: skip
    momentum = config.get("norm_momentum", 0.001)
    if type(momentum) not in (int, float) or not 0.0 < momentum <= 1.0:
        raise WmiError(f"{where}: architecture norm_momentum {momentum!r} is not in (0, 1]")
    return dict(config)


def state_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor of the network ``config`` builds, allocating none.

    The network is built on PyTorch's "meta" device (shapes without storage), so a config
    that asks for billions of weights costs nothing here; check it with
    :func:`checked_architecture` first (the number of layers is bounded there).
    """
    with torch.device("meta"):
        net = InpaintingUNet(**config)
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def check_weights_fit(
    config: dict[str, Any], shapes: dict[str, tuple[int, ...]], where: str
) -> None:
    """Refuse weights whose names or shapes differ from those of the network ``config``.

    Run before the network is built: the weights' shapes (a safetensors header, a
    checkpoint's tensors) then bound what building it may cost.

    Raises:
        WmiError: naming the first missing, unexpected or differently shaped tensor.
    """
    check_shapes(state_shapes(config), shapes, where)


def check_shapes(
    expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]], where: str
) -> None:
    """Refuse weights (``shapes``) whose names or shapes differ from a network's (``expected``).

    Raises:
        WmiError: naming the first missing, unexpected or differently shaped tensor.
    """
    for key, shape in expected.items():
        if key not in shapes:
            raise WmiError(f"{where}: not weights of this network (no {key}, shape {list(shape)})")
        if tuple(shapes[key]) != shape:
            raise WmiError(
                f"{where}: not weights of this network ({key} has shape {list(shapes[key])}, "
                f"the architecture needs {list(shape)})"
            )
    extra = [key for key in shapes if key not in expected]
    if extra:
        raise WmiError(f"{where}: not weights of this network (unexpected {extra[0]})")


class MaskedBlock(nn.Module):
    """conv → norm → activation, passing ``(x, mask)`` along."""

    def __init__(
        self,
        conv_kind: str,
        norm_kind: str,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        activation: nn.Module | None,
        bias: bool,
        norm_momentum: float = 0.001,
    ) -> None:
        super().__init__()
        extra = dict(CONV_KINDS[conv_kind].block_kwargs)
        self.conv = create_conv(
            conv_kind,
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=bias,
            **extra,
        )
        self.norm = create_norm(norm_kind, out_channels, norm_momentum)
        self.act = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor, premasked: bool = False) -> tuple[Tensor, Tensor]:
        y, mask = self.conv(x, mask, premasked=premasked)
        return self.act(self.norm(y, mask)), mask


def _channel_sum(mask: Tensor, channels: int) -> Tensor:
    """Sum of a (broadcast) mask over ``channels`` feature channels, ``(N, 1, H, W)``."""
    return mask.sum(1, keepdim=True) if mask.shape[1] > 1 else mask * channels


class InpaintingUNet(nn.Module):
    """PConv U-Net with a choice of convolution and normalization.

    Encoder: ``layers`` convolutions with stride 2, kernels 7, 5, 5, 3, 3, ..., channels
    ``base, 2·base, 4·base, 8·base, 8·base, ...``, ReLU, no normalization in the first layer.
    Decoder: nearest 2× upsampling of features and mask, concatenation with the encoder skip,
    3×3 convolution, LeakyReLU 0.2; the last layer has a bias, no normalization and no
    activation, and outputs 3 channels.

    The network never sees pixel values inside the hole: its input is ``image ⊙ mask``
    (masked kinds multiply inside each layer; "plain" and "gated" networks get the masked image
    plus the mask as an extra input channel, as DeepFill does). At each skip concatenation the
    two parts are masked by their own masks and the next layer gets the channel-weighted mean
    mask ``(C₁·m₁ + C₂·m₂)/(C₁ + C₂)``, which keeps ``sum(M)`` exact (docs/paper.md#the-layers).

    Args:
        conv: "weighted", "partial", "gated" or "plain".
        norm: "weighted" (weighted batch norm), "batch", "instance" (weighted instance norm)
            or "none".
        layers: encoder depth; 7 for 256² inputs, 8 for 512².
        in_channels: image channels.
        base_channels: channels of the first layer (64 in the paper).
        norm_momentum: running-statistics rate of the batch norms (the paper's decay 0.999 is
            0.001; short runs need a faster rate before evaluating in eval mode).

    Shapes:
        ``forward(image, mask)``: image ``(N, C, H, W)`` in [0, 1]; mask ``(N, 1, H, W)`` or
        ``(N, C, H, W)``, validity 1 = known. H and W must be multiples of ``2**layers``.
        Returns the raw network output ``(N, C, H, W)``; composite it with the known pixels
        yourself (``mask * image + (1 - mask) * output``).
    """

    def __init__(
        self,
        conv: str = "weighted",
        norm: str = "weighted",
        layers: int = 7,
        in_channels: int = 3,
        base_channels: int = 64,
        norm_momentum: float = 0.001,
    ) -> None:
        super().__init__()
        conv_class = load(CONV_KINDS[conv].layer)  # unknown kinds: WmiError naming the choices
        NORM_KINDS[norm]
        if layers < 1:
            raise ValueError(f"layers must be at least 1, got {layers}")
        self.conv_kind, self.norm_kind = conv, norm
        self.layers, self.in_channels, self.base_channels = layers, in_channels, base_channels
        self.norm_momentum = norm_momentum
        self.masked = conv_class.masked
        self.takes_real_validity = conv_class.takes_real_validity
        # Masked layers see the image through the mask; the others get the mask as a channel.
        net_in = in_channels if self.masked else in_channels + 1
        chans = [base_channels * 2 ** min(i, 3) for i in range(layers)]
        use_bias = norm == "none"

        self.encoder = nn.ModuleList()
        prev = net_in
        for i, ch in enumerate(chans):
            k = ENCODER_KERNELS[min(i, len(ENCODER_KERNELS) - 1)]
            self.encoder.append(
                MaskedBlock(
                    conv,
                    "none" if i == 0 else norm,
                    prev,
                    ch,
                    k,
                    2,
                    nn.ReLU(inplace=True),
                    bias=use_bias,
                    norm_momentum=norm_momentum,
                )
            )
            prev = ch

        # decoder[j] undoes encoder[layers-1-j]: input = upsampled + skip, output = skip width
        self.decoder = nn.ModuleList()
        skips = [net_in, *chans[:-1]]
        for i in reversed(range(layers)):
            last = i == 0
            self.decoder.append(
                MaskedBlock(
                    conv,
                    "none" if last else norm,
                    prev + skips[i],
                    in_channels if last else skips[i],
                    3,
                    1,
                    None if last else nn.LeakyReLU(0.2, inplace=True),
                    bias=use_bias or last,
                    norm_momentum=norm_momentum,
                )
            )
            prev = skips[i]

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this network (JSON-able)."""
        return {
            "conv": self.conv_kind,
            "norm": self.norm_kind,
            "layers": self.layers,
            "in_channels": self.in_channels,
            "base_channels": self.base_channels,
            "norm_momentum": self.norm_momentum,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InpaintingUNet:
        """The network :meth:`config` describes (untrained)."""
        return cls(**config)

    @classmethod
    def checked_config(cls, config: dict[str, Any], where: str) -> dict[str, Any]:
        """:meth:`config` read from a file, checked before anything is built
        (:func:`checked_architecture`)."""
        return checked_architecture(config, where)

    @classmethod
    def check_weights_fit(
        cls, config: dict[str, Any], shapes: dict[str, tuple[int, ...]], where: str
    ) -> None:
        """Refuse weights that do not fit the network of ``config`` (:func:`check_weights_fit`)."""
        check_weights_fit(config, shapes, where)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (``2**layers``)."""
        return 2**self.layers

    def inference_bytes(self, height: int, width: int, batch: int = 1) -> int:
        """About how much memory one float32 forward pass without gradients takes, in bytes.

        The peak is at the last decoder layer, at full resolution: the upsampled features
        (``base_channels``), the skip (image and mask), their concatenation and its masked copy,
        the output; plus the encoder outputs still held for the other skips (each level a
        quarter of the pixels of the one above), the input and output arrays, and the
        weights. Those tensors, counted, are scaled by :data:`INFERENCE_CALIBRATION`.

        Args:
            height, width: the padded input size.
            batch: images per forward pass.
        """
        chans = [self.base_channels * 2 ** min(i, 3) for i in range(self.layers)]
        skip = self.in_channels + 1
        top = self.base_channels + 2 * (self.base_channels + skip) + self.in_channels
        held = sum(c / 4 ** (i + 1) for i, c in enumerate(chans))
        arrays = 4 * self.in_channels + 2  # numpy input, padded copy, output, masks
        per_pixel = 4 * INFERENCE_CALIBRATION * (top + held + arrays)
        weights = sum(p.numel() * p.element_size() for p in self.parameters())
        return int(per_pixel * height * width * batch) + weights

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError naming the nearest valid size if (height, width) is not valid."""
        check_multiple(height, width, self.layers)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        check_masked_input(image, mask)
        if image.shape[1] != self.in_channels:
            raise ValueError(f"image must have {self.in_channels} channels, got {image.shape[1]}")
        self.check_size(*image.shape[-2:])
        mask = mask.to(mask_dtype(mask))
        if self.masked:
            h = image  # every masked layer multiplies by its mask: X ⊙ M happens there
        else:
            mask = mask.mean(1, keepdim=True)
            h = torch.cat([image * mask.to(image.dtype), mask.to(image.dtype)], dim=1)
        m = mask

        skips: list[tuple[Tensor, Tensor]] = []
        for block in self.encoder:
            skips.append((h, m))
            h, m = block(h, m)

        for block in self.decoder:
            skip_h, skip_m = skips.pop()
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            m = F.interpolate(m, scale_factor=2.0, mode="nearest")
            h, m = self._concat(h, m, skip_h, skip_m)
            h, m = block(h, m, premasked=self.masked)
        return h

    def _concat(self, a: Tensor, ma: Tensor, b: Tensor, mb: Tensor) -> tuple[Tensor, Tensor]:
        """Concatenate two feature maps with their masks, exactly (docs/paper.md#the-layers)."""
        ca, cb = a.shape[1], b.shape[1]
        if self.masked:
            a, b = a * ma.to(a.dtype), b * mb.to(b.dtype)
        x = torch.cat([a, b.to(a.dtype)], dim=1)
        mask = (_channel_sum(ma, ca) + _channel_sum(mb, cb)) / (ca + cb)
        return x, mask

    def extra_repr(self) -> str:
        return (
            f"conv={self.conv_kind!r}, norm={self.norm_kind!r}, layers={self.layers}, "
            f"in_channels={self.in_channels}, base_channels={self.base_channels}"
        )
