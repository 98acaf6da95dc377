"""The PConv training loss (Liu et al., ECCV 2018, eq. 7), used for every network of the paper.

``L = 1·L_valid + 6·L_hole + 0.05·L_perceptual + 120·(L_style_out + L_style_comp) + 0.1·L_tv``
(docs/paper.md#the-network-and-the-training-recipe). With ``out`` the raw network output, ``gt``
the ground truth, ``M`` the
validity mask (1 = known) and ``comp = M⊙gt + (1−M)⊙out`` the composite:

* ``L_valid = mean(|M⊙(out − gt)|)``, ``L_hole = mean(|(1−M)⊙(out − gt)|)``; both means run
  over every element (N·C·H·W), as in PConv, so a small hole gives a small ``L_hole``.
* ``L_perceptual = Σ_p mean|Ψ_p(out) − Ψ_p(gt)| + mean|Ψ_p(comp) − Ψ_p(gt)|`` over the VGG16
  features Ψ_p after pool1, pool2 and pool3 (ImageNet-normalized inputs).
* ``L_style_out = Σ_p mean|G_p(out) − G_p(gt)|`` with the Gram matrix
  ``G_p(x) = Ψ_p(x) Ψ_p(x)ᵀ / (C_p·H_p·W_p)`` per image, computed in float32, and the mean over
  the batch and the ``C_p×C_p`` entries; ``L_style_comp`` likewise for the composite.
* ``L_tv``: on the composite, over the region ``P`` = hole dilated by one pixel with a 3×3
  square, ``(Σ_{horizontal pairs in P} |comp(i, j+1) − comp(i, j)| + Σ_{vertical pairs in P}
  |comp(i+1, j) − comp(i, j)|) / (C·H·W)``, differences summed over channels, a pair counting
  only when *both* pixels are in ``P``; averaged over the batch. This is exactly
  ``wmi.eval.metrics.total_variation(comp, dilate_hole(hole))`` of the evaluation code.

The VGG16 weights are ImageNet weights of torchvision's ``vgg16`` (file ``vgg16-397923af.pth``).
Our machines cannot download them, so :func:`resolve_vgg_weights` finds a local file or says
how to provide one; training can also run without the VGG terms (``perceptual="none"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wmi.errors import WmiError
from wmi.kinds import PERCEPTUAL
from wmi.models.checkpoint import read_torch_file
from wmi.registry import load
from wmi.weights import VGG16_FILE, find_weights, weights_search_dir

if TYPE_CHECKING:
    from wmi.training.config import TrainConfig

#: PConv eq. 7 weights.
LOSS_WEIGHTS = {
    "valid": 1.0,
    "hole": 6.0,
    "perceptual": 0.05,
    "style_out": 120.0,
    "style_comp": 120.0,
    "tv": 0.1,
}
#: torchvision's file name for the ImageNet VGG16 weights (in ``torch.hub.get_dir()/checkpoints``).
#: torchvision ``vgg16().features`` up to and including pool3; pools sit at indices 4, 9, 16.
VGG16_POOL3_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
VGG16_POOL_INDICES = (4, 9, 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_vgg_weights(path: str | os.PathLike[str] | None) -> Path:
    """The VGG16 weight file to use (the lookup rule of :mod:`wmi.weights`).

    ``path`` may be the file itself or a folder holding torchvision's ``vgg16-397923af.pth``
    (a ``--weights-dir``); without it, the torch hub cache ``torch.hub.get_dir()/checkpoints``.

    Raises:
        WmiError: no such file; the message names the file, where to put it, and
            ``--perceptual none``.
    """
    if path is not None and not Path(path).is_dir():
        if not Path(path).is_file():
            raise WmiError(f"--vgg-weights {path}: no such file")
        return Path(path)
    found = find_weights(VGG16_FILE, path)
    if found is not None:
        return found
    raise WmiError(
        f"VGG16 weights not found: no {weights_search_dir(path) / VGG16_FILE}; put torchvision's "
        "file there, pass --vgg-weights FILE_OR_DIR, or train without the perceptual and style "
        "terms with --perceptual none"
    )


class VGG16Features(nn.Module):
    """Frozen VGG16 features after pool1, pool2 and pool3 (torchvision's ``vgg16`` layout).

    The input is an image batch in [0, 1]; it is normalized with the ImageNet mean and standard
    deviation inside. Weights are those of ``torchvision.models.vgg16().features[:17]``; the
    module starts randomly initialized (tests use it so) until :meth:`load` fills it.

    Shapes:
        ``forward(x)``: x ``(N, 3, H, W)`` in [0, 1]; returns three tensors ``(N, 64, H/2, W/2)``,
        ``(N, 128, H/4, W/4)`` and ``(N, 256, H/8, W/8)``.
    """

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models.vgg import make_layers

        self.features = make_layers(VGG16_POOL3_CFG)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> VGG16Features:
        """Build the extractor and load a torchvision vgg16 state dict (``weights_only``)."""
        module = cls()
        module.load(path)
        return module

    def load(self, path: str | os.PathLike[str]) -> None:
        """Load the ``features.0`` … ``features.14`` weights of a torchvision vgg16 state dict.

        The classifier and deeper layers in the file are ignored.

        Raises:
            WmiError: the file is unreadable or is not a vgg16 state dict.
        """
        path = Path(path)
        state = read_torch_file(path, "VGG16 state dict")
        if not isinstance(state, dict):
            raise WmiError(f"{path}: not a VGG16 state dict (a {type(state).__name__})")
        wanted = self.features.state_dict()
        picked = {}
        for key, ref in wanted.items():
            value = state.get(f"features.{key}")
            if not isinstance(value, Tensor) or value.shape != ref.shape:
                raise WmiError(
                    f"{path}: not a torchvision vgg16 state dict (features.{key} "
                    f"{'missing' if value is None else 'has the wrong shape'})"
                )
            picked[key] = value
        self.features.load_state_dict(picked)

    def train(self, mode: bool = True) -> VGG16Features:
        # Always frozen: model.train() on a parent module must not change it (no BN here anyway).
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in VGG16_POOL_INDICES:
                out.append(h)
                if len(out) == len(VGG16_POOL_INDICES):
                    break
        return out


def gram_matrix(features: Tensor) -> Tensor:
    """Per-image Gram matrix ``F Fᵀ / (C·H·W)`` in float32.

    Args:
        features: ``(N, C, H, W)`` of any float dtype.

    Returns:
        ``(N, C, C)`` float32 (float64 for float64 features). Float32 because under
        bf16/fp16 autocast the sums of ``H·W`` products lose most of their digits (and
        overflow in fp16).
    """
    n, c, h, w = features.shape
    f = _wide(features).reshape(n, c, h * w)
    with torch.autocast(device_type=f.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def dilated_hole(mask: Tensor) -> Tensor:
    """The hole dilated by one pixel with a 3×3 square: ``(N, 1, H, W)`` float 0/1.

    ``mask`` is validity ``(N, 1|C, H, W)``; a pixel is a hole where its validity is below 0.5
    (in any channel). Pixels outside the image are not hole.
    """
    hole = (mask < 0.5).any(dim=1, keepdim=True).float()
    return F.max_pool2d(hole, kernel_size=3, stride=1, padding=1)


def total_variation_loss(comp: Tensor, mask: Tensor) -> Tensor:
    """``L_tv`` of the composite over the dilated hole, averaged over the batch (see module doc).

    Args:
        comp: composite ``(N, C, H, W)``.
        mask: validity ``(N, 1|C, H, W)``, 1 = known.

    Returns:
        scalar float32.
    """
    _, c, h, w = comp.shape
    region = dilated_hole(mask)
    both_h = region[..., :, 1:] * region[..., :, :-1]
    both_v = region[..., 1:, :] * region[..., :-1, :]
    comp = _wide(comp)
    dh = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * both_h
    dv = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * both_v
    per_image = (dh.sum(dim=(1, 2, 3)) + dv.sum(dim=(1, 2, 3))) / (c * h * w)
    return per_image.mean()


class InpaintingLoss(nn.Module):
    """PConv eq. 7 with every term returned separately.

    Args:
        features: a frozen feature extractor returning a list of feature maps for an image
            batch in [0, 1] (:class:`VGG16Features` for the paper's loss), or None to train
            without the perceptual and style terms.
        weights: per-term weights; defaults to :data:`LOSS_WEIGHTS` (1, 6, 0.05, 120, 120, 0.1).

    Shapes:
        ``forward(output, target, mask)``: output and target ``(N, 3, H, W)`` (target in
        [0, 1]), mask validity ``(N, 1|3, H, W)``. Returns a dict of float32 scalars: ``total``,
        ``valid``, ``hole``, ``tv`` and, with features, ``perceptual``, ``style_out``,
        ``style_comp``. ``total`` carries the gradient.
    """

    def __init__(
        self, features: nn.Module | None = None, weights: dict[str, float] | None = None
    ) -> None:
        super().__init__()
        self.features = features
        self.weights = dict(LOSS_WEIGHTS if weights is None else weights)

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the terms this loss computes, in logging order (``total`` first)."""
        base = ("total", "valid", "hole")
        vgg = ("perceptual", "style_out", "style_comp") if self.features is not None else ()
        return (*base, *vgg, "tv")

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        out, gt, m = _wide(output), _wide(target), _wide(mask)
        comp = m * gt + (1 - m) * out
        diff = out - gt
        terms: dict[str, Tensor] = {
            "valid": (m * diff).abs().mean(),
            "hole": ((1 - m) * diff).abs().mean(),
        }
        if self.features is not None:
            # Features of the target need no gradient; output and composite share one pass.
            with torch.no_grad():
                feats_gt = self.features(target.to(output.dtype))
            n = out.shape[0]
            feats = self.features(torch.cat([output, comp.to(output.dtype)]))
            terms["perceptual"] = sum(
                _l1(f[:n], g) + _l1(f[n:], g) for f, g in zip(feats, feats_gt, strict=True)
            )
            terms["style_out"], terms["style_comp"] = (
                sum(
                    _l1(gram_matrix(part), gram_matrix(g))
                    for part, g in zip(parts, feats_gt, strict=True)
                )
                for parts in ([f[:n] for f in feats], [f[n:] for f in feats])
            )
        terms["tv"] = total_variation_loss(comp, m)
        total = sum(self.weights[k] * v for k, v in terms.items())
        return {"total": total, **terms}


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return (_wide(a) - _wide(b)).abs().mean()


def _wide(x: Tensor) -> Tensor:
    """float32, or float64 for float64 input: loss arithmetic never runs in bf16/fp16."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def build_loss(perceptual: str, vgg_weights: str | os.PathLike[str] | None) -> InpaintingLoss:
    """The training loss for the ``--perceptual`` and ``--vgg-weights`` options.

    Args:
        perceptual: "vgg16" (the paper's loss; weights from ``vgg_weights`` or torchvision's
            cache) or "none" (no perceptual or style terms).
        vgg_weights: path of a torchvision vgg16 state dict, or None.

    Raises:
        WmiError: unknown ``perceptual``, or VGG16 weights not found or unreadable.
    """
    network = PERCEPTUAL[perceptual].network  # an unknown name: WmiError listing the choices
    if network is None:
        return InpaintingLoss(None)
    return InpaintingLoss(load(network).from_file(resolve_vgg_weights(vgg_weights)))


def unet_loss(cfg: TrainConfig, world: int) -> InpaintingLoss:
    """``--arch unet``'s loss (``ARCHS``): PConv's, with ``cfg``'s perceptual network.

    ``world`` (processes) does not matter to it; other archs' losses refuse some.
    """
    return build_loss(cfg.perceptual, cfg.vgg_weights)
