"""The ELBO in its three forms, importance sampling and the IWAE bound, and the Gaussian KL."""

import math

import numpy as np
import pytest
import torch
from scipy import special, stats
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, Normal, StudentT, kl_divergence

import lvm
from lvm import LatentVariableModel

DT = torch.float64


def data(model, n=5, seed=1):
    x, _ = lvm.ancestral_sample(model, n, generator=seed)
    return x


def diagonal_q(post, shift=0.4, scale=0.8):
    """A diagonal Gaussian near the exact posterior, batch [n]."""
    std = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt() * scale
    return Independent(Normal(post.mean + shift, std), 1)


class BernoulliDecoder(LatentVariableModel):
    """A linear decoder with a Bernoulli likelihood over 784 pixels; records how many z it is asked about."""

    def __init__(self, x_dim=784, z_dim=2, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(x_dim, z_dim, generator=g) * 2
        self.c = torch.randn(x_dim, generator=g)
        self.seen = []

    def prior(self):
        return Independent(Normal(torch.zeros(self.W.shape[1]), torch.ones(self.W.shape[1])), 1)

    def likelihood(self, z):
        self.seen.append(z.shape[0] if z.dim() > 2 else 1)
        return Independent(Bernoulli(logits=z @ self.W.T + self.c), 1)


# --- gaussian_kl --------------------------------------------------------------------------------------------


def test_gaussian_kl_matches_torch():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    std_q, std_p = torch.rand(3, 5, generator=g) + 0.1, torch.rand(3, 5, generator=g) + 0.1
    expected = kl_divergence(Independent(Normal(mu_q, std_q), 1), Independent(Normal(mu_p, std_p), 1))
    got = lvm.gaussian_kl(mu_q, std_q, mu_p, std_p)
    assert got.shape == (3,)
    torch.testing.assert_close(got, expected)
    # The default p is the standard normal prior: ½ Σ (μ² + σ² − 1 − log σ²).
    prior_kl = 0.5 * (mu_q**2 + std_q**2 - 1 - 2 * std_q.log()).sum(-1)
    torch.testing.assert_close(lvm.gaussian_kl(mu_q, std_q), prior_kl)
    # p broadcast against q: a scalar and a [5] vector.
    std_row = mu_p[0].abs() + 0.2
    p_full = Independent(Normal(torch.full((3, 5), 0.5), std_row.expand(3, 5)), 1)
    torch.testing.assert_close(lvm.gaussian_kl(mu_q, std_q, 0.5, std_row),
                               kl_divergence(Independent(Normal(mu_q, std_q), 1), p_full))


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(1)
    mu_q, std_q = torch.tensor([0.3, -1.0, 2.0], dtype=DT), torch.tensor([0.5, 1.5, 0.8], dtype=DT)
    mu_p, std_p = torch.tensor([0.0, 0.5, 1.0], dtype=DT), torch.tensor([1.0, 2.0, 0.7], dtype=DT)
    q, p = Independent(Normal(mu_q, std_q), 1), Independent(Normal(mu_p, std_p), 1)
    z = q.sample((200_000,))
    log_ratio = q.log_prob(z) - p.log_prob(z)
    se = log_ratio.std() / math.sqrt(len(log_ratio))
    assert abs(float(log_ratio.mean() - lvm.gaussian_kl(mu_q, std_q, mu_p, std_p))) < 4 * float(se)


def test_gaussian_kl_is_zero_only_at_equality_and_float_safe():
    mu = torch.randn(4, 784)
    std = torch.rand(4, 784) + 0.05
    assert torch.allclose(lvm.gaussian_kl(mu, std, mu, std), torch.zeros(4), atol=1e-4)
    assert (lvm.gaussian_kl(mu + 0.1, std, mu, std) > 0).all()
    assert torch.isfinite(lvm.gaussian_kl(mu * 50, std * 1e-3)).all()


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(3), torch.zeros(3)), "std_q"),
    ((torch.zeros(3), -torch.ones(3)), "std_q"),
    ((torch.zeros(3), torch.ones(3), 0.0, 0.0), "std_p"),
    ((torch.tensor([float("nan")]), torch.ones(1)), "mu_q"),
    ((torch.zeros(3), torch.ones(3), torch.tensor([float("inf")])), "mu_p"),
    ((torch.zeros(3), torch.ones(2)), "broadcast"),
    ((torch.tensor(0.0), torch.tensor(1.0)), "last dimension"),
])
def test_gaussian_kl_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        lvm.gaussian_kl(*args)


# --- the three forms of the ELBO on the linear-Gaussian model ------------------------------------------------


def test_three_forms_agree_with_the_closed_form(linear_gaussian):
    model = linear_gaussian(seed=2)
    x = data(model)
    torch.manual_seed(0)
    with torch.no_grad():
        q = diagonal_q(model.posterior(x))
        exact = model.elbo_exact(x, q)
        s = 50_000
        # Standard errors from the spread of the per-sample integrands.
        z = q.sample((s,))
        se_recon = model.likelihood(z).log_prob(x).std(0) / math.sqrt(s)
        se_joint = model.joint_log_prob(x, z).std(0) / math.sqrt(s)
        recon_kl = lvm.elbo(model, x, q, n_samples=s)
        joint_entropy = lvm.elbo_joint_entropy(model, x, q, n_samples=s)
        via_posterior = lvm.elbo_via_posterior(model, x, q)
    assert recon_kl.shape == joint_entropy.shape == via_posterior.shape == (5,)
    assert ((recon_kl - exact).abs() < 4 * se_recon).all()
    assert ((joint_entropy - exact).abs() < 4 * se_joint).all()
    torch.testing.assert_close(via_posterior, exact, rtol=1e-10, atol=1e-10)
    # And the gap is the KL to the posterior, which is strictly positive for this q.
    assert (exact < model.log_marginal(x).detach()).all()


def test_elbo_is_tight_at_the_exact_posterior(linear_gaussian):
    model = linear_gaussian(seed=3)
    x = data(model)
    torch.manual_seed(0)
    with torch.no_grad():
        post = model.posterior(x)  # a full-covariance MultivariateNormal: KL to the prior via the MVN recast
        log_px = model.log_marginal(x)
        torch.testing.assert_close(lvm.elbo_via_posterior(model, x, post), log_px, rtol=1e-10, atol=1e-10)
        s = 50_000
        z = post.sample((s,))
        se = model.likelihood(z).log_prob(x).std(0) / math.sqrt(s)
        assert ((lvm.elbo(model, x, post, n_samples=s) - log_px).abs() < 4 * se).all()
        # E_q[log p(x, z)] + H[q] with q = p(z|x): the entropy is analytic, so only the first term is noisy.
        se = model.joint_log_prob(x, z).std(0) / math.sqrt(s)
        assert ((lvm.elbo_joint_entropy(model, x, post, n_samples=s) - log_px).abs() < 4 * se).all()


def test_elbo_falls_back_to_monte_carlo_kl(linear_gaussian):
    # torch has no KL(StudentT ‖ Normal): the KL term is then estimated on the same draws.
    model = linear_gaussian(seed=4)
    x = data(model, n=3)
    with torch.no_grad():
        post = model.posterior(x)
        q = Independent(StudentT(6.0, post.mean, torch.full_like(post.mean, 0.5)), 1)
        torch.manual_seed(0)
        s = 100_000
        z = q.sample((s,))
        per_sample = model.joint_log_prob(x, z) - q.log_prob(z)
        se = per_sample.std(0) / math.sqrt(s)
        torch.manual_seed(1)
        got = lvm.elbo(model, x, q, n_samples=s)
    assert ((got - per_sample.mean(0)).abs() < 5 * se).all()
    assert (got < model.log_marginal(x).detach()).all()


def test_elbo_is_differentiable_through_rsample(linear_gaussian):
    model = linear_gaussian(seed=5)
    x = data(model, n=4)
    with torch.no_grad():
        post = model.posterior(x)
    loc = (post.mean + 0.5).clone().requires_grad_(True)
    std = torch.full_like(post.mean, 0.3).requires_grad_(True)
    torch.manual_seed(0)
    lvm.elbo(model, x, Independent(Normal(loc, std), 1), n_samples=20_000).sum().backward()
    loc_exact = loc.detach().clone().requires_grad_(True)
    model.zero_grad()
    model.elbo_exact(x, Independent(Normal(loc_exact, std.detach()), 1)).sum().backward()
    assert std.grad is not None and torch.isfinite(std.grad).all()
    assert model.W.grad is not None
    # The pathwise gradient in the mean of q agrees with the closed form to Monte Carlo accuracy.
    torch.testing.assert_close(loc.grad, loc_exact.grad, rtol=0.05, atol=0.05)


def test_elbo_refuses_a_q_it_cannot_differentiate_through(linear_gaussian):
    # A mixture q has no rsample: z = q.sample() would leave q's parameters without a gradient.
    model = linear_gaussian(seed=5)
    x = data(model, n=4)
    loc = torch.zeros(4, 3, 2, dtype=DT, requires_grad=True)
    q = MixtureSameFamily(Categorical(logits=torch.zeros(4, 3, dtype=DT)),
                          Independent(Normal(loc, torch.ones(4, 3, 2, dtype=DT)), 1))
    for bound in (lvm.elbo, lvm.elbo_joint_entropy):
        with pytest.raises(ValueError, match="q cannot be reparameterised .*MixtureSameFamily.* no gradient"):
            bound(model, x, q)
        with torch.no_grad():  # evaluation only: nothing to differentiate, so the value is fine
            assert torch.isfinite(bound(model, x, q, n_samples=10)).all()
    fixed = MixtureSameFamily(Categorical(logits=torch.zeros(4, 3, dtype=DT)),
                              Independent(Normal(loc.detach(), torch.ones(4, 3, 2, dtype=DT)), 1))
    assert torch.isfinite(lvm.elbo(model, x, fixed, n_samples=10)).all()  # nothing of q needs a gradient


# --- exact enumeration for a categorical q (the mixture) ------------------------------------------------------


def test_elbo_enumerates_a_categorical_q():
    gmm = lvm.GaussianMixture([0.2, 0.5, 0.3], [-2.0, 0.0, 3.0], [0.5, 1.0, 0.7])
    x = torch.tensor([-2.5, -0.3, 1.0, 2.9, 6.0])
    post = gmm.posterior(x)
    log_px = gmm.log_marginal(x)
    torch.testing.assert_close(lvm.elbo(gmm, x, post), log_px)
    torch.testing.assert_close(lvm.elbo_joint_entropy(gmm, x, post), log_px)
    q = Categorical(probs=torch.tensor([[0.6, 0.4, 0.0]]).expand(5, 3))  # a zero: 0 · log 0 terms count as 0
    # log p(x) − KL(q ‖ p(z|x)) in float64 with scipy. At x = 6 the posterior of component 0 is ~e^-140, which
    # underflows float32 probabilities (torch's categorical KL then says inf); in log space it is finite.
    lam, mu, sd = np.array([0.2, 0.5, 0.3]), np.array([-2.0, 0.0, 3.0]), np.array([0.5, 1.0, 0.7])
    log_joint = np.log(lam) + stats.norm(mu, sd).logpdf(x.double().numpy()[:, None])
    log_marg = special.logsumexp(log_joint, axis=1)
    log_post = log_joint - log_marg[:, None]
    qk = np.array([0.6, 0.4])
    expected = torch.tensor(log_marg - (qk * (np.log(qk) - log_post[:, :2])).sum(1), dtype=torch.float32)
    for form in (lvm.elbo, lvm.elbo_joint_entropy, lambda *a: lvm.elbo_via_posterior(*a[:3])):
        got = form(gmm, x, q, 7)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, expected)
    # By hand for one point: Σ_k q_k (log λ_k + log N(x | μ_k, σ_k²) − log q_k).
    comps = Normal(torch.tensor([-2.0, 0.0]), torch.tensor([0.5, 1.0]))
    by_hand = sum(qk * (math.log(lk) + float(comps.log_prob(x[1])[k]) - math.log(qk))
                  for k, (qk, lk) in enumerate([(0.6, 0.2), (0.4, 0.5)]))
    assert abs(float(lvm.elbo(gmm, x, q)[1]) - by_hand) < 1e-5


# --- importance sampling and IWAE ----------------------------------------------------------------------------


def test_log_weights_are_constant_at_the_exact_posterior(linear_gaussian):
    # p(x, z) / p(z | x) = p(x) for every z: each weight is the exact marginal, whatever k or chunk size.
    model = linear_gaussian(seed=6)
    x = data(model, n=4)
    with torch.no_grad():
        post, log_px = model.posterior(x), model.log_marginal(x)
    torch.manual_seed(0)
    log_w = lvm.log_importance_weights(model, x, post, k=10, chunk_size=3)
    assert log_w.shape == (10, 4) and not log_w.requires_grad
    torch.testing.assert_close(log_w, log_px.expand(10, 4), rtol=1e-10, atol=1e-10)
    for k in (1, 7, 64):
        torch.testing.assert_close(lvm.iwae_bound(model, x, post, k, chunk_size=5), log_px, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lvm.importance_log_marginal(model, x, post, 9), log_px, rtol=1e-10, atol=1e-10)


def test_iwae_is_the_log_mean_of_the_weights(linear_gaussian):
    model = linear_gaussian(seed=7)
    x = data(model, n=3)
    with torch.no_grad():
        q = diagonal_q(model.posterior(x))
    torch.manual_seed(5)
    log_w = lvm.log_importance_weights(model, x, q, k=50, chunk_size=8)
    torch.manual_seed(5)
    bound = lvm.iwae_bound(model, x, q, k=50, chunk_size=8)
    torch.testing.assert_close(bound, torch.logsumexp(log_w, 0) - math.log(50))
    assert len(set(log_w[:, 0].tolist())) == 50  # fresh draws in every chunk


def test_iwae_with_k_1_is_an_elbo_estimate(linear_gaussian):
    model = linear_gaussian(seed=8)
    x = data(model, n=3)
    with torch.no_grad():
        q = diagonal_q(model.posterior(x), shift=0.5, scale=0.7)
        exact = model.elbo_exact(x, q)
        log_px = model.log_marginal(x)

    def repeated(k, repeats):
        # Independent repeats in one call: the data and q stacked `repeats` times along the batch axis.
        q_rep = Independent(Normal(q.mean.repeat(repeats, 1), q.stddev.repeat(repeats, 1)), 1)
        return lvm.iwae_bound(model, x.repeat(repeats, 1), q_rep, k).reshape(repeats, 3)

    torch.manual_seed(0)
    draws = repeated(1, 4000)
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4 * se).all()
    # Larger k: a tighter bound (still below log p(x)).
    k100 = repeated(100, 50)
    se100 = k100.std(0) / math.sqrt(len(k100))
    assert (k100.mean(0) > exact + 0.5 * (log_px - exact)).all()
    assert (k100.mean(0) < log_px + 4 * se100).all()


def test_naive_monte_carlo_converges_in_low_dimension(linear_gaussian):
    model = linear_gaussian(d_x=2, d_z=1, sigma=0.8, seed=9)
    x = data(model, n=4)
    log_px = model.log_marginal(x).detach()
    s = 200_000
    torch.manual_seed(0)
    est = lvm.naive_log_marginal(model, x, s)
    # Delta method: sd(log p̂) ≈ sd(w) / (mean(w) √S), with w = p(x | z), z ~ p(z).
    with torch.no_grad():
        w = model.likelihood(model.prior().sample((s, 4))).log_prob(x).exp()
    se = w.std(0) / (w.mean(0) * math.sqrt(s))
    assert est.shape == (4,)
    assert ((est - log_px).abs() < 5 * se).all()


def test_naive_and_importance_work_with_a_categorical_prior():
    gmm = lvm.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [1.0, 0.5])
    x = torch.tensor([-1.0, 0.5, 2.2])
    torch.manual_seed(0)
    est = lvm.naive_log_marginal(gmm, x, 50_000)
    assert (est - gmm.log_marginal(x)).abs().max() < 0.05
    torch.testing.assert_close(lvm.importance_log_marginal(gmm, x, gmm.posterior(x), 5), gmm.log_marginal(x))


def test_importance_log_marginal_accepts_a_shared_proposal(linear_gaussian):
    model = linear_gaussian(d_x=2, d_z=1, sigma=0.8, seed=10)
    x = data(model, n=3)
    shared = Independent(Normal(torch.zeros(1, dtype=DT), torch.full((1,), 1.5, dtype=DT)), 1)  # batch []
    torch.manual_seed(0)
    est = lvm.importance_log_marginal(model, x, shared, 100_000)
    assert est.shape == (3,)
    assert (est - model.log_marginal(x).detach()).abs().max() < 0.02


def test_no_underflow_at_784_dimensions():
    model = BernoulliDecoder()
    torch.manual_seed(0)
    x = Bernoulli(logits=torch.randn(6, 2) @ model.W.T + model.c).sample()
    q = Independent(Normal(torch.zeros(6, 2), torch.ones(6, 2)), 1)  # the prior: most weights are ~e^-300
    torch.manual_seed(1)
    log_w = lvm.log_importance_weights(model, x, q, k=200, chunk_size=64)
    assert torch.isfinite(log_w).all() and (log_w < -100).any()
    assert (log_w.exp() == 0).any()  # the weights themselves would underflow in float32 ...
    torch.manual_seed(1)
    bound = lvm.iwae_bound(model, x, q, k=200, chunk_size=64)
    # ... but the bound, in log space, lies between the largest weight and the largest weight − log k.
    top = log_w.max(0).values
    assert torch.isfinite(bound).all()
    assert ((bound <= top + 1e-4) & (bound >= top - math.log(200) - 1e-4)).all()
    assert torch.isfinite(lvm.naive_log_marginal(model, x, 200)).all()


def test_exact_at_784_dimensions_with_the_linear_model(linear_gaussian):
    model = linear_gaussian(d_x=784, d_z=5, sigma=2.0, seed=11)
    x = data(model, n=3)
    with torch.no_grad():
        post, log_px = model.posterior(x), model.log_marginal(x)
    assert (log_px < -1000).all()  # p(x) itself is 0 even in float64
    torch.manual_seed(0)
    torch.testing.assert_close(lvm.iwae_bound(model, x, post, k=20), log_px, rtol=1e-9, atol=1e-7)
    model32 = linear_gaussian(d_x=784, d_z=5, sigma=2.0, seed=11, dtype=torch.float32)
    with torch.no_grad():
        x32 = x.float()
        bound32 = lvm.iwae_bound(model32, x32, model32.posterior(x32), k=20)
    torch.testing.assert_close(bound32.double(), log_px, rtol=1e-4, atol=0.0)


def test_chunks_bound_the_work_per_likelihood_call():
    model = BernoulliDecoder()
    x = torch.ones(5, 784)
    q = Independent(Normal(torch.zeros(5, 2), torch.ones(5, 2)), 1)
    lvm.iwae_bound(model, x, q, k=30, chunk_size=7)
    assert model.seen == [7, 7, 7, 7, 2]
    # The default chunk keeps chunk × n × d_x near 2**24 elements: 42 draws per chunk at n = 500, d = 784.
    model.seen.clear()
    x = torch.ones(500, 784)
    q = Independent(Normal(torch.zeros(500, 2), torch.ones(500, 2)), 1)
    out = lvm.iwae_bound(model, x, q, k=100)
    assert out.shape == (500,)
    assert model.seen == [42, 42, 16]


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.fixture
def setup(linear_gaussian):
    model = linear_gaussian(seed=12)
    x = data(model, n=3)
    with torch.no_grad():
        q = diagonal_q(model.posterior(x))
    return model, x, q


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_counts_must_be_positive_integers(setup, bad):
    model, x, q = setup
    with pytest.raises(ValueError, match="^n_samples must be a positive integer, got"):
        lvm.elbo(model, x, q, n_samples=bad)
    with pytest.raises(ValueError, match="^n_samples must be a positive integer, got"):
        lvm.elbo_joint_entropy(model, x, q, n_samples=bad)
    with pytest.raises(ValueError, match="^k must be a positive integer, got"):
        lvm.iwae_bound(model, x, q, k=bad)
    with pytest.raises(ValueError, match="^k must be a positive integer, got"):
        lvm.log_importance_weights(model, x, q, k=bad)
    with pytest.raises(ValueError, match="^n_samples must be a positive integer, got"):
        lvm.naive_log_marginal(model, x, bad)
    with pytest.raises(ValueError, match="^n_samples must be a positive integer, got"):
        lvm.importance_log_marginal(model, x, q, bad)
    with pytest.raises(ValueError, match="^chunk_size must be a positive integer, got"):
        lvm.iwae_bound(model, x, q, k=4, chunk_size=bad)


def test_q_must_match_the_data(setup):
    model, x, _q = setup
    wrong = Independent(Normal(torch.zeros(2, 2, dtype=DT), torch.ones(2, 2, dtype=DT)), 1)
    unbatched = model.prior()
    for fn in (lambda q: lvm.elbo(model, x, q), lambda q: lvm.elbo_joint_entropy(model, x, q),
               lambda q: lvm.elbo_via_posterior(model, x, q), lambda q: lvm.iwae_bound(model, x, q, 2),
               lambda q: lvm.log_importance_weights(model, x, q, 2)):
        with pytest.raises(ValueError, match=r"q must have batch shape \[3\]"):
            fn(wrong)
        with pytest.raises(ValueError, match="q must have batch shape"):
            fn(unbatched)
        with pytest.raises(ValueError, match="q must be a torch.distributions"):
            fn(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="proposal"):
        lvm.importance_log_marginal(model, x, wrong, 2)


def test_x_must_have_a_data_axis(setup):
    model, _, q = setup
    with pytest.raises(ValueError, match=r"^x must have shape \[n, \.\.\.\] with n >= 1 data points, got \[\]"):
        lvm.elbo(model, torch.tensor(1.0), q)
    with pytest.raises(ValueError, match=r"^x must have shape \[n, \.\.\.\] with n >= 1 data points, got \[0, 4\]"):
        lvm.iwae_bound(model, torch.zeros(0, 4), q, 2)
    with pytest.raises(ValueError, match="^x must be a tensor or array of numbers, got str"):
        lvm.naive_log_marginal(model, "not data", 2)
    with pytest.raises(ValueError, match=r"^x must have shape \[\*, 4\]"):
        lvm.elbo(model, torch.zeros(3, 5, dtype=DT), q)


def test_elbo_via_posterior_needs_a_closed_form_kl(setup):
    model, x, _ = setup
    q = Independent(StudentT(5.0, torch.zeros(3, 2, dtype=DT), torch.ones(3, 2, dtype=DT)), 1)
    with pytest.raises(ValueError, match="q: no closed-form KL"):
        lvm.elbo_via_posterior(model, x, q)


class WideDecoder(LatentVariableModel):
    """A Bernoulli decoder whose one hidden layer has 2**16 units: 131k numbers per evaluation for 16 pixels."""

    def __init__(self, z_dim=2, width=2**16, x_dim=16):
        super().__init__()
        self.z_dim, self.x_dim = z_dim, x_dim
        self.hidden = torch.nn.Sequential(torch.nn.Linear(z_dim, width), torch.nn.ReLU())
        self.draws_per_call = []

    def prior(self):
        return Independent(Normal(torch.zeros(self.z_dim), torch.ones(self.z_dim)), 1)

    def likelihood(self, z):
        self.draws_per_call.append(z.shape[0])
        h = self.hidden(z)  # [..., 2**16]
        logits = h.unflatten(-1, (self.x_dim, -1)).mean(-1)  # [..., 16]
        return Independent(Bernoulli(logits=logits), 1)


def test_default_chunks_are_sized_by_the_model_not_only_by_x():
    # One point with 16 pixels: sized by x alone, a chunk would be 2**24 / 16 = 1M draws, here all 300 at
    # once, 300 × 131k activations. Sized by the model, a chunk holds about 2**24 numbers: 128 draws.
    torch.manual_seed(0)
    model = WideDecoder()
    x = torch.ones(1, 16)
    q = Independent(Normal(torch.zeros(1, 2), torch.ones(1, 2)), 1)
    with torch.random.fork_rng():
        bound = lvm.iwae_bound(model, x, q, k=300)
    assert torch.isfinite(bound).all()
    # The first call is the one-draw probe that measures 2 × 2**16 numbers (the Linear's and the ReLU's
    # outputs) per evaluation; then 2**24 / 2**17 = 128 draws per chunk.
    assert model.draws_per_call == [1, 128, 128, 44]


def test_the_probe_leaves_the_random_state_alone():
    model = WideDecoder(width=64)
    x = torch.ones(3, 16)
    q = Independent(Normal(torch.zeros(3, 2), torch.ones(3, 2)), 1)
    torch.manual_seed(0)
    lvm.iwae_bound(model, x, q, k=10)
    after_default = torch.rand(1)
    torch.manual_seed(0)
    lvm.iwae_bound(model, x, q, k=10, chunk_size=10)
    assert torch.equal(torch.rand(1), after_default)
