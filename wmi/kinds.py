"""Every list of kinds in wmi, one registry each, with the facts each entry carries.

Adding a conv kind, a norm, a mask kind, a metric or a classical method is one
``register(...)`` call here (or in your own code, before the CLI parses its arguments): the
command line's choices, defaults and help, the U-Net, the benchmarks and the reports read these
tables. Heavy objects are ``"module:attribute"`` references resolved by :func:`wmi.registry.load`,
so importing this module (and listing choices in ``wmi --help``) never imports torch.

Recipes: docs/layers.md (conv and norm kinds), docs/masks.md (mask kinds), docs/metrics.md
(metrics).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from wmi.registry import Entry, Registry


def _frozen(**values: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


# --------------------------------------------------------------------------------- layers


@dataclass(eq=False)
class ConvKind(Entry):
    """A masked convolution.

    Attributes:
        layer: the ``nn.Conv2d`` subclass (or its ``"module:Class"``), called as
            ``layer(in, out, kernel_size, stride=, padding=, dilation=, bias=, **kwargs)`` and
            then ``layer(x, mask, premasked=...) -> (y, new_mask)``.
        paper_norm: the norm kind the paper pairs it with (``--norm auto``, benchmarks).
        label: the network's name in the paper's tables ("WConv").
        block_kwargs: extra layer arguments inside a U-Net block.
    """

    layer: Any = None
    paper_norm: str = "batch"
    label: str = ""
    block_kwargs: Mapping[str, Any] = field(default_factory=_frozen)


@dataclass(eq=False)
class NormKind(Entry):
    """A normalization called as ``norm(x, mask)``.

    Attributes:
        layer: the module class (or its reference), built as ``layer(num_features)``, plus
            ``momentum=`` when it is a ``nn.BatchNorm2d`` subclass.
        min_values: values per channel a training batch must give it (``nn.BatchNorm2d``
            refuses one: no batch variance; the weighted norm normalizes one to its shift).
    """

    layer: Any = None
    min_values: int = 1


CONV_KINDS: Registry[ConvKind] = Registry("conv kind")
CONV_KINDS.register(
    ConvKind(
        "weighted",
        "WConv, eqs. 1 and 3",
        layer="wmi.layers.conv:WeightedConv2d",
        paper_norm="weighted",
        label="WConv",
    )
)
CONV_KINDS.register(
    ConvKind("partial", "PConv, eqs. 1 and 2", layer="wmi.layers.conv:PartialConv2d", label="PConv")
)
# The U-Net applies its own activation after the norm, so the gated layer's is switched off.
CONV_KINDS.register(
    ConvKind(
        "gated",
        "DeepFill v2 gated",
        layer="wmi.layers.conv:GatedConv2d",
        label="Gated",
        block_kwargs=_frozen(activation="none"),
    )
)
CONV_KINDS.register(
    ConvKind("plain", "no mask", layer="wmi.layers.conv:PlainConv2d", label="Plain")
)

NORM_KINDS: Registry[NormKind] = Registry("norm kind")
NORM_KINDS.register(
    NormKind(
        "weighted", "weighted batch norm, eqs. 4-6", layer="wmi.layers.norm:WeightedBatchNorm2d"
    )
)
NORM_KINDS.register(
    NormKind("batch", "batch norm", layer="wmi.layers.norm:BatchNorm2d", min_values=2)
)
NORM_KINDS.register(
    NormKind("instance", "weighted instance norm", layer="wmi.layers.norm:WeightedInstanceNorm2d")
)
NORM_KINDS.register(NormKind("none", "no normalization", layer="wmi.layers.norm:NoNorm"))

#: ``--norm auto``: the norm the paper pairs with the conv kind.
AUTO = "auto"


def paper_norm(conv: str, norm: str = AUTO) -> str:
    """``norm``, or the conv kind's paper pairing when ``norm`` is "auto"."""
    return CONV_KINDS[conv].paper_norm if norm == AUTO else NORM_KINDS[norm].name


# ---------------------------------------------------------------------------------- archs


@dataclass(eq=False)
class Arch(Entry):
    """A whole network ``wmi train --arch`` trains, with the facts of its recipe.

    Attributes:
        network: the generator class (or its reference): ``forward(image, validity) ->
            output`` (image ``(N, 3, H, W)`` in [0, 1], validity ``(N, 1, H, W)``, 1 = known;
            output raw, not composited), ``config()`` and the classmethod ``from_config(d)``
            rebuild it, ``multiple`` is its size rule.
        width: the default ``--base-channels`` (U-Net: the first layer; DeepFill: ``cnum``).
        takes_conv: the U-Net's options apply (``--conv``, ``--norm``, ``--layers``,
            ``--bn-momentum``, ``--finetune``); other archs refuse ``--conv``/``--norm``.
        masks: the default ``--masks`` (a mask kind).
        lr: the default ``--lr``; lr_final: the default ``--lr-final`` (None: = lr, constant).
        betas: Adam's betas (eps 1e-8, as PyTorch and TensorFlow).
        loss: ``loss(cfg, world) -> nn.Module`` with ``terms`` (logged names, "total" first);
            its trainable parameters, if any, are the discriminators (a second Adam).
        step: one training step, ``step(parts, draw) -> terms`` (:mod:`wmi.training.step`).
        critic_steps: discriminator steps per generator step, each on a batch of its own.
        label: the network's name in reports (Table I's column).
        onnx: whether torch's exporter traces the network (``wmi export --onnx``).
    """

    network: Any = None
    width: int = 64
    takes_conv: bool = False
    masks: str = "freeform"
    lr: float = 1e-4
    lr_final: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    loss: Any = None
    step: Any = None
    critic_steps: int = 0
    label: str = ""
    onnx: bool = True


ARCHS: Registry[Arch] = Registry("arch")
ARCHS.register(
    Arch(
        "unet",
        "the paper's PConv U-Net with --conv and --norm",
        network="wmi.models.unet:InpaintingUNet",
        width=64,
        takes_conv=True,
        masks="freeform",
        lr=5e-4,
        lr_final=1e-5,
        betas=(0.9, 0.999),
        loss="wmi.training.losses:unet_loss",
        step="wmi.training.step:unet_step",
    )
)
ARCHS.register(
    Arch(
        "deepfill1",
        "DeepFill v1: contextual attention, WGAN-GP local and global critics",
        network="wmi.models.deepfill:DeepFillV1Generator",
        width=32,
        masks="box",
        betas=(0.5, 0.9),
        loss="wmi.training.gan:DeepFillV1Loss",
        step="wmi.training.gan:deepfill_v1_step",
        critic_steps=5,
        label="DF1",
        # contextual attention picks TF's nearest-neighbour pixels with numpy from the input
        # size, which torch.export cannot trace for inputs of any size
        onnx=False,
    )
)
ARCHS.register(
    Arch(
        "deepfill2",
        "DeepFill v2: gated convolution, contextual attention, SN-PatchGAN",
        network="wmi.models.deepfill:DeepFillV2Generator",
        width=48,
        masks="freeform",
        betas=(0.5, 0.999),
        loss="wmi.training.gan:DeepFillV2Loss",
        step="wmi.training.gan:deepfill_v2_step",
        critic_steps=1,
        label="DF2",
        # contextual attention picks TF's nearest-neighbour pixels with numpy from the input
        # size, which torch.export cannot trace for inputs of any size
        onnx=False,
    )
)


# ------------------------------------------------------------------------- run settings


@dataclass(eq=False)
class AmpMode(Entry):
    """An autocast setting. ``dtype``: the ``torch`` dtype's name, or None for float32."""

    dtype: str | None = None


AMP_MODES: Registry[AmpMode] = Registry("amp mode")
AMP_MODES.register(AmpMode("auto", "bf16 on a CUDA device that supports it, else off"))
AMP_MODES.register(AmpMode("bf16", "bfloat16 autocast", dtype="bfloat16"))
AMP_MODES.register(AmpMode("fp16", "float16 autocast with a gradient scaler", dtype="float16"))
AMP_MODES.register(AmpMode("off", "float32"))


@dataclass(eq=False)
class Device(Entry):
    """A ``--device`` choice."""


DEVICES: Registry[Device] = Registry("device")
DEVICES.register(Device("auto", "cuda when available, else mps (Apple), else cpu"))
DEVICES.register(Device("cpu", "the CPU"))
DEVICES.register(Device("cuda", "the first CUDA device (this rank's under torchrun)"))
DEVICES.register(Device("mps", "Apple's Metal GPU"))


@dataclass(eq=False)
class PerceptualKind(Entry):
    """The feature network of the perceptual and style losses (None: those terms are off)."""

    network: Any = None


PERCEPTUAL: Registry[PerceptualKind] = Registry("perceptual network")
PERCEPTUAL.register(
    PerceptualKind(
        "vgg16", "ImageNet VGG16 pool1-3, as PConv", network="wmi.training.losses:VGG16Features"
    )
)
PERCEPTUAL.register(PerceptualKind("none", "no perceptual or style loss"))


# ---------------------------------------------------------------------------------- masks


@dataclass(eq=False)
class MaskKind(Entry):
    """A hole generator.

    Attributes:
        generator: called as ``generator(height, width, rng, **options)`` and returning a bool
            ``(height, width)`` array, True = hole (a reference or the function).
        options: fixed keyword arguments (the LaMa presets share one function).
        training: takes ``training=True`` (DeepFill v2's strokes-or-box training masks).
        bucketed: takes ``bucket=`` (a hole-ratio bucket) and ``touches_border=`` itself.
    """

    generator: Any = None
    options: Mapping[str, Any] = field(default_factory=_frozen)
    training: bool = False
    bucketed: bool = False


MASK_KINDS: Registry[MaskKind] = Registry("mask kind")
MASK_KINDS.register(MaskKind("center", "centre square, a quarter of the area", "wmi.masks:center"))
MASK_KINDS.register(MaskKind("box", "random rectangle", "wmi.masks:box"))
MASK_KINDS.register(
    MaskKind("freeform", "DeepFill v2 strokes", "wmi.masks:freeform", training=True)
)
MASK_KINDS.register(
    MaskKind(
        "irregular", "NVIDIA-style, in hole-ratio buckets", "wmi.masks:irregular", bucketed=True
    )
)
for _preset, _what in (
    ("thin", "strokes"),
    ("medium", "strokes or boxes"),
    ("thick", "strokes or boxes"),
):
    MASK_KINDS.register(
        MaskKind(
            _preset,
            f"LaMa's {_preset} {_what}",
            "wmi.masks:lama",
            options=_frozen(preset=_preset),
        )
    )
del _preset, _what


# ----------------------------------------------------------------------------------- data


@dataclass(eq=False)
class Preset(Entry):
    """How ``wmi data prepare`` turns a source image into what the shards store.

    Attributes:
        aspect: height / width the image is scaled to, its width being ``--size`` (CelebA:
            313 / 256, the paper's numbers); None: the shorter side is scaled to ``--size``.
        square: keep only the centre ``size`` x ``size`` (every image the same); False: store
            the image whole, and the training loader crops it (at random for training, at the
            centre for validation).
        max_side: an unscaled preset: the image keeps its pixels (scaled up only when a side is
            shorter than ``--size``) and only its centre, at most ``max_side * size`` pixels a
            side, is stored. None: the image is scaled (``aspect``).
    """

    aspect: float | None = None
    square: bool = True
    max_side: float | None = None


PRESETS: Registry[Preset] = Registry("preset")
PRESETS.register(
    Preset(
        "celeba",
        "scaled to width size, height size*313/256 (the paper's 256x313), stored whole",
        aspect=313 / 256,
        square=False,
    )
)
for _name, _data in (("imagenet", "ImageNet"), ("places", "Places2")):
    PRESETS.register(
        Preset(
            _name,
            f"{_data} as the paper feeds it: unscaled (scaled up only when a side is shorter "
            "than size), its centre at most 2*size a side stored",
            square=False,
            max_side=2.0,
        )
    )
del _name, _data
PRESETS.register(Preset("plain", "shorter side scaled to size, centre size x size stored"))


@dataclass(eq=False)
class Compression(Entry):
    """HDF5 compression of image datasets; ``filter``: h5py's name, None for none."""

    filter: str | None = None


COMPRESSIONS: Registry[Compression] = Registry("compression")
COMPRESSIONS.register(Compression("none", "fastest reads"))
COMPRESSIONS.register(Compression("lzf", "fast, about 2x smaller", filter="lzf"))
COMPRESSIONS.register(Compression("gzip", "smallest, slowest", filter="gzip"))


# ----------------------------------------------------------------------- inpainting methods


@dataclass(eq=False)
class ClassicalMethod(Entry):
    """An inpainting method that needs no checkpoint.

    Attributes:
        fill: ``fill(image, hole, radius) -> float32 (H, W, 3)`` with ``image`` float
            ``(H, W, 3)`` in [0, 1] and ``hole`` bool ``(H, W)``, True = hole (a reference or
            the function).
        label: its name in reports.
    """

    fill: Any = None
    label: str = ""


CLASSICAL_METHODS: Registry[ClassicalMethod] = Registry("method")
CLASSICAL_METHODS.register(
    ClassicalMethod("telea", "OpenCV fast marching", "wmi.inpaint.classical:telea", label="Telea")
)
CLASSICAL_METHODS.register(
    ClassicalMethod("ns", "OpenCV Navier-Stokes", "wmi.inpaint.classical:navier_stokes", label="NS")
)
CLASSICAL_METHODS.register(
    ClassicalMethod(
        "biharmonic",
        "scikit-image biharmonic",
        "wmi.inpaint.classical:biharmonic",
        label="Biharmonic",
    )
)


class Strategy(str, enum.Enum):
    """How images larger than ``max_size`` are handled (``wmi inpaint --strategy``)."""

    resize = "resize"
    crop = "crop"
    original = "original"


class OutputFormat(str, enum.Enum):
    """File format of inpainted results; ``same`` keeps the input's (``--format``)."""

    png = "png"
    jpg = "jpg"
    webp = "webp"
    same = "same"


class Blend(str, enum.Enum):
    """How a grey mask level meets the fill: ``hard`` thresholds, ``soft`` feathers."""

    hard = "hard"
    soft = "soft"


#: On disk a mask pixel above this grey level is a hole (LaMa, IOPaint, OpenCV).
MASK_THRESHOLD = 127
#: The largest image any reader decodes unless told otherwise: 100 megapixels (e.g. 12000 x
#: 8333). A decoded image costs 3-4 bytes per pixel before any work; past this a file is more
#: likely a decompression bomb than a photograph, and it is a per-file error instead of
#: gigabytes of memory. ``--max-pixels`` (or ``max_pixels=``) moves it; 0 means no limit.
DEFAULT_MAX_PIXELS = 100_000_000
#: zlib level of PNG results: level 1 is several times faster than 6 for a few % more bytes.
PNG_LEVEL = 1
#: The largest --seed: numpy's and torch's generators take up to 64 bits, int64 files hold 63.
SEED_MAX = 2**63 - 1
#: Smallest mask side accepted by the mask generators.
MIN_MASK_SIDE = 16
#: The most masks of a numbered set: the six digits of its file names (000000.png).
MAX_MASKS = 1_000_000
#: The most --workers processes: each holds its own copy of the libraries (100+ MB).
MAX_WORKERS = 256
#: The largest image side of the square images wmi prepares and trains on (100 megapixels).
MAX_SIDE = 10_000
#: The integer architecture settings of the U-Net with their ranges: 12 layers already need
#: inputs of 4096² (a multiple of 2**12); 1024 base channels make 8192 in the deep layers,
#: about 600 M parameters per 3x3 layer. Files and training options are held to them.
ARCH_LIMITS = {"layers": (1, 12), "in_channels": (1, 4), "base_channels": (1, 1024)}


# -------------------------------------------------------------------------------- metrics


@dataclass(eq=False)
class Metric(Entry):
    """A per-image hole metric of Table I.

    Attributes:
        fn: ``fn(pred, gt, hole, comp) -> float`` with float ``(H, W, 3)`` images in [0, 1], a
            bool ``(H, W)`` hole (not empty) and the composite (a reference or the function).
        label: the terminal / Markdown row label, with its direction arrow.
        latex: the LaTeX row label.
        higher_is_better: which direction is better (the report marks the best value).
    """

    fn: Any = None
    label: str = ""
    latex: str = ""
    higher_is_better: bool = False


METRICS: Registry[Metric] = Registry("metric")
METRICS.register(
    Metric(
        "l1",
        "100 x mean absolute error over the hole",
        "wmi.eval.metrics:hole_l1",
        label="L1 (%) ↓",
        latex=r"$L_1$ (\%) $\downarrow$",
    )
)
METRICS.register(
    Metric(
        "l2",
        "100 x mean squared error over the hole",
        "wmi.eval.metrics:hole_l2",
        label="L2 (%) ↓",
        latex=r"$L_2$ (\%) $\downarrow$",
    )
)
METRICS.register(
    Metric(
        "tv",
        "100 x total variation of the composite on the dilated hole",
        "wmi.eval.metrics:hole_tv",
        label="TV ↓",
        latex=r"TV $\downarrow$",
    )
)
METRICS.register(
    Metric(
        "ssim",
        "SSIM of the composite",
        "wmi.eval.metrics:composite_ssim",
        label="SSIM ↑",
        latex=r"SSIM $\uparrow$",
        higher_is_better=True,
    )
)
METRICS.register(
    Metric(
        "psnr",
        "PSNR over the hole, capped at 100 dB",
        "wmi.eval.metrics:hole_psnr",
        label="hole PSNR (dB) ↑",
        latex=r"hole PSNR (dB) $\uparrow$",
        higher_is_better=True,
    )
)


#: Metrics computed by pretrained networks over many images at once (``wmi.eval.perceptual``), not
#: per image by a ``fn``: the reports read their labels and directions here.
NETWORK_METRICS: Registry[Metric] = Registry("network metric")
NETWORK_METRICS.register(
    Metric(
        "lpips",
        "LPIPS v0.1 of the composite (Zhang et al. 2018), mean over images",
        label="LPIPS ↓",
        latex=r"LPIPS $\downarrow$",
    )
)
NETWORK_METRICS.register(
    Metric(
        "fid",
        "FID of the composites against the ground truths (Heusel et al. 2017)",
        label="FID ↓",
        latex=r"FID $\downarrow$",
    )
)


@dataclass(eq=False)
class SsimWindow(Entry):
    """How SSIM weighs a pixel's neighbourhood (``--ssim-window``).

    Attributes:
        size: the window's side in pixels (images must be at least this large).
        gaussian: Gaussian weights (sigma 1.5, population covariance) instead of a uniform
            window with sample covariance; scikit-image's ``structural_similarity`` arguments.
        label: how every report names it.
        fn: ``"module:attribute"`` of a whole-image ``fn(comp, gt) -> float`` (``(H, W, 3)``
            images, uint8 or float in [0, 1]) used instead of scikit-image; ``""``:
            scikit-image's ``structural_similarity`` with ``size`` and ``gaussian``.
    """

    size: int = 7
    gaussian: bool = False
    label: str = ""
    fn: str = ""


#: Bootstrap resamples of a paired comparison unless told otherwise (``wmi eval --bootstrap``,
#: :func:`wmi.eval.stats.paired_bootstrap`); here, not there, so that ``wmi --help`` does not
#: import numpy.
DEFAULT_RESAMPLES = 10_000

SSIM_WINDOWS: Registry[SsimWindow] = Registry("SSIM window")
#: The default of ``wmi eval --ssim-window`` and of the metrics: scikit-image's defaults, the
#: definition of this reproduction's Table I (docs/paper.md#metrics-of-table-i), so results stay
#: comparable
#: across wmi versions; ``gaussian`` gives the numbers mmagic, torchmetrics and piq print,
#: ``lama`` those of LaMa's evaluation.
DEFAULT_SSIM_WINDOW = "uniform"
SSIM_WINDOWS.register(
    SsimWindow(
        "gaussian",
        "11x11 Gaussian, sigma 1.5: Wang et al. 2004, as mmagic, torchmetrics, piq",
        size=11,
        gaussian=True,
        label="gaussian 11x11 σ=1.5",
    )
)
SSIM_WINDOWS.register(
    SsimWindow("uniform", "7x7 uniform, scikit-image's default", size=7, label="uniform 7x7")
)
SSIM_WINDOWS.register(
    SsimWindow(
        "lama",
        "11x11 Gaussian, sigma 1.5, zero padding, border included: LaMa's evaluation",
        size=11,
        gaussian=True,
        label="LaMa's 11x11 σ=1.5, zero-padded",
        fn="wmi.eval.ssim:lama_ssim",
    )
)


@dataclass(eq=False)
class LpipsNet(Entry):
    """An LPIPS backbone (``--lpips-net``); the lpips package ships its linear heads."""


LPIPS_NETS: Registry[LpipsNet] = Registry("LPIPS network")
LPIPS_NETS.register(LpipsNet("alex", "AlexNet, LPIPS v0.1's default"))
LPIPS_NETS.register(LpipsNet("vgg", "VGG16"))
