"""DeepFill losses against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from wmi.training.adversarial import (
    crop_box,
    deepfill_v1_discriminator_loss,
    deepfill_v1_generator_loss,
    deepfill_v2_discriminator_loss,
    deepfill_v2_generator_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    normalized_l1,
    random_interpolates,
    spatial_discounted_l1,
    spatial_discounting_mask,
    wgan_discriminator_loss,
    wgan_generator_loss,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hinge_losses():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 - real): 0, 0.5, 2 → mean 5/6
    fake = torch.tensor([-2.0, 0.0, 1.0, 3.0])  # relu(1 + fake): 0, 1, 2, 4 → mean 7/4
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(0.5 * 5 / 6 + 0.5 * 7 / 4)
    assert hinge_generator_loss(fake).item() == pytest.approx(-0.5)
    assert deepfill_v2_discriminator_loss(real, fake) == hinge_discriminator_loss(real, fake)


def test_wgan_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -1.0])
    assert wgan_discriminator_loss(real, fake).item() == pytest.approx(-2.5)
    assert wgan_generator_loss(fake).item() == pytest.approx(0.5)


def test_spatial_discounting_mask_by_hand():
    g = 0.5  # min(i, 4 - i) over i = 0..3: 0, 1, 2, 1 → 1, .5, .25, .5
    r = [1, 0.5, 0.25, 0.5]
    expected = torch.tensor([[max(a, b) for b in r] for a in r])
    torch.testing.assert_close(spatial_discounting_mask(4, 4, g)[0, 0], expected)
    m = spatial_discounting_mask(3, 5, 0.9)  # non-square: columns 0..4 → 1, .9, .81, .81, .9
    assert m.shape == (1, 1, 3, 5)
    assert m[0, 0, 1].tolist() == pytest.approx([1, 0.9, 0.9, 0.9, 0.9])
    assert m[0, 0, 1, 2].item() == pytest.approx(max(0.9 ** min(1, 2), 0.9 ** min(2, 3)))


def test_spatial_discounted_l1_by_hand():
    target = torch.zeros(1, 1, 2, 2)
    output = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # 2×2, gamma 0.5: weights max(.5^min(i,2-i), .5^min(j,2-j)) = [[1, 1], [1, .5]]
    expected = (1 + 2 + 3 + 4 * 0.5) / 4
    assert spatial_discounted_l1(target, output, 0.5).item() == pytest.approx(expected)


def test_normalized_l1_divides_by_the_mean_weight():
    target = torch.zeros(1, 3, 1, 2)
    output = torch.tensor([[[[1.0, 5.0]], [[2.0, 5.0]], [[3.0, 5.0]]]])
    weight = torch.tensor([[[[1.0, 0.0]]]])
    # mean over 6 elements of |d|·w = (1 + 2 + 3) / 6 = 1, mean(weight) = 0.5
    assert normalized_l1(target, output, weight).item() == pytest.approx(2.0)


def test_random_interpolates_use_one_alpha_per_sample():
    real = torch.zeros(3, 2, 4, 4)
    fake = torch.ones(3, 2, 4, 4)
    x = random_interpolates(real, fake, _gen(0))
    assert x.requires_grad
    alphas = x.flatten(1)
    assert torch.equal(alphas, alphas[:, :1].expand_as(alphas))
    torch.testing.assert_close(x, random_interpolates(real, fake, _gen(0)))


def test_gradient_penalty_of_a_linear_critic_by_hand():
    a = torch.tensor([[[[1.0, 2.0], [0.0, 2.0]]]])  # critic(x) = sum(a · x): gradient a

    def critic(x):
        return (x * a).flatten(1).sum(1, keepdim=True)

    x = torch.rand(2, 1, 2, 2, generator=_gen(1)).requires_grad_(True)
    # all pixels: slope sqrt(1 + 4 + 0 + 4) = 3 → (3 - 1)² = 4
    assert gradient_penalty(critic, x).item() == pytest.approx(4.0)
    hole = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])  # slope sqrt(4) = 2 → 1
    assert gradient_penalty(critic, x, hole).item() == pytest.approx(1.0)


def test_gradient_penalty_reaches_the_critic_parameters():
    critic = torch.nn.Conv2d(1, 1, 2)
    x = torch.rand(2, 1, 2, 2, generator=_gen(2)).requires_grad_(True)
    gradient_penalty(critic, x).backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_deepfill_v1_generator_loss_by_hand():
    g = _gen(3)
    target, x1, x2 = (torch.rand(2, 3, 8, 8, generator=g) for _ in range(3))
    validity = torch.ones(1, 1, 8, 8)
    validity[..., 3:6, 2:7] = 0
    box = (2, 1, 5, 6)
    lf, gf = torch.tensor([0.5, -0.5]), torch.tensor([1.0, 2.0])
    got = deepfill_v1_generator_loss(target, x1, x2, validity, box, lf, gf)

    m = torch.tensor(
        [[max(0.9 ** min(i, 5 - i), 0.9 ** min(j, 6 - j)) for j in range(6)] for i in range(5)]
    )
    t = target[..., 2:7, 1:7]
    l1 = (
        1.2 * ((t - x1[..., 2:7, 1:7]).abs() * m).mean()
        + ((t - x2[..., 2:7, 1:7]).abs() * m).mean()
    )
    v = validity
    ae = (1.2 * ((target - x1).abs() * v).mean() + ((target - x2).abs() * v).mean()) / v.mean()
    gan = -gf.mean() - lf.mean()
    torch.testing.assert_close(got["l1"], l1)
    torch.testing.assert_close(got["ae"], ae)
    torch.testing.assert_close(got["gan"], gan)
    torch.testing.assert_close(got["total"], 0.001 * gan + 1.2 * l1 + 1.2 * ae)


def test_deepfill_v1_discriminator_loss_by_hand():
    lr, lf, gr, gf = (torch.tensor(v) for v in ([1.0, 2.0], [0.0, 0.0], [3.0, 1.0], [1.0, 1.0]))
    got = deepfill_v1_discriminator_loss(lr, lf, gr, gf, torch.tensor(0.25), torch.tensor(0.5))
    assert got["wgan"].item() == pytest.approx((0 - 1.5) + (1 - 2))
    assert got["gp"].item() == pytest.approx(7.5)
    assert got["total"].item() == pytest.approx(5.0)


def test_deepfill_v2_generator_loss_by_hand():
    target = torch.zeros(1, 1, 1, 2)
    x1 = torch.tensor([[[[1.0, -1.0]]]])
    x2 = torch.tensor([[[[0.5, 0.5]]]])
    got = deepfill_v2_generator_loss(target, x1, x2, torch.tensor([2.0, 4.0]))
    assert got["ae"].item() == pytest.approx(1.5)
    assert got["total"].item() == pytest.approx(1.5 - 3.0)
    assert deepfill_v2_generator_loss(target, x1, x2)["gan"].item() == 0


def test_crop_box():
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    assert crop_box(x, (1, 2, 2, 3)).tolist() == [[[[7, 8, 9], [12, 13, 14]]]]
    assert math.isclose(float(crop_box(x, (0, 0, 4, 5)).sum()), 190)
