"""DeepFill v1 and v2 training (``wmi train --arch deepfill1|deepfill2``): the official recipes.

JiahuiYu/generative_inpainting trains the generator with ``ng.train.Trainer`` and the
discriminators with a ``SecondaryTrainer`` callback that runs before every generator step on
a graph of its own, so each discriminator step sees a batch of its own:

* **DeepFill v2** (master ``train.py``, ``inpaint.yml``): one SN-PatchGAN hinge step, then one
  generator step with ``L1(x1) + L1(x2)`` over the whole image plus ``-mean D(completed)``;
  Adam lr 1e-4, betas (0.5, 0.999), constant.
* **DeepFill v1** (v1.0.0): five WGAN-GP steps of the local (hole box) and global critics
  (penalty 10, over the hole pixels), then one generator step with the spatially discounted
  L1 (gamma 0.9) of both stages on the box, the L1 of both stages normalised by the known
  pixels (``ae_loss``; coarse stage weight 1.2, both terms weight 1.2) and 0.001 times the
  WGAN term; Adam lr 1e-4, betas (0.5, 0.9), constant.

Everything is computed in the official range [-1, 1] (``forward_signed``), so the loss
magnitudes and their balance are the official ones. The formulas are those of
:mod:`wmi.training.adversarial`. Where wmi differs (per-sample masks and boxes, two Adam
instances, no multi-GPU) is written in docs/models.md, "Integration".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from wmi.errors import WmiError
from wmi.models.deepfill import SNPatchGANDiscriminator, WGANGlobalCritic, WGANLocalCritic
from wmi.training.adversarial import (
    DF1_WEIGHTS,
    deepfill_v1_discriminator_loss,
    deepfill_v2_discriminator_loss,
    deepfill_v2_generator_loss,
    gradient_penalty,
    spatial_discounted_l1,
    wgan_generator_loss,
)
from wmi.training.step import Draw, StepParts

if TYPE_CHECKING:
    from wmi.training.config import TrainConfig


def _check_options(cfg: TrainConfig, world: int) -> None:
    """What the DeepFill steps do not run with, refused in one line each."""
    if cfg.amp == "fp16":
        raise WmiError(f"--amp fp16 is not supported with --arch {cfg.arch}; use bf16 or off")
    if cfg.compile:
        raise WmiError(f"--compile is not supported with --arch {cfg.arch}")
    if world > 1:
        raise WmiError(f"--arch {cfg.arch} trains on one device; multi-GPU runs are not supported")


class _RandomSource(nn.Module):
    """A seeded CPU random source whose state is part of ``state_dict`` (exact ``--resume``)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = torch.Generator().manual_seed(seed)

    def get_extra_state(self) -> dict[str, Tensor]:
        return {"rng": self.rng.get_state()}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        self.rng.set_state(state["rng"])


class DeepFillV2Loss(nn.Module):
    """``--arch deepfill2``'s adversary: the SN-PatchGAN (``cnum`` 64) and the terms logged.

    Args:
        cfg: the resolved run configuration; world: processes (must be 1).

    Raises:
        WmiError: ``--amp fp16``, ``--compile`` or several processes.
    """

    terms = ("total", "ae", "gan", "d")

    def __init__(self, cfg: TrainConfig, world: int) -> None:
        super().__init__()
        _check_options(cfg, world)
        self.discriminator = SNPatchGANDiscriminator()


class DeepFillV1Loss(nn.Module):
    """``--arch deepfill1``'s adversary: local and global WGAN critics (``cnum`` 64) and the
    random source of the gradient penalty's interpolation.

    The local critic sees a ``size/2`` square around the hole (the official ``HEIGHT``,
    ``WIDTH`` of 128 at 256²), the global one the whole ``size`` image.

    Raises:
        WmiError: as :class:`DeepFillV2Loss`.
    """

    terms = ("total", "l1", "ae", "gan", "d", "gp")

    def __init__(self, cfg: TrainConfig, world: int) -> None:
        super().__init__()
        _check_options(cfg, world)
        self.patch = cfg.size // 2
        self.local_critic = WGANLocalCritic(size=self.patch)
        self.global_critic = WGANGlobalCritic(size=cfg.size)
        self.random = _RandomSource(cfg.seed)

    def interpolates(self, real: Tensor, fake: Tensor) -> Tensor:
        """``real + α·(fake - real)``, one ``α ~ U[0, 1)`` per sample (neuralgym), with grad."""
        alpha = torch.rand(real.shape[0], 1, 1, 1, generator=self.random.rng)
        alpha = alpha.to(real.device, real.dtype)
        return (real.detach() + alpha * (fake.detach() - real.detach())).requires_grad_(True)


def local_boxes(validity: Tensor, patch: int) -> list[tuple[int, int]]:
    """``(top, left)`` of a ``patch × patch`` square per sample, centred on its hole's bounding
    box and moved inside the image (the official ``local_patch`` of the hole's bbox).

    For DeepFill v1's box masks (``--masks box``: a ``size/2`` box shrunk symmetrically) this is
    exactly the official box; a hole wider than ``patch`` is cut to its centre part, and a
    sample without a hole gets the centre square.

    Args:
        validity: ``(N, 1, H, W)``, 1 = known.
        patch: the side of the square (at most H and W).
    """
    hole = (validity[:, 0] < 0.5).cpu()
    height, width = hole.shape[-2:]
    boxes = []
    for rows, cols in zip(hole.any(2), hole.any(1), strict=True):
        starts = []
        for line, side in ((rows, height), (cols, width)):
            where = torch.nonzero(line).flatten()
            centre2 = int(where[0] + where[-1] + 1) if len(where) else side  # twice the centre
            starts.append(min(max((centre2 - patch) // 2, 0), side - patch))
        boxes.append((starts[0], starts[1]))
    return boxes


def crop_boxes(x: Tensor, boxes: list[tuple[int, int]], patch: int) -> Tensor:
    """``(N, C, patch, patch)``: each sample's square of :func:`local_boxes`."""
    return torch.stack([x[i, :, t : t + patch, s : s + patch] for i, (t, s) in enumerate(boxes)])


def _signed(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """A training batch as the official graph takes it: image in [-1, 1], validity."""
    image, validity = batch
    return image * 2.0 - 1.0, validity.to(image.dtype).mean(1, keepdim=True)


def _complete(output: Tensor, target: Tensor, validity: Tensor) -> Tensor:
    """The official ``batch_complete``: the output in the hole, the real pixels elsewhere."""
    return output * (1.0 - validity) + target * validity


def _autocast(x: Tensor, dtype: torch.dtype | None) -> torch.autocast:
    return torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=bool(dtype))


def _update(loss: Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    assert optimizer is not None, "a DeepFill step without its discriminator optimizer"
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def deepfill_v2_step(parts: StepParts, draw: Draw) -> dict[str, Tensor]:
    """``--arch deepfill2``: ``critic_steps`` (1) hinge steps of the SN-PatchGAN, each on a
    batch of its own, then one generator step. Returns ``total`` (the generator's), ``ae``,
    ``gan`` and ``d`` (the last discriminator loss)."""
    net, disc = parts.net, parts.loss_fn.discriminator
    d_loss = torch.zeros(())
    for _ in range(parts.critic_steps):
        target, validity = _signed(draw())
        hole = 1.0 - validity
        with _autocast(target, parts.dtype):
            with torch.no_grad():
                _, x2 = net.forward_signed(target, validity)
            pos_neg = torch.cat([target, _complete(x2, target, validity)])
            scores = disc.forward_signed(torch.cat([pos_neg, hole.repeat(2, 1, 1, 1)], 1))
            real, fake = scores.float().chunk(2)
            d_loss = deepfill_v2_discriminator_loss(real, fake)
        _update(d_loss, parts.d_optimizer)

    target, validity = _signed(draw())
    disc.requires_grad_(False)  # the generator's loss needs no discriminator gradients
    try:
        with _autocast(target, parts.dtype):
            x1, x2 = net.forward_signed(target, validity)
            completed = torch.cat([_complete(x2, target, validity), 1.0 - validity], 1)
            fake = disc.forward_signed(completed).float()
            terms = deepfill_v2_generator_loss(target, x1.float(), x2.float(), fake)
        _update(terms["total"], parts.optimizer)
    finally:
        disc.requires_grad_(True)
    return {**terms, "d": d_loss.detach()}


def _critic_step(parts: StepParts, loss: DeepFillV1Loss, draw: Draw) -> dict[str, Tensor]:
    """One WGAN-GP step of both critics on a batch of its own (v1.0.0 ``d_loss``)."""
    target, validity = _signed(draw())
    boxes, p = local_boxes(validity, loss.patch), loss.patch
    hole = 1.0 - validity
    with _autocast(target, parts.dtype):
        with torch.no_grad():
            _, x2 = parts.net.forward_signed(target, validity)
        complete = _complete(x2, target, validity)
        local_real, local_fake = crop_boxes(target, boxes, p), crop_boxes(complete, boxes, p)
        local = loss.local_critic.forward_signed(torch.cat([local_real, local_fake])).float()
        whole = loss.global_critic.forward_signed(torch.cat([target, complete])).float()
        penalty_local = gradient_penalty(
            loss.local_critic.forward_signed,
            loss.interpolates(local_real, local_fake),
            crop_boxes(hole, boxes, p),
        )
        penalty_global = gradient_penalty(
            loss.global_critic.forward_signed, loss.interpolates(target, complete), hole
        )
        terms = deepfill_v1_discriminator_loss(
            *local.chunk(2), *whole.chunk(2), penalty_local.float(), penalty_global.float()
        )
    _update(terms["total"], parts.d_optimizer)
    return terms


def deepfill_v1_step(parts: StepParts, draw: Draw) -> dict[str, Tensor]:
    """``--arch deepfill1``: ``critic_steps`` (5) WGAN-GP critic steps, each on a batch of its
    own, then one generator step. Returns ``total`` (the generator's), ``l1`` (discounted, on
    the box), ``ae`` (normalised by the known pixels), ``gan``, and ``d`` and ``gp`` of the last
    critic step."""
    loss: DeepFillV1Loss = parts.loss_fn
    critic = {"total": torch.zeros(()), "gp": torch.zeros(())}
    for _ in range(parts.critic_steps):
        critic = _critic_step(parts, loss, draw)

    target, validity = _signed(draw())
    boxes, p, w = local_boxes(validity, loss.patch), loss.patch, DF1_WEIGHTS
    critics = (loss.local_critic, loss.global_critic)
    for c in critics:
        c.requires_grad_(False)  # the generator's loss needs no critic gradients
    try:
        with _autocast(target, parts.dtype):
            x1, x2 = parts.net.forward_signed(target, validity)
            complete = _complete(x2, target, validity)
            local_fake = loss.local_critic.forward_signed(crop_boxes(complete, boxes, p)).float()
            global_fake = loss.global_critic.forward_signed(complete).float()
        x1, x2 = x1.float(), x2.float()
        # deepfill_v1_generator_loss with one box per sample instead of one per batch
        t_box = crop_boxes(target, boxes, p)
        l1 = w["coarse_l1"] * spatial_discounted_l1(t_box, crop_boxes(x1, boxes, p), w["gamma"])
        l1 = l1 + spatial_discounted_l1(t_box, crop_boxes(x2, boxes, p), w["gamma"])
        ae = w["coarse_l1"] * ((target - x1).abs() * validity).mean()
        ae = (ae + ((target - x2).abs() * validity).mean()) / validity.mean()
        gan = w["global_wgan"] * wgan_generator_loss(global_fake) + wgan_generator_loss(local_fake)
        total = w["gan"] * gan + w["l1"] * l1 + w["ae"] * ae
        _update(total, parts.optimizer)
    finally:
        for c in critics:
            c.requires_grad_(True)
    return {
        "total": total.detach(),
        "l1": l1.detach(),
        "ae": ae.detach(),
        "gan": gan.detach(),
        "d": critic["total"].detach(),
        "gp": critic["gp"].detach(),
    }
