"""Properties of the bounds on random linear-Gaussian models, where log p(x) and p(z | x) are exact (float64).

- ELBO ≤ log p(x) for every Gaussian q, with equality at q = p(z | x), and the gap is KL(q ‖ p(z | x));
- the Monte Carlo ELBO agrees with the closed form;
- E[IWAE_k] does not decrease in k and tends to log p(x);
- the closed-form Gaussian KL equals its Monte Carlo estimate.
"""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

import lvm
from lvm import LinearGaussian

DT = torch.float64
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)


@st.composite
def problems(draw):
    """A random model, data from somewhere near it, and the generator that made them."""
    d_x = draw(st.integers(1, 5))
    d_z = draw(st.integers(1, 4))
    n = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    sigma = draw(st.floats(0.2, 2.0))
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_x, d_z, generator=g, dtype=DT) * draw(st.floats(0.1, 2.0))
    b = torch.randn(d_x, generator=g, dtype=DT)
    model = LinearGaussian(W, b, sigma)
    x = b + 2 * torch.randn(n, d_x, generator=g, dtype=DT)
    return model, x, g


def random_q(post, g, full: bool):
    """A Gaussian q(z | x) that is nowhere near the posterior in general: diagonal or full covariance."""
    n, d_z = post.mean.shape
    mean = post.mean + torch.randn(n, d_z, generator=g, dtype=DT)
    if full:
        A = torch.randn(n, d_z, d_z, generator=g, dtype=DT)
        return MultivariateNormal(mean, covariance_matrix=A @ A.mT + 0.1 * torch.eye(d_z, dtype=DT))
    return Independent(Normal(mean, 0.1 + torch.rand(n, d_z, generator=g, dtype=DT) * 2), 1)


def perturbed_posterior(post, g, shift=0.3, widen=(1.0, 1.5)):
    """q = N(m + shift · L ε, c² Σ) near p(z | x) = N(m, Σ = L Lᵀ), with c ≥ 1.

    Wider than the posterior in every direction, so E_q[(p/q)²] is finite (the importance weights have a
    variance) — a diagonal q around a strongly correlated posterior would not be.
    """
    n, d_z = post.mean.shape
    L = post.scale_tril
    c = widen[0] + (widen[1] - widen[0]) * torch.rand(n, 1, 1, generator=g, dtype=DT)
    mean = post.mean + shift * (L @ torch.randn(n, d_z, 1, generator=g, dtype=DT)).squeeze(-1)
    return MultivariateNormal(mean, scale_tril=c * L)


@SETTINGS
@given(problems(), st.booleans())
def test_elbo_is_a_lower_bound_with_gap_kl_to_the_posterior(problem, full):
    model, x, g = problem
    with torch.no_grad():
        post = model.posterior(x)
        log_px = model.log_marginal(x)
        q = random_q(post, g, full)
        bound = model.elbo_exact(x, q)
        gap = kl_divergence(q if full else MultivariateNormal(q.mean, torch.diag_embed(q.variance)), post)
        assert (bound <= log_px + 1e-9).all()
        torch.testing.assert_close(log_px - bound, gap, rtol=1e-7, atol=1e-8)
        torch.testing.assert_close(lvm.elbo_via_posterior(model, x, q), bound, rtol=1e-9, atol=1e-9)
        # Tight at the exact posterior, in every form that is exact.
        torch.testing.assert_close(model.elbo_exact(x, post), log_px, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(lvm.elbo_via_posterior(model, x, post), log_px, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(problems(), st.booleans())
def test_monte_carlo_elbo_matches_the_closed_form(problem, full):
    model, x, g = problem
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    s = 8_000
    with torch.no_grad():
        q = random_q(model.posterior(x), g, full)
        exact = model.elbo_exact(x, q)
        z = q.sample((s,))
        se_recon = model.likelihood(z).log_prob(x).std(0) / math.sqrt(s)
        se_joint = model.joint_log_prob(x, z).std(0) / math.sqrt(s)
        assert ((lvm.elbo(model, x, q, n_samples=s) - exact).abs() <= 5 * se_recon + 1e-9).all()
        assert ((lvm.elbo_joint_entropy(model, x, q, n_samples=s) - exact).abs() <= 5 * se_joint + 1e-9).all()


@SETTINGS
@given(problems())
def test_iwae_does_not_decrease_in_k_and_tends_to_log_px(problem):
    model, x, g = problem
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    n = x.shape[0]
    repeats = 200
    with torch.no_grad():
        post = model.posterior(x)
        log_px = model.log_marginal(x)
        q = perturbed_posterior(post, g)
        # Independent repeats in one call: stack the data and q `repeats` times along the batch axis.
        x_rep = x.repeat(repeats, 1)
        q_rep = MultivariateNormal(q.mean.repeat(repeats, 1), scale_tril=q.scale_tril.repeat(repeats, 1, 1))
        means, ses = {}, {}
        for k in (1, 4, 16):
            draws = lvm.iwae_bound(model, x_rep, q_rep, k).reshape(repeats, n)
            means[k], ses[k] = draws.mean(0), draws.std(0) / math.sqrt(repeats)
        exact_elbo = model.elbo_exact(x, q)
        # k = 1 is the ELBO; each larger k is at least as good, up to Monte Carlo error.
        assert ((means[1] - exact_elbo).abs() <= 4.5 * ses[1] + 1e-9).all()
        for small, large in ((1, 4), (4, 16)):
            tol = 4.5 * torch.sqrt(ses[small] ** 2 + ses[large] ** 2) + 1e-9
            assert (means[large] >= means[small] - tol).all()
        assert (means[16] <= log_px + 4.5 * ses[16] + 1e-9).all()
        # Large k: log p(x) up to the estimate's own error, sd(w) / (mean(w) √k) by the delta method.
        k = 2**14
        big = lvm.iwae_bound(model, x, q, k)
        log_w = lvm.log_importance_weights(model, x, q, k)
        w = (log_w - log_w.max(0).values).exp()
        se = w.std(0) / (w.mean(0) * math.sqrt(k))
        assert (se < 0.02).all()  # so that the next line pins log p(x) down to ~0.1 nats at worst
        assert ((big - log_px).abs() <= 5 * se + 1e-4).all()


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_gaussian_kl_matches_monte_carlo(d, seed):
    g = torch.Generator().manual_seed(seed)
    mu_q, mu_p = torch.randn(d, generator=g, dtype=DT), torch.randn(d, generator=g, dtype=DT)
    std_q = 0.3 + 1.5 * torch.rand(d, generator=g, dtype=DT)
    std_p = 0.3 + 1.5 * torch.rand(d, generator=g, dtype=DT)
    closed = lvm.gaussian_kl(mu_q, std_q, mu_p, std_p)
    z = mu_q + std_q * torch.randn(20_000, d, generator=g, dtype=DT)
    log_ratio = (Normal(mu_q, std_q).log_prob(z) - Normal(mu_p, std_p).log_prob(z)).sum(-1)
    se = log_ratio.std() / math.sqrt(len(log_ratio))
    assert abs(float(log_ratio.mean() - closed)) <= 5 * float(se)
    assert float(closed) >= 0
