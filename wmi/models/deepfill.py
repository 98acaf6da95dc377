"""DeepFill v1 and v2 (Yu et al., CVPR 2018, ICCV 2019) as the official TensorFlow code builds them.

Layer for layer the graphs of JiahuiYu/generative_inpainting: ``build_inpaint_net`` of the
v1.0.0 branch (DeepFill v1: contextual attention, ELU convolutions, WGAN-GP critics) and of
master (DeepFill v2: gated convolutions, SN-PatchGAN). Convolutions pad as TF's 'SAME' does
(asymmetric for stride 2), the 2× upsampling is TF1's ``resize_nearest_neighbor`` with
``align_corners=True``, kernels start Glorot-uniform and biases at zero, as in TF.

Images and masks follow wmi: ``forward(image, validity)`` takes ``image`` ``(N, 3, H, W)`` in
[0, 1] and validity ``(N, 1, H, W)`` (1 = known, 0 = hole) and returns the raw refined output in
[0, 1], not composited (like ``InpaintingUNet``). The official networks work on [-1, 1]:
``forward_signed`` is that graph (``x_stage1, x_stage2`` in [-1, 1]); a training loop that wants
the official loss magnitudes uses it (see ``docs/models.md`` and ``wmi.training.adversarial``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wmi.errors import WmiError
from wmi.layers.attention import contextual_attention, resize_nearest_tf, same_padding
from wmi.models.unet import check_shapes

__all__ = [
    "DeepFillV1Generator",
    "DeepFillV2Generator",
    "SNPatchGANDiscriminator",
    "SameConv2d",
    "WGANGlobalCritic",
    "WGANLocalCritic",
    "count_parameters",
]


def count_parameters(module: nn.Module) -> int:
    """Trainable numbers as the official graph counts them: kernels, biases, dense weights.

    Spectral norm's ``u``/``v`` vectors are buffers (in TF: non-trainable variables), so they
    are not counted; the spectral-normed kernel counts once (``weight_orig``/``original``).
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's 'SAME' zero padding and TF's initialisation.

    'SAME' pads ``(total // 2, total - total // 2)``: for stride 2 on even sizes the extra pixel
    goes after (bottom/right), where PyTorch's ``padding=`` would pad both sides.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation)
        nn.init.xavier_uniform_(self.weight)  # tf.layers.conv2d: glorot_uniform, zero bias
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
        ph = same_padding(x.shape[-2], k, s, d)
        pw = same_padding(x.shape[-1], k, s, d)
        return super().forward(F.pad(x, (*pw, *ph)))


_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, None: None}


class GenConv(nn.Module):
    """``gen_conv`` of the official code: a 'SAME' convolution, then the activation.

    Gated (v2): the convolution has ``cnum`` outputs, split into features and gates, so the
    layer outputs ``cnum // 2`` channels: ``activation(features) · sigmoid(gates)``; a layer with
    3 outputs or no activation returns the convolution as it is (the official rule).
    """

    def __init__(
        self,
        in_channels: int,
        cnum: int,
        ksize: int,
        stride: int = 1,
        rate: int = 1,
        activation: str | None = "elu",
        gated: bool = False,
    ) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, cnum, ksize, stride, rate)
        self.activation = _ACTIVATIONS[activation]
        self.gated = gated and cnum != 3 and activation is not None
        self.out_channels = cnum // 2 if self.gated else cnum

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.activation is None:
            return x
        if not self.gated:
            return self.activation(x)
        feature, gate = x.chunk(2, dim=1)
        return self.activation(feature) * torch.sigmoid(gate)


class GenDeconv(GenConv):
    """``gen_deconv``: 2× nearest upsampling (TF1, ``align_corners=True``), then a 3×3 gen_conv."""

    def __init__(self, in_channels: int, cnum: int, gated: bool = False) -> None:
        super().__init__(in_channels, cnum, 3, gated=gated)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(resize_nearest_tf(x, (2 * x.shape[-2], 2 * x.shape[-1])))


# (layer name, filters as a multiple of cnum, ksize, stride, dilation rate, kind)
_Spec = tuple[str, float, int, int, int, str]
COARSE: tuple[_Spec, ...] = (
    ("conv1", 1, 5, 1, 1, "conv"), ("conv2_downsample", 2, 3, 2, 1, "conv"),
    ("conv3", 2, 3, 1, 1, "conv"), ("conv4_downsample", 4, 3, 2, 1, "conv"),
    ("conv5", 4, 3, 1, 1, "conv"), ("conv6", 4, 3, 1, 1, "conv"),
    ("conv7_atrous", 4, 3, 1, 2, "conv"), ("conv8_atrous", 4, 3, 1, 4, "conv"),
    ("conv9_atrous", 4, 3, 1, 8, "conv"), ("conv10_atrous", 4, 3, 1, 16, "conv"),
    ("conv11", 4, 3, 1, 1, "conv"), ("conv12", 4, 3, 1, 1, "conv"),
)  # fmt: skip
DECODER: tuple[_Spec, ...] = (
    ("13_upsample", 2, 3, 1, 1, "deconv"), ("14", 2, 3, 1, 1, "conv"),
    ("15_upsample", 1, 3, 1, 1, "deconv"), ("16", 0.5, 3, 1, 1, "conv"),
)  # fmt: skip
HALLUCINATION: tuple[_Spec, ...] = (
    ("xconv1", 1, 5, 1, 1, "conv"), ("xconv2_downsample", 1, 3, 2, 1, "conv"),
    ("xconv3", 2, 3, 1, 1, "conv"), ("xconv4_downsample", 2, 3, 2, 1, "conv"),
    ("xconv5", 4, 3, 1, 1, "conv"), ("xconv6", 4, 3, 1, 1, "conv"),
    ("xconv7_atrous", 4, 3, 1, 2, "conv"), ("xconv8_atrous", 4, 3, 1, 4, "conv"),
    ("xconv9_atrous", 4, 3, 1, 8, "conv"), ("xconv10_atrous", 4, 3, 1, 16, "conv"),
)  # fmt: skip
ATTENTION_IN: tuple[_Spec, ...] = (
    ("pmconv1", 1, 5, 1, 1, "conv"), ("pmconv2_downsample", 1, 3, 2, 1, "conv"),
    ("pmconv3", 2, 3, 1, 1, "conv"), ("pmconv4_downsample", 4, 3, 2, 1, "conv"),
    ("pmconv5", 4, 3, 1, 1, "conv"), ("pmconv6", 4, 3, 1, 1, "relu"),
)  # fmt: skip
ATTENTION_OUT: tuple[_Spec, ...] = (
    ("pmconv9", 4, 3, 1, 1, "conv"), ("pmconv10", 4, 3, 1, 1, "conv"),
)  # fmt: skip
MERGE: tuple[_Spec, ...] = (
    ("allconv11", 4, 3, 1, 1, "conv"), ("allconv12", 4, 3, 1, 1, "conv"),
)  # fmt: skip


def _stack(
    specs: Sequence[_Spec], in_channels: int, cnum: int, gated: bool, prefix: str = ""
) -> tuple[nn.Sequential, int]:
    """Build a named sequence of gen_conv/gen_deconv layers; returns it and its output width."""
    layers = nn.Sequential()
    ch = in_channels
    for name, mult, k, s, r, kind in specs:
        width = int(mult * cnum)
        if kind == "deconv":
            layer: GenConv = GenDeconv(ch, width, gated)
        else:
            act = "relu" if kind == "relu" else "elu"
            layer = GenConv(ch, width, k, s, r, act, gated)
        layers.add_module(prefix + name, layer)
        ch = layer.out_channels
    return layers, ch


def _check_input(image: Tensor, validity: Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (N, 3, H, W), got {tuple(image.shape)}")
    n, _, h, w = image.shape
    if (
        validity.dim() != 4
        or validity.shape[0] != n
        or validity.shape[1] not in (1, 3)
        or (validity.shape[2:] != image.shape[2:])
    ):
        raise ValueError(
            f"validity must have shape ({n}, 1, {h}, {w}), got {tuple(validity.shape)}"
        )
    if h % 8 or w % 8 or h < 8 or w < 8:
        raise ValueError(f"DeepFill needs height and width that are multiples of 8, got {h}×{w}")


class _DeepFillGenerator(nn.Module):
    """The two-stage generator; v1 and v2 differ in gating, widths, stage-2 input and output."""

    gated: bool
    refine_with_mask: bool  # v1 feeds [x, ones, mask] to the refinement stage, v2 only x
    #: Input height and width must be multiples of this (two stride-2 convolutions, then
    #: contextual attention's rate-2 downsampling); ``wmi inpaint`` pads to it.
    multiple = 8

    def __init__(self, cnum: int) -> None:
        super().__init__()
        self.cnum = cnum
        g = self.gated
        self.coarse, ch = _stack(COARSE, 5, cnum, g)
        decoder, ch = _stack(DECODER, ch, cnum, g, "conv")
        self.coarse.extend(decoder)
        self.coarse.add_module("conv17", GenConv(ch, 3, 3, activation=None))
        ch_in = 5 if self.refine_with_mask else 3
        self.hallucination, ch_h = _stack(HALLUCINATION, ch_in, cnum, g)
        self.attention_in, ch_a = _stack(ATTENTION_IN, ch_in, cnum, g)
        self.attention_out, ch_a = _stack(ATTENTION_OUT, ch_a, cnum, g)
        self.refine, ch = _stack(MERGE, ch_h + ch_a, cnum, g)
        decoder, ch = _stack(DECODER, ch, cnum, g, "allconv")
        self.refine.extend(decoder)
        self.refine.add_module("allconv17", GenConv(ch, 3, 3, activation=None))

    def _output(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_signed(self, x: Tensor, validity: Tensor) -> tuple[Tensor, Tensor]:
        """The official ``build_inpaint_net``: ``x`` is the incomplete image in [-1, 1].

        Args:
            x: ``(N, 3, H, W)`` in [-1, 1]; hole pixels are zeroed here (the official input is
                ``image · (1 - mask)`` already).
            validity: ``(N, 1, H, W)``, 1 = known, 0 = hole; H and W multiples of 8.

        Returns:
            ``(x_stage1, x_stage2)``, each ``(N, 3, H, W)`` in [-1, 1], not composited.
        """
        _check_input(x, validity)
        validity = validity.to(x.dtype).mean(1, keepdim=True)
        hole = 1.0 - validity
        xin = x * validity
        ones = torch.ones_like(hole)
        x1 = self._output(self.coarse(torch.cat([xin, ones, hole], dim=1)))
        xnow = x1 * hole + xin * validity
        if self.refine_with_mask:
            xnow = torch.cat([xnow, ones, hole], dim=1)
        pm = self.attention_in(xnow)
        mask_s = resize_nearest_tf(validity, tuple(pm.shape[-2:]))
        pm = self.attention_out(contextual_attention(pm, pm, mask_s, 3, 1, rate=2))
        x2 = self.refine(torch.cat([self.hallucination(xnow), pm], dim=1))
        return x1, self._output(x2)

    def forward_stages(self, image: Tensor, validity: Tensor) -> tuple[Tensor, Tensor]:
        """Both stages in wmi's range: image ``(N, 3, H, W)`` in [0, 1] → two ``(N, 3, H, W)``
        in [0, 1] (coarse, refined), raw (not composited)."""
        x1, x2 = self.forward_signed(image * 2.0 - 1.0, validity)
        return (x1 + 1.0) / 2.0, (x2 + 1.0) / 2.0

    def forward(self, image: Tensor, validity: Tensor) -> Tensor:
        """The refined stage, ``(N, 3, H, W)`` in [0, 1], raw: composite it yourself
        (``validity · image + (1 - validity) · output``), as with ``InpaintingUNet``."""
        return self.forward_stages(image, validity)[1]

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-able."""
        return {"cnum": self.cnum}

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> _DeepFillGenerator:
        """Build from :meth:`config`'s dict."""
        return cls(**d)

    #: ``cnum`` a file may ask for: a gated layer of ``cnum // 4`` filters needs at least 4
    CNUM_LIMITS = (4, 1024)

    @classmethod
    def checked_config(cls, config: dict[str, Any], where: str) -> dict[str, Any]:
        """:meth:`config` read from a file, checked before anything is built: ``cnum`` only,
        a whole number within :attr:`CNUM_LIMITS`.

        Raises:
            WmiError: naming ``where`` and the setting.
        """
        unknown = [str(k) for k in config if k != "cnum"]
        if unknown:
            raise WmiError(f"{where}: unknown architecture setting {unknown[0]!r}")
        low, high = cls.CNUM_LIMITS
        cnum = config.get("cnum", low)
        if type(cnum) is not int or not low <= cnum <= high:
            raise WmiError(
                f"{where}: architecture cnum {cnum!r} is not a whole number from {low} to {high}"
            )
        return dict(config)

    @classmethod
    def check_weights_fit(
        cls, config: dict[str, Any], shapes: dict[str, tuple[int, ...]], where: str
    ) -> None:
        """Refuse weights whose names or shapes differ from those of the network ``config``
        builds (built on the "meta" device: no memory for a checked ``config``)."""
        with torch.device("meta"):
            net = cls(**config)
        check_shapes({k: tuple(v.shape) for k, v in net.state_dict().items()}, shapes, where)

    def extra_repr(self) -> str:
        return f"cnum={self.cnum}"


class DeepFillV1Generator(_DeepFillGenerator):
    """DeepFill v1 (generative_inpainting v1.0.0): ELU convolutions and contextual attention.

    Coarse network on ``[x, ones, mask]`` (5 channels); refinement on the coarse result pasted
    into the known pixels, again with ``[ones, mask]`` (5 channels): a dilated-convolution
    branch and a contextual-attention branch (``pmconv6`` uses ReLU), concatenated and decoded.
    Both stages are clipped to [-1, 1] (``tf.clip_by_value``, zero gradient outside).
    ``cnum=32``: 3,601,542 parameters, as the official graph.

    Shapes: ``forward(image, validity)``: image ``(N, 3, H, W)`` in [0, 1], validity
    ``(N, 1, H, W)`` (1 = known); H, W multiples of 8. Returns ``(N, 3, H, W)`` in [0, 1].
    """

    gated = False
    refine_with_mask = True

    def __init__(self, cnum: int = 32) -> None:
        super().__init__(cnum)

    def _output(self, x: Tensor) -> Tensor:
        return x.clamp(-1.0, 1.0)


class DeepFillV2Generator(_DeepFillGenerator):
    """DeepFill v2 (generative_inpainting master): gated convolutions and contextual attention.

    Every ``gen_conv`` with ``c`` filters is gated: one convolution with ``c`` outputs split
    into ``c/2`` features (ELU; ReLU for ``pmconv6``) times ``c/2`` sigmoid gates. The coarse
    stage sees ``[x, ones, mask]`` (5 channels), the refinement stage only the pasted image
    (3 channels); both outputs are ``tanh``. ``cnum=48``: 4,052,478 parameters, as the official
    graph (the mmagic port has 4,414,908: a wider refinement decoder and a gated last layer).

    Shapes as :class:`DeepFillV1Generator`.
    """

    gated = True
    refine_with_mask = False

    def __init__(self, cnum: int = 48) -> None:
        super().__init__(cnum)

    def _output(self, x: Tensor) -> Tensor:
        return torch.tanh(x)


def _dis_conv(in_channels: int, out_channels: int, spectral: bool) -> nn.Module:
    conv = SameConv2d(in_channels, out_channels, 5, 2)
    return nn.utils.parametrizations.spectral_norm(conv) if spectral else conv


class SNPatchGANDiscriminator(nn.Module):
    """DeepFill v2's SN-PatchGAN: six 5×5 stride-2 spectral-norm convolutions, leaky ReLU 0.2.

    Widths ``cnum, 2·cnum, 4·cnum, 4·cnum, 4·cnum, 4·cnum``; input the image (mapped to
    [-1, 1]) and the hole mask (official ``gan_with_mask``: 1 = hole). ``cnum=64``: 5,946,816
    parameters counted as the official graph (kernels + biases; spectral norm's ``u``/``v`` are
    buffers, not counted). Spectral norm does one power iteration per training forward
    (PyTorch's parametrization; the TF code also iterates at inference).

    Shapes: ``forward(image, validity)``: image ``(N, 3, H, W)`` in [0, 1], validity
    ``(N, 1, H, W)``. Returns the score map ``(N, 4·cnum, ⌈H/64⌉, ⌈W/64⌉)`` (the official code
    flattens it; the hinge losses take means, so the layout does not matter).
    """

    def __init__(self, cnum: int = 64, in_channels: int = 4) -> None:
        super().__init__()
        self.cnum, self.in_channels = cnum, in_channels
        widths = [cnum, 2 * cnum, 4 * cnum, 4 * cnum, 4 * cnum, 4 * cnum]
        chans = [in_channels, *widths]
        self.convs = nn.ModuleList(
            _dis_conv(a, b, True) for a, b in zip(chans, widths, strict=False)
        )

    def forward_signed(self, x: Tensor) -> Tensor:
        """The official graph: ``x`` is ``[image in [-1, 1], hole mask]`` ``(N, 4, H, W)``."""
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x

    def forward(self, image: Tensor, validity: Tensor) -> Tensor:
        hole = 1.0 - validity.to(image.dtype).mean(1, keepdim=True)
        return self.forward_signed(torch.cat([image * 2.0 - 1.0, hole], dim=1))

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-able."""
        return {"cnum": self.cnum, "in_channels": self.in_channels}

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> SNPatchGANDiscriminator:
        """Build from :meth:`config`'s dict."""
        return cls(**d)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class _WGANCritic(nn.Module):
    """Four 5×5 stride-2 convolutions (leaky ReLU 0.2), flatten (NHWC order), dense → 1."""

    multiples: tuple[int, int, int, int]

    def __init__(self, cnum: int, size: int | Sequence[int], in_channels: int) -> None:
        super().__init__()
        self.cnum, self.size, self.in_channels = cnum, _pair(size), in_channels
        widths = [m * cnum for m in self.multiples]
        chans = [in_channels, *widths]
        self.convs = nn.ModuleList(
            _dis_conv(a, b, False) for a, b in zip(chans, widths, strict=False)
        )
        h, w = (-(-s // 16) for s in self.size)
        self.fc = nn.Linear(h * w * widths[-1], 1)
        nn.init.xavier_uniform_(self.fc.weight)  # tf.layers.dense: glorot_uniform, zero bias
        nn.init.zeros_(self.fc.bias)

    def forward_signed(self, x: Tensor) -> Tensor:
        """The official graph on an image in [-1, 1], ``(N, C, *size)`` → ``(N, 1)``."""
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"the critic was built for {self.size}, got {tuple(x.shape[-2:])}")
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.fc(x.permute(0, 2, 3, 1).flatten(1))

    def forward(self, image: Tensor) -> Tensor:
        """Critic value ``(N, 1)`` of images ``(N, C, *size)`` in [0, 1]."""
        return self.forward_signed(image * 2.0 - 1.0)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-able."""
        return {"cnum": self.cnum, "size": list(self.size), "in_channels": self.in_channels}

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> _WGANCritic:
        """Build from :meth:`config`'s dict."""
        return cls(**d)


class WGANLocalCritic(_WGANCritic):
    """DeepFill v1's local critic on the hole's bounding box (128×128 at 256×256 training).

    Widths ``cnum, 2·cnum, 4·cnum, 8·cnum``; ``cnum=64, size=128``: 4,339,329 parameters.
    """

    multiples = (1, 2, 4, 8)

    def __init__(self, cnum: int = 64, size: int | Sequence[int] = 128, in_channels: int = 3):
        super().__init__(cnum, size, in_channels)


class WGANGlobalCritic(_WGANCritic):
    """DeepFill v1's global critic on the whole image (256×256; ``GAN_WITH_MASK: False``).

    Widths ``cnum, 2·cnum, 4·cnum, 4·cnum``; ``cnum=64, size=256``: 2,733,441 parameters.
    """

    multiples = (1, 2, 4, 4)

    def __init__(self, cnum: int = 64, size: int | Sequence[int] = 256, in_channels: int = 3):
        super().__init__(cnum, size, in_channels)
