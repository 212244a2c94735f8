"""ancestral_sample: moments of the samples, reproducibility, shapes, bad input."""

import pytest
import torch

import lvm

N = 40_000


def test_mixture_samples_have_the_right_moments():
    lam = torch.tensor([0.2, 0.8], dtype=torch.float64)
    mu = torch.tensor([-3.0, 1.0], dtype=torch.float64)
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    x, z = lvm.ancestral_sample(lvm.GaussianMixture(lam, mu, sigma), N, generator=0)
    assert x.shape == (N,) and z.shape == (N,) and z.dtype == torch.int64
    frequency = (z == 0).double().mean()
    assert abs(frequency - 0.2) < 4 * (0.2 * 0.8 / N) ** 0.5
    mean = (lam * mu).sum()
    var = (lam * (sigma**2 + mu**2)).sum() - mean**2
    assert abs(x.mean() - mean) < 4 * (var / N).sqrt()
    assert abs(x.var() - var) / var < 0.05
    # Given z, x is the component: its conditional means match μ.
    assert abs(x[z == 0].mean() + 3.0) < 4 * 0.5 / (z == 0).sum().sqrt()


def test_generator_makes_draws_reproducible_and_leaves_global_state_alone():
    model = lvm.GaussianMixture([0.5, 0.5], [0.0, 5.0], [1.0, 1.0])
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = lvm.ancestral_sample(model, 50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)
    b = lvm.ancestral_sample(model, 50, generator=torch.Generator().manual_seed(7))
    c = lvm.ancestral_sample(model, 50, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.equal(lvm.ancestral_sample(model, 5, generator=3)[0], lvm.ancestral_sample(model, 5, generator=3)[0])


def test_multivariate_shapes():
    model = lvm.GaussianMixture([0.5, 0.5], torch.zeros(2, 4), torch.ones(2, 4))
    x, z = lvm.ancestral_sample(model, 6)
    assert x.shape == (6, 4) and z.shape == (6,)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        lvm.ancestral_sample(lvm.GaussianMixture([1.0], [0.0], [1.0]), n)


def test_bad_generator():
    with pytest.raises(ValueError, match="generator"):
        lvm.ancestral_sample(lvm.GaussianMixture([1.0], [0.0], [1.0]), 3, generator="seed")


@pytest.mark.parametrize("not_a_model", ["not a model", None, torch.nn.Linear(2, 2)])
def test_something_that_is_not_a_model_is_named(not_a_model):
    # A string raised AttributeError: 'str' object has no attribute 'prior'.
    with pytest.raises(TypeError, match="model must be a latent variable model"):
        lvm.ancestral_sample(not_a_model, 3)
