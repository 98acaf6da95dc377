"""GAN and reconstruction losses of DeepFill v1 (WGAN-GP) and v2 (SN-PatchGAN hinge).

The formulas are those of the official code (JiahuiYu/generative_inpainting ``inpaint_model.py``
on the v1.0.0 branch and master, and neuralgym's ``gan_ops.py``). The functions are
range-agnostic; the official code evaluates them on images in [-1, 1], where an L1 distance is
twice the one of the same images in [0, 1]. To get the official magnitudes (and the balance
with the GAN weights), feed [-1, 1] tensors, e.g. ``DeepFillV1Generator.forward_signed`` and
the critics' ``forward_signed``.

Masks follow wmi: validity ``(N, 1, H, W)``, 1 = known, 0 = hole. The official masks are
``mask = 1 - validity``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "DF1_WEIGHTS",
    "DF2_WEIGHTS",
    "crop_box",
    "deepfill_v1_discriminator_loss",
    "deepfill_v1_generator_loss",
    "deepfill_v2_discriminator_loss",
    "deepfill_v2_generator_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "normalized_l1",
    "random_interpolates",
    "spatial_discounted_l1",
    "spatial_discounting_mask",
    "wgan_discriminator_loss",
    "wgan_generator_loss",
]

#: DeepFill v1 (``inpaint.yml`` of v1.0.0): GAN_LOSS_ALPHA, WGAN_GP_LAMBDA, COARSE_L1_ALPHA,
#: L1_LOSS_ALPHA, AE_LOSS_ALPHA, GLOBAL_WGAN_LOSS_ALPHA, SPATIAL_DISCOUNTING_GAMMA.
DF1_WEIGHTS = {
    "gan": 0.001,
    "gp": 10.0,
    "coarse_l1": 1.2,
    "l1": 1.2,
    "ae": 1.2,
    "global_wgan": 1.0,
    "gamma": 0.9,
}
#: DeepFill v2 (``inpaint.yml`` of master): gan_loss_alpha, l1_loss_alpha.
DF2_WEIGHTS = {"gan": 1.0, "l1": 1.0}

Box = tuple[int, int, int, int]


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """``0.5·mean(relu(1 - real)) + 0.5·mean(relu(1 + fake))`` (neuralgym ``gan_hinge_loss``)."""
    return 0.5 * torch.relu(1.0 - real).mean() + 0.5 * torch.relu(1.0 + fake).mean()


def hinge_generator_loss(fake: Tensor) -> Tensor:
    """``-mean(fake)`` (neuralgym ``gan_hinge_loss``)."""
    return -fake.mean()


def wgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """``mean(fake - real)`` (neuralgym ``gan_wgan_loss``), without the gradient penalty."""
    return (fake - real).mean()


def wgan_generator_loss(fake: Tensor) -> Tensor:
    """``-mean(fake)`` (neuralgym ``gan_wgan_loss``)."""
    return -fake.mean()


def random_interpolates(
    real: Tensor, fake: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """``real + α·(fake - real)`` with one ``α ~ U[0, 1)`` per sample (neuralgym).

    Args:
        real, fake: ``(N, ...)`` of the same shape; ``fake`` is detached.
        generator: the random source of α (None: torch's default generator).

    Returns:
        ``(N, ...)``, requiring grad (ready for :func:`gradient_penalty`).
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=generator, dtype=real.dtype, device=real.device)
    x = real.detach() + alpha * (fake.detach() - real.detach())
    return x.requires_grad_(True)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    interpolates: Tensor,
    weight: Tensor | None = None,
    norm: float = 1.0,
) -> Tensor:
    """``mean((sqrt(sum(∇² · weight)) - norm)²)`` over samples (neuralgym ``gradients_penalty``).

    DeepFill v1 weights the squared gradients by the HOLE mask (official ``mask``, here
    ``1 - validity``), so only the hole pixels are penalised.

    Args:
        critic: maps ``interpolates`` to scores (summed before differentiating).
        interpolates: ``(N, C, H, W)`` requiring grad (:func:`random_interpolates`).
        weight: ``(N or 1, 1 or C, H, W)``, broadcast over channels; None: all ones.
        norm: the target gradient norm.

    Returns:
        A scalar, differentiable with respect to the critic's parameters.
    """
    scores = critic(interpolates)
    (grad,) = torch.autograd.grad(scores.sum(), interpolates, create_graph=True)
    sq = grad.square() if weight is None else grad.square() * weight
    slopes = sq.flatten(1).sum(1).sqrt()
    return (slopes - norm).square().mean()


def spatial_discounting_mask(
    height: int,
    width: int,
    gamma: float = 0.9,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """``max(γ^min(i, H - i), γ^min(j, W - j))`` (official ``spatial_discounting_mask``).

    Returns:
        ``(1, 1, height, width)``: 1 on the box's first row and column, discounted towards
        the centre (the official formula uses ``H - i``, not ``H - 1 - i``).
    """
    i = torch.arange(height, dtype=torch.float64, device=device)[:, None]
    j = torch.arange(width, dtype=torch.float64, device=device)[None, :]
    rows = gamma ** torch.minimum(i, height - i)
    cols = gamma ** torch.minimum(j, width - j)
    return torch.maximum(rows, cols).to(dtype)[None, None]


def spatial_discounted_l1(target: Tensor, output: Tensor, gamma: float = 0.9) -> Tensor:
    """``mean(|target - output| · discounting mask)`` over every element, on a box crop.

    Args:
        target, output: ``(N, C, h, w)`` crops of the hole's bounding box (:func:`crop_box`).
        gamma: the discount (0.9 in DeepFill v1).
    """
    m = spatial_discounting_mask(*target.shape[-2:], gamma, target.dtype, target.device)
    return ((target - output).abs() * m).mean()


def normalized_l1(target: Tensor, output: Tensor, weight: Tensor) -> Tensor:
    """``mean(|target - output| · weight) / mean(weight)``: L1 per weighted pixel.

    Args:
        target, output: ``(N, C, H, W)``.
        weight: ``(N or 1, 1, H, W)``; the means run over its own elements, as in the official
            ``ae_loss`` (there the weight is ``1 - mask``, the KNOWN pixels).
    """
    return ((target - output).abs() * weight).mean() / weight.mean()


def crop_box(x: Tensor, box: Box) -> Tensor:
    """``x[..., top:top + height, left:left + width]`` (official ``local_patch``)."""
    top, left, height, width = box
    return x[..., top : top + height, left : left + width]


def deepfill_v1_generator_loss(
    target: Tensor,
    x1: Tensor,
    x2: Tensor,
    validity: Tensor,
    box: Box,
    local_fake: Tensor | None = None,
    global_fake: Tensor | None = None,
) -> dict[str, Tensor]:
    """DeepFill v1's generator objective (v1.0.0 ``build_graph_with_losses``), weights
    :data:`DF1_WEIGHTS`.

    ``l1 = 1.2·dL1(x1) + dL1(x2)`` on the box with spatial discounting;
    ``ae = (1.2·mean(|t - x1|·v) + mean(|t - x2|·v)) / mean(v)`` with ``v = 1 - mask``, the
    known pixels (as the official code does); ``g = 0.001·(wgan_g(global) + wgan_g(local)) +
    1.2·l1 + 1.2·ae``. Pass [-1, 1] tensors for the official magnitudes.

    Args:
        target: the real images ``(N, 3, H, W)``.
        x1, x2: the raw coarse and refined outputs.
        validity: ``(N or 1, 1, H, W)``, 1 = known.
        box: ``(top, left, height, width)`` of the hole's bounding box (the local patch).
        local_fake, global_fake: critic scores of the completed images (None: no GAN term).

    Returns:
        ``{"l1", "ae", "gan", "total"}``.
    """
    w = DF1_WEIGHTS
    t_box = crop_box(target, box)
    l1 = w["coarse_l1"] * spatial_discounted_l1(t_box, crop_box(x1, box), w["gamma"])
    l1 = l1 + spatial_discounted_l1(t_box, crop_box(x2, box), w["gamma"])
    v = validity.to(target.dtype)
    ae = w["coarse_l1"] * ((target - x1).abs() * v).mean() + ((target - x2).abs() * v).mean()
    ae = ae / v.mean()
    gan = target.new_zeros(())
    if local_fake is not None and global_fake is not None:
        gan = w["global_wgan"] * wgan_generator_loss(global_fake) + wgan_generator_loss(local_fake)
    total = w["gan"] * gan + w["l1"] * l1 + w["ae"] * ae
    return {"l1": l1, "ae": ae, "gan": gan, "total": total}


def deepfill_v1_discriminator_loss(
    local_real: Tensor,
    local_fake: Tensor,
    global_real: Tensor,
    global_fake: Tensor,
    penalty_local: Tensor,
    penalty_global: Tensor,
) -> dict[str, Tensor]:
    """``wgan_d(local) + wgan_d(global) + 10·(gp_local + gp_global)``.

    The penalties come from :func:`gradient_penalty` on the local and the global critic, each
    weighted by its hole mask (``1 - validity``, cropped to the box for the local one).

    Returns:
        ``{"wgan", "gp", "total"}``.
    """
    wgan = wgan_discriminator_loss(global_real, global_fake)
    wgan = wgan + wgan_discriminator_loss(local_real, local_fake)
    gp = DF1_WEIGHTS["gp"] * (penalty_local + penalty_global)
    return {"wgan": wgan, "gp": gp, "total": wgan + gp}


def deepfill_v2_generator_loss(
    target: Tensor, x1: Tensor, x2: Tensor, fake: Tensor | None = None
) -> dict[str, Tensor]:
    """DeepFill v2's generator objective (master ``build_graph_with_losses``).

    ``ae = mean|t - x1| + mean|t - x2|`` over the whole image; ``total = 1·(-mean(fake)) + ae``
    with ``fake`` the SN-PatchGAN scores of the completed images (None: no GAN term).

    Returns:
        ``{"ae", "gan", "total"}``.
    """
    w = DF2_WEIGHTS
    ae = w["l1"] * (target - x1).abs().mean() + w["l1"] * (target - x2).abs().mean()
    gan = target.new_zeros(()) if fake is None else hinge_generator_loss(fake)
    return {"ae": ae, "gan": gan, "total": w["gan"] * gan + ae}


def deepfill_v2_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """The hinge loss on SN-PatchGAN scores of real and completed images."""
    return hinge_discriminator_loss(real, fake)
