"""The contract, on every model: ancestral sampling, the ELBO and the IWAE bound work on anything that defines
``prior()`` and ``likelihood(z)``, the package's models and a chapter's own alike.

The chapter models are written the way chapters 3 and 4 write theirs: a small ``LatentVariableModel``
subclass with ``prior()`` and ``likelihood(z)`` and nothing else (no ``_check_x``, no registered device).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from conftest import make_linear_gaussian, make_small_vae
from torch import nn
from torch.distributions import Distribution, Independent, Normal

import lvm

N = 5  # data points per case


class DecoderModel(lvm.LatentVariableModel):
    """Chapter 3's model: p(z) = N(0, I), p(x | z) = N(f(z; φ), σ² I), with f any network."""

    def __init__(self, decoder: nn.Module, z_dim: int, sigma: float):
        super().__init__()
        self.decoder, self.z_dim, self.sigma = decoder, z_dim, sigma

    def prior(self):
        zeros = torch.zeros(self.z_dim)
        return Independent(Normal(zeros, torch.ones(self.z_dim)), 1)

    def likelihood(self, z):
        mean = self.decoder(z)  # f(z; φ), batched over z's leading dims
        return Independent(Normal(mean, self.sigma * torch.ones_like(mean)), 1)


class SquareModel(lvm.LatentVariableModel):
    """Chapter 4's model: p(z) = N(0, 1), p(x | z) = N(z², σ²); no parameters at all."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def prior(self):
        return Independent(Normal(torch.zeros(1), torch.ones(1)), 1)

    def likelihood(self, z):
        return Independent(Normal(z**2, self.sigma), 1)


def standard_normal_q(n: int, d_z: int) -> Distribution:
    """A q(z | x) for models without an encoder or a posterior: N(0.1, 0.9²) per point, batch [n]."""
    return Independent(Normal(torch.full((n, d_z), 0.1), torch.full((n, d_z), 0.9)), 1)


def decoder_model() -> DecoderModel:
    torch.manual_seed(0)
    return DecoderModel(nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 2)), z_dim=1, sigma=0.2)


def make_conditional_vae() -> lvm.ConditionalVAE:
    torch.manual_seed(0)
    return lvm.ConditionalVAE(10, 3, 2, hidden=(8,))


def make_two_level_vae() -> lvm.TwoLevelVAE:
    torch.manual_seed(0)
    return lvm.TwoLevelVAE(10, 3, 2, hidden=(8,), hidden_top=(4,))


# name -> (build the model, its q(z | x) for data x)
CASES: dict[str, tuple[Callable[[], lvm.LatentVariableModel], Callable]] = {
    "mixture 1-D": (lambda: lvm.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.0]),
                    lambda model, x: model.posterior(x)),
    "mixture 3-D": (lambda: lvm.GaussianMixture([0.5, 0.5], torch.zeros(2, 3), torch.ones(2, 3)),
                    lambda model, x: model.posterior(x)),
    "linear-Gaussian": (lambda: make_linear_gaussian(d_x=4, d_z=2),
                        lambda model, x: model.posterior(x)),
    "VAE bernoulli mlp": (lambda: make_small_vae(), lambda model, x: model.encode(x)),
    "VAE gaussian mlp": (lambda: make_small_vae(likelihood="gaussian", hidden=()),
                         lambda model, x: model.encode(x)),
    "VAE bernoulli conv": (lambda: make_small_vae(x_dim=784, hidden=(16,), architecture="conv"),
                           lambda model, x: model.encode(x)),
    "conditional VAE given labels": (lambda: make_conditional_vae().given(torch.tensor([0, 2, 1, 1, 0])),
                                     lambda model, x: model.encode(x)),
    "two-level VAE": (make_two_level_vae, lambda model, x: model.encode(x)),
    "chapter 3 decoder model": (decoder_model, lambda model, x: standard_normal_q(x.shape[0], 1)),
    "chapter 4 square model": (lambda: SquareModel(sigma=0.5),
                               lambda model, x: standard_normal_q(x.shape[0], 1)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_model_samples_and_has_an_elbo_and_an_iwae_bound(name):
    build, make_q = CASES[name]
    model = build()
    x, z = lvm.ancestral_sample(model, N, generator=0)
    again, _ = lvm.ancestral_sample(model, N, generator=0)
    assert torch.equal(x, again)  # a seed makes the draws reproducible
    prior, likelihood = model.prior(), model.likelihood(z)
    assert z.shape == (N, *prior.event_shape) and x.shape == (N, *likelihood.event_shape)
    assert likelihood.batch_shape == (N,)

    with torch.no_grad(), torch.random.fork_rng():
        q = make_q(model, x)
        elbo = lvm.elbo(model, x, q, n_samples=4)
        elbo_other_form = lvm.elbo_joint_entropy(model, x, q, n_samples=4)
        torch.manual_seed(5)
        iwae = lvm.iwae_bound(model, x, q, k=8, chunk_size=3)
        torch.manual_seed(5)  # the same draws, so the bound is the log-mean of these weights
        log_w = lvm.log_importance_weights(model, x, q, k=8, chunk_size=3)
    for value in (elbo, elbo_other_form, iwae):
        assert value.shape == (N,) and torch.isfinite(value).all()
    assert log_w.shape == (8, N) and torch.isfinite(log_w).all()
    torch.testing.assert_close(iwae, torch.logsumexp(log_w, dim=0) - math.log(8))

    if name.startswith(("mixture", "linear")):  # tractable: at q = p(z | x) every weight is p(x)
        exact = model.log_marginal(x)
        torch.testing.assert_close(iwae, exact, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(lvm.elbo_via_posterior(model, x, q), exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", ["VAE bernoulli mlp", "conditional VAE given labels", "two-level VAE",
                                  "chapter 3 decoder model", "chapter 4 square model"])
def test_the_elbo_gives_gradients_to_q_and_to_the_model(name):
    build, _make_q = CASES[name]
    model = build()
    x, _ = lvm.ancestral_sample(model, N, generator=1)
    if "VAE" in name:
        q = model.encode(x)
        params = list(model.parameters())
    else:
        loc = torch.full((N, 1), 0.1, requires_grad=True)
        q = Independent(Normal(loc, torch.full((N, 1), 0.9)), 1)
        params = [loc, *model.parameters()]
    lvm.elbo(model, x, q, n_samples=3).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
