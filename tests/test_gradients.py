"""Score-function and reparameterised gradient estimators: unbiased, with very different variances."""

import math

import pytest
import torch
from torch.distributions import Normal

import lvm

DT = torch.float64
S = 100_000
MU = torch.tensor([1.0, -2.0, 0.5], dtype=DT)
STD = torch.tensor([0.5, 1.0, 1.5], dtype=DT)


def squares(z):
    return (z**2).sum(-1)


def exps(a):
    return lambda z: torch.exp(a * z).sum(-1)


def assert_unbiased(grads, truth, n_se=4.5):
    mean = grads.mean(0)
    se = grads.std(0) / math.sqrt(grads.shape[0])
    assert (mean - truth).abs().le(n_se * se).all(), f"mean {mean} vs {truth} (se {se})"


# ∇ E[Σ z²] = ∇ Σ (μ² + σ²) = (2μ, 2σ); ∇ E[Σ e^{a z}] = ∇ Σ e^{aμ + a²σ²/2} = (a e, a² σ e).
CASES = [
    ("squares", squares, 2 * MU, 2 * STD),
    ("exp", exps(0.7), 0.7 * torch.exp(0.7 * MU + 0.49 * STD**2 / 2),
     0.49 * STD * torch.exp(0.7 * MU + 0.49 * STD**2 / 2)),
]


@pytest.mark.parametrize("name, f, grad_mu, grad_std", CASES)
def test_both_estimators_are_unbiased(name, f, grad_mu, grad_std):
    for estimator in (lvm.score_function_gradients, lvm.reparameterised_gradients):
        g_mu, g_std = estimator(f, MU, STD, S, generator=0)
        assert g_mu.shape == g_std.shape == (S, 3)
        assert_unbiased(g_mu, grad_mu)
        assert_unbiased(g_std, grad_std)


@pytest.mark.parametrize("name, f, grad_mu, grad_std", CASES)
def test_reparameterisation_has_lower_variance(name, f, grad_mu, grad_std):
    sf_mu, sf_std = lvm.score_function_gradients(f, MU, STD, 20_000, generator=1)
    rp_mu, rp_std = lvm.reparameterised_gradients(f, MU, STD, 20_000, generator=1)
    assert (rp_mu.var(0) < sf_mu.var(0)).all()
    assert (rp_std.var(0) < sf_std.var(0)).all()


def test_reparameterised_gradient_of_squares_is_exact_per_sample():
    # f'(z) = 2z and f'(z) ε = 2zε, sample by sample.
    g_mu, g_std = lvm.reparameterised_gradients(squares, MU, STD, 50, generator=3)
    eps = (g_mu / 2 - MU) / STD
    torch.testing.assert_close(g_std, g_mu * eps)
    assert eps.std() > 0.5  # genuinely random draws


def test_score_matches_autograd_of_the_log_density():
    g = torch.Generator().manual_seed(4)
    sf_mu, sf_std = lvm.score_function_gradients(squares, MU, STD, 5, generator=4)
    z = MU + STD * torch.randn((5, 3), generator=g, dtype=DT)  # the same draws: same seed, same call
    for s in range(5):
        mu, std = MU.clone().requires_grad_(True), STD.clone().requires_grad_(True)
        d_mu, d_std = torch.autograd.grad(Normal(mu, std).log_prob(z[s]).sum(), (mu, std))
        torch.testing.assert_close(sf_mu[s], squares(z[s]) * d_mu)
        torch.testing.assert_close(sf_std[s], squares(z[s]) * d_std)


@pytest.mark.parametrize("baseline", [float(squares(MU) + (STD**2).sum()), "leave-one-out"])
def test_baseline_keeps_the_mean_and_reduces_the_variance(baseline):
    plain_mu, plain_std = lvm.score_function_gradients(squares, MU, STD, S, generator=5)
    cv_mu, cv_std = lvm.score_function_gradients(squares, MU, STD, S, generator=5, baseline=baseline)
    assert_unbiased(cv_mu, 2 * MU)
    assert_unbiased(cv_std, 2 * STD)
    assert (cv_mu.var(0) < 0.8 * plain_mu.var(0)).all()
    assert (cv_std.var(0) < 0.8 * plain_std.var(0)).all()


def test_batched_q_with_one_value_per_problem():
    # Two independent problems side by side: f returns [n_samples, 2]; row i only depends on z[:, i].
    mu = torch.tensor([[1.0, 0.0], [-1.0, 2.0]], dtype=DT)
    std = torch.tensor([[0.5, 1.0], [1.0, 0.3]], dtype=DT)
    f = lambda z: (z**2).sum(-1) * torch.tensor([1.0, 3.0], dtype=DT)  # noqa: E731
    truth_mu = 2 * mu * torch.tensor([[1.0], [3.0]], dtype=DT)
    truth_std = 2 * std * torch.tensor([[1.0], [3.0]], dtype=DT)
    for estimator in (lvm.score_function_gradients, lvm.reparameterised_gradients):
        g_mu, g_std = estimator(f, mu, std, S, generator=6)
        assert g_mu.shape == (S, 2, 2)
        assert_unbiased(g_mu, truth_mu)
        assert_unbiased(g_std, truth_std)


def test_scalar_q_and_seeding():
    a = lvm.reparameterised_gradients(lambda z: z**3, 0.5, 2.0, 10, generator=7)
    b = lvm.reparameterised_gradients(lambda z: z**3, 0.5, 2.0, 10, generator=torch.Generator().manual_seed(7))
    assert a[0].shape == (10,)
    torch.testing.assert_close(a, b)
    c = lvm.reparameterised_gradients(lambda z: z**3, 0.5, 2.0, 10, generator=8)
    assert not torch.equal(a[0], c[0])


def test_works_under_no_grad():
    with torch.no_grad():
        g_mu, _ = lvm.reparameterised_gradients(squares, MU, STD, 4, generator=0)
    assert torch.isfinite(g_mu).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(mu=torch.tensor([float("nan")]), std=torch.ones(1)), "mu"),
    (dict(std=torch.tensor([1.0, 0.0, 1.0], dtype=DT)), "std"),
    (dict(std=torch.ones(2, dtype=DT)), "std"),
    (dict(n_samples=0), "n_samples"),
    (dict(n_samples=2.0), "n_samples"),
    (dict(generator="seed"), "generator"),
    (dict(f=lambda z: z.sum()), "f must return one value per sample"),
    (dict(f=lambda z: z.sum(0)), "f must return one value per sample"),
    (dict(f=lambda z: [1.0]), "f must return a tensor"),
    (dict(f=3), "f must be a callable"),
])
def test_bad_input(kwargs, match):
    args = dict(f=squares, mu=MU, std=STD, n_samples=10) | kwargs
    for estimator in (lvm.score_function_gradients, lvm.reparameterised_gradients):
        with pytest.raises(ValueError, match=match):
            estimator(**args)


def test_bad_baselines_and_non_differentiable_f():
    with pytest.raises(ValueError, match="baseline"):
        lvm.score_function_gradients(squares, MU, STD, 10, baseline="mean")
    with pytest.raises(ValueError, match="baseline"):
        lvm.score_function_gradients(squares, MU, STD, 10, baseline=torch.zeros(3, 10))
    with pytest.raises(ValueError, match="baseline"):
        lvm.score_function_gradients(squares, MU, STD, 1, baseline="leave-one-out")
    with pytest.raises(ValueError, match="baseline"):
        lvm.score_function_gradients(squares, MU, STD, 10, baseline=float("nan"))
    # The score function needs only values of f; the pathwise estimator needs f'.
    step = lambda z: (z > 0).to(z.dtype).sum(-1)  # noqa: E731
    g_mu, _ = lvm.score_function_gradients(step, MU, STD, S, generator=9)
    assert_unbiased(g_mu, torch.exp(Normal(0.0, 1.0).log_prob(-MU / STD)) / STD)  # d/dμ P(z > 0) = φ(μ/σ)/σ
    with pytest.raises(ValueError, match="differentiable"):
        lvm.reparameterised_gradients(step, MU, STD, 10)
