"""Tests of lvm.diagnostics on a hand-built encoder whose posterior mean follows x in some latent dimensions and
ignores it in others: the KL per dimension against eq. gauss-kl by hand, and Burda et al.'s active units."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import lvm
from lvm.diagnostics import active_units, kl_per_dimension

D, Z = 6, 4
RAW = torch.tensor([0.5, -1.0, 0.0, 2.0])  # the raw scales: σ_j = softplus(RAW_j) + 1e-4, the same for every x


def hand_built_vae() -> lvm.VAE:
    """μ(x) = (2 x_0, x_1, 0.05 x_2, 0.3): dimensions 0 and 1 follow x, 2 barely, 3 not at all."""
    encoder = nn.Linear(D, 2 * Z)
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.weight[0, 0], encoder.weight[1, 1], encoder.weight[2, 2] = 2.0, 1.0, 0.05
        encoder.bias.copy_(torch.cat([torch.tensor([0.0, 0.0, 0.0, 0.3]), RAW]))
    torch.manual_seed(0)
    return lvm.VAE(D, Z, hidden=(8,), encoder=encoder)


def data(n: int = 400, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=g) < 0.5).float()


def test_kl_per_dimension_is_the_mean_closed_form_kl_of_each_dimension():
    x = data()
    mu = torch.stack([2 * x[:, 0], x[:, 1], 0.05 * x[:, 2], torch.full((len(x),), 0.3)], dim=1)
    std = F.softplus(RAW) + 1e-4
    by_hand = (0.5 * (mu**2 + std**2 - 1 - torch.log(std**2))).mean(0)  # eq. gauss-kl, per dimension
    kl = kl_per_dimension(hand_built_vae(), x)
    assert kl.shape == (Z,)
    torch.testing.assert_close(kl, by_hand)
    model = hand_built_vae()
    torch.testing.assert_close(kl.sum(), torch.distributions.kl_divergence(model.encode(x), model.prior()).mean())


def test_active_units_count_the_dimensions_whose_posterior_mean_varies_with_x():
    model, x = hand_built_vae(), data()
    # Variances over x of μ: about 4 · 1/4 = 1, 1/4, 0.05² / 4 ≈ 0.0006, and 0.
    assert active_units(model, x) == 2
    assert active_units(model, x, threshold=0.0001) == 3
    assert active_units(model, x, threshold=0.5) == 1
    assert active_units(model, x, threshold=10.0) == 0


def test_active_units_divide_by_n_and_need_more_than_the_threshold():
    # Two examples, x_0 = 1 and 0: μ_0 = 2 and 0, whose variance is 1 divided by n = 2 (the docstring's, and
    # the one for which KL_j >= A_j / 2 holds) but 2 divided by n - 1. At threshold 1.5, dividing by n - 1
    # counts dimension 0 as active; at threshold 1 exactly it is not active ("above", not "at least"), and
    # ">=" in place of ">" counts it. The other dimensions do not move (x_1 = x_2 = 0 in both examples).
    x = torch.zeros(2, D)
    x[0, 0] = 1.0
    assert active_units(hand_built_vae(), x, threshold=1.5) == 0
    assert active_units(hand_built_vae(), x, threshold=1.0) == 0
    assert active_units(hand_built_vae(), x, threshold=0.99) == 1
    # and for three examples, μ_0 = 2, 0, 0: variance 8/9 over n, 4/3 over n - 1
    x3 = torch.zeros(3, D)
    x3[0, 0] = 1.0
    assert active_units(hand_built_vae(), x3, threshold=1.0) == 0
    assert active_units(hand_built_vae(), x3, threshold=0.88) == 1


def test_diagnostics_leave_the_training_mode_and_the_gradients_alone():
    model = hand_built_vae()
    model.train()
    kl = kl_per_dimension(model, data(10))
    assert model.training and not kl.requires_grad


def test_a_conditional_vae_takes_x_and_y():
    torch.manual_seed(0)
    model = lvm.ConditionalVAE(D, 3, Z, hidden=(8,))
    x, y = data(30), torch.arange(30) % 3
    q = model.encode(x, y)
    by_hand = torch.distributions.kl_divergence(q.base_dist, model.prior().base_dist).mean(0)
    torch.testing.assert_close(kl_per_dimension(model, (x, y)), by_hand)
    assert active_units(model, (x, y), threshold=0.0) == int((q.mean.var(0, correction=0) > 0).sum())


@pytest.mark.parametrize("call, message", [
    (lambda m, x: active_units(m, x[:1]), "at least two"),
    (lambda m, x: active_units(m, x, threshold=-1.0), "threshold"),
    (lambda m, x: active_units(m, x, threshold=float("nan")), "threshold"),
    (lambda m, x: kl_per_dimension(m, x[:, :3]), "x must have shape"),
    (lambda m, x: kl_per_dimension(m, (x, torch.zeros(len(x), dtype=torch.long))), "given"),
])
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call(hand_built_vae(), data(10))


# --- the mutual-information gap (chapter 8) -------------------------------------------------------------------


def test_mutual_information_matches_a_hand_computation():
    # z takes 2 values, v takes 2 values; joint counts [[3, 1], [1, 3]] over 8 examples.
    z = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1], dtype=torch.float64)[:, None]
    v = torch.tensor([0, 0, 0, 1, 0, 1, 1, 1], dtype=torch.float64)[:, None]
    info, entropy = lvm.diagnostics.mutual_information(z, v)
    joint = torch.tensor([[3, 1], [1, 3]], dtype=torch.float64) / 8
    by_hand = (joint * (joint / 0.25).log()).sum()  # both marginals are (1/2, 1/2)
    torch.testing.assert_close(info[0, 0], by_hand)
    torch.testing.assert_close(entropy[0], torch.tensor(math.log(2), dtype=torch.float64))


def test_gap_is_one_for_a_code_that_copies_each_factor_and_zero_for_a_duplicated_one():
    gen = torch.Generator().manual_seed(0)
    factors = torch.rand(4000, 2, generator=gen, dtype=torch.float64)
    noise = torch.rand(4000, 1, generator=gen, dtype=torch.float64)
    disentangled = torch.cat([factors, noise], dim=1)  # z_1 = v_1, z_2 = v_2, z_3 unrelated
    gap = lvm.diagnostics.mutual_information_gap(disentangled, factors, bins=10)
    assert (gap > 0.95).all()  # 1, less the small positive bias of the unrelated dimension's estimate
    duplicated = torch.cat([factors[:, :1], factors[:, :1], noise], dim=1)  # v_1 twice, v_2 nowhere
    gap = lvm.diagnostics.mutual_information_gap(duplicated, factors, bins=10)
    assert gap[0].abs() < 1e-12 and gap[1] < 0.05
    rotated = torch.stack([factors[:, 0] + factors[:, 1], factors[:, 0] - factors[:, 1]], 1)  # entangled
    assert lvm.diagnostics.mutual_information_gap(rotated, factors, bins=10).max() < 0.3


@pytest.mark.filterwarnings("ignore:with n = 10 examples")  # ten rows, to test the refusals only
def test_mutual_information_gap_rejects_bad_input():
    good = torch.rand(10, 3)
    with pytest.raises(ValueError, match="same examples"):
        lvm.diagnostics.mutual_information_gap(good, torch.rand(9, 2))
    with pytest.raises(ValueError, match="codes must be a 2-D tensor"):
        lvm.diagnostics.mutual_information_gap(torch.rand(10), torch.rand(10, 2))
    with pytest.raises(ValueError, match="factors must hold finite"):
        lvm.diagnostics.mutual_information_gap(good, torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="at least two dimensions"):
        lvm.diagnostics.mutual_information_gap(torch.rand(10, 1), torch.rand(10, 2))
    with pytest.raises(ValueError, match="constant factor"):
        lvm.diagnostics.mutual_information_gap(good, torch.ones(10, 2))
    with pytest.raises(ValueError, match="bins must be at least 2"):
        lvm.diagnostics.mutual_information(good, torch.rand(10, 2), bins=1)


def test_a_skewed_continuous_factor_is_cut_into_equally_filled_bins():
    # The docstring promises equally filled bins (quantiles): 4000 distinct values in 20 bins of 200 each, so the
    # binned entropy is exactly log 20 whatever the distribution. Equal-width bins would give an exponential
    # column about 1.9 nats (most values fall in the first few bins), and a uniform one nearly log 20.
    gen = torch.Generator().manual_seed(1)
    skewed = torch.empty(4000, 1, dtype=torch.float64).exponential_(generator=gen)
    _, entropy = lvm.diagnostics.mutual_information(torch.rand(4000, 2, generator=gen), skewed, bins=20)
    torch.testing.assert_close(entropy[0], torch.tensor(math.log(20), dtype=torch.float64), rtol=0, atol=1e-12)


def test_each_gap_is_divided_by_its_own_factors_entropy():
    # A category of 3 values (shares 1/2, 3/10, 1/5: entropy 1.03 nats) beside a continuous factor (log 20 = 3.0
    # nats once binned). A code that copies each has gaps near 1 for both; dividing every gap by the largest
    # entropy instead of each factor's own would give the category about 1.03 / 3.0 = 0.34.
    gen = torch.Generator().manual_seed(2)
    category = torch.multinomial(torch.tensor([0.5, 0.3, 0.2]), 6000, replacement=True, generator=gen)
    continuous = torch.rand(6000, generator=gen, dtype=torch.float64)
    factors = torch.stack([category.double(), continuous], 1)
    codes = torch.cat([factors, torch.rand(6000, 1, generator=gen, dtype=torch.float64)], 1)
    info, entropy = lvm.diagnostics.mutual_information(codes, factors)
    shares = torch.bincount(category).double() / len(category)
    torch.testing.assert_close(entropy[0], -(shares * shares.log()).sum())  # the category's own plug-in entropy
    torch.testing.assert_close(entropy[1], torch.tensor(math.log(20), dtype=torch.float64))
    top_two = info.topk(2, dim=0).values
    gap = lvm.diagnostics.mutual_information_gap(codes, factors)
    torch.testing.assert_close(gap, (top_two[0] - top_two[1]) / entropy)
    assert (gap > 0.95).all()


@pytest.mark.parametrize("n", [15, 100])
def test_too_few_examples_for_the_bins_are_warned_about(n):
    # Perfectly disentangled codes scored a gap of exactly 0 at n <= bins and about 0.5 at n = 100, silently.
    gen = torch.Generator().manual_seed(0)
    factors = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    codes = torch.cat([factors, torch.rand(n, 1, generator=gen, dtype=torch.float64)], dim=1)
    with pytest.warns(UserWarning, match=rf"with n = {n} examples and bins = 20, .* biased upwards"):
        gap = lvm.diagnostics.mutual_information_gap(codes, factors, bins=20)
    assert (gap < 0.8).all()  # what the warning is about: far below the 1 these codes deserve


def test_enough_examples_raise_no_warning():
    gen = torch.Generator().manual_seed(0)
    factors = torch.rand(4000, 2, generator=gen, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lvm.diagnostics.mutual_information_gap(torch.cat([factors, factors[:, :1]], 1), factors, bins=20)
