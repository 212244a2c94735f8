"""LinearGaussian (probabilistic PCA): exact marginal and posterior, the closed-form fit, EM, sampling."""

import re

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.decomposition import PCA
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal

import lvm
from lvm import LinearGaussian

DT = torch.float64


TRUE_W = torch.tensor([[3.0, 0.0], [1.0, 2.0], [0.0, 1.5], [-1.0, 0.5], [0.5, -1.0]], dtype=DT)
TRUE_B = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=DT)
TRUE_SIGMA = 0.4


def make_data(n=400, seed=1):
    """Data with a clear 2-D structure in 5-D, so that PPCA with z_dim = 2 fits well and EM converges fast."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=DT)
    return z @ TRUE_W.T + TRUE_B + TRUE_SIGMA * torch.randn(n, 5, generator=g, dtype=DT)


def joint_conditional(model, x):
    """p(z | x) from the joint Gaussian of (z, x), by the textbook conditioning formula, in numpy."""
    W = model.W.detach().numpy()
    b = model.b.detach().numpy()
    s2 = float(model.sigma.detach()) ** 2
    d_x, d_z = W.shape
    cov_zx = W.T  # Cov(z, x) = Wᵀ since x = W z + b + noise
    cov_xx = W @ W.T + s2 * np.eye(d_x)
    gain = cov_zx @ np.linalg.inv(cov_xx)
    means = (x.numpy() - b) @ gain.T
    cov = np.eye(d_z) - gain @ cov_zx.T
    return means, cov


# --- parameters and the contract ---------------------------------------------------------------------------


def test_parameters_are_trainable(linear_gaussian):
    model = linear_gaussian(sigma=0.3)
    names = {name for name, _ in model.named_parameters()}
    assert names == {"W", "b", "log_sigma"}
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert torch.isclose(model.sigma, torch.tensor(0.3, dtype=DT))
    assert model.x_dim == 4 and model.z_dim == 2
    loss = -model.log_marginal(torch.zeros(3, 4, dtype=DT)).sum()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_prior_and_likelihood_shapes_and_values(linear_gaussian):
    model = linear_gaussian(sigma=0.7)
    prior = model.prior()
    assert prior.event_shape == (2,) and prior.batch_shape == ()
    z = torch.randn(3, 5, 2, dtype=DT)
    lik = model.likelihood(z)
    assert lik.batch_shape == (3, 5) and lik.event_shape == (4,)
    x = torch.randn(4, dtype=DT)
    W, b, s = model.W.detach().numpy(), model.b.detach().numpy(), float(model.sigma.detach())
    expected = stats.multivariate_normal(W @ z[1, 2].numpy() + b, s**2 * np.eye(4)).logpdf(x.numpy())
    assert np.isclose(float(lik.log_prob(x)[1, 2].detach()), expected, rtol=1e-12)


def test_log_marginal_matches_scipy(linear_gaussian):
    model = linear_gaussian(d_x=5, d_z=3, sigma=0.4)
    x = torch.randn(7, 5, dtype=DT) * 2
    W, b, s = model.W.detach().numpy(), model.b.detach().numpy(), float(model.sigma.detach())
    expected = stats.multivariate_normal(b, W @ W.T + s**2 * np.eye(5)).logpdf(x.numpy())
    got = model.log_marginal(x).detach()
    assert got.shape == (7,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    marginal = model.marginal()
    assert isinstance(marginal, MultivariateNormal)
    np.testing.assert_allclose(marginal.covariance_matrix.detach().numpy(), W @ W.T + s**2 * np.eye(5), rtol=1e-12)


def test_posterior_matches_joint_gaussian_conditional(linear_gaussian):
    model = linear_gaussian(d_x=5, d_z=3, sigma=0.6)
    x = torch.randn(6, 5, dtype=DT)
    post = model.posterior(x)
    assert isinstance(post, MultivariateNormal) and post.batch_shape == (6,) and post.event_shape == (3,)
    means, cov = joint_conditional(model, x)
    np.testing.assert_allclose(post.mean.detach().numpy(), means, rtol=1e-9, atol=1e-12)
    for i in range(6):
        np.testing.assert_allclose(post.covariance_matrix[i].detach().numpy(), cov, rtol=1e-9, atol=1e-12)


def test_posterior_is_bayes_rule(linear_gaussian):
    # log p(z | x) = log p(z) + log p(x | z) − log p(x) at arbitrary z: Bayes' rule, point by point.
    model = linear_gaussian(d_x=4, d_z=2, sigma=0.5, seed=3)
    x = torch.randn(5, 4, dtype=DT)
    z = torch.randn(10, 5, 2, dtype=DT)
    with torch.no_grad():
        lhs = model.posterior(x).log_prob(z)
        rhs = model.joint_log_prob(x, z) - model.log_marginal(x)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_ancestral_sampling_moments(linear_gaussian):
    model = linear_gaussian(d_x=3, d_z=2, sigma=0.5, seed=5)
    n = 40_000
    x, z = lvm.ancestral_sample(model, n, generator=123)
    assert x.shape == (n, 3) and z.shape == (n, 2)
    with torch.no_grad():
        mean = model.b
        cov = model.marginal_covariance()
    var = cov.diagonal()
    # Standard errors: of a mean, sqrt(Σ_ii / n); of a covariance entry, sqrt((Σ_ii Σ_jj + Σ_ij²) / n).
    se_mean = (var / n).sqrt()
    assert ((x.mean(0) - mean).abs() < 4 * se_mean).all()
    emp_cov = torch.cov(x.T)
    se_cov = ((var[:, None] * var[None, :] + cov**2) / n).sqrt()
    assert ((emp_cov - cov).abs() < 4 * se_cov).all()


# --- the closed-form fit ------------------------------------------------------------------------------------


def test_fit_with_ddof_1_matches_sklearn_score_samples():
    x = make_data()
    model = LinearGaussian.fit(x, 2, ddof=1)
    pca = PCA(n_components=2).fit(x.numpy())
    with torch.no_grad():
        ours = model.log_marginal(x).numpy()
        cov = model.marginal_covariance().numpy()
    np.testing.assert_allclose(ours, pca.score_samples(x.numpy()), rtol=1e-10)
    np.testing.assert_allclose(cov, pca.get_covariance(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(model.sigma.detach()) ** 2, pca.noise_variance_, rtol=1e-10)


def test_fit_is_the_maximum_likelihood_solution():
    x = make_data()
    model = LinearGaussian.fit(x, 2)
    mle = model.log_marginal(x).mean()
    # The MLE beats sklearn's (n − 1)-normalised fit, random loadings, and the data-generating parameters.
    pca_ll = PCA(n_components=2).fit(x.numpy()).score(x.numpy())
    assert float(mle.detach()) > pca_ll
    with torch.no_grad():
        assert float(mle) > float(LinearGaussian(TRUE_W, TRUE_B, TRUE_SIGMA).log_marginal(x).mean())
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        random_model = LinearGaussian(torch.randn(5, 2, generator=g, dtype=DT), x.mean(0), 0.4)
        assert float(mle.detach()) > float(random_model.log_marginal(x).detach().mean())
    # A stationary point: the gradient of the log-likelihood in W, b and log σ vanishes.
    mle.backward()
    for p in model.parameters():
        assert p.grad.abs().max() < 1e-8
    torch.testing.assert_close(model.b.detach(), x.mean(0))


def test_fit_columns_are_orthogonal_and_sigma_is_discarded_eigenvalue_mean():
    x = make_data()
    model = LinearGaussian.fit(x, 2)
    W = model.W.detach()
    gram = W.T @ W
    assert abs(float(gram[0, 1])) < 1e-8
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.numpy().T, bias=True)))[::-1]
    assert np.isclose(float(model.sigma.detach()) ** 2, eig[2:].mean(), rtol=1e-10)
    # W Wᵀ has the leading eigenvalues λ_i − σ².
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(gram.numpy()))[::-1], eig[:2] - eig[2:].mean(), rtol=1e-9)


@pytest.mark.parametrize("x, z_dim, match", [
    (torch.zeros(10), 1, "x"),
    (torch.zeros(10, 3, 1), 1, "x"),
    (torch.full((10, 3), float("nan")), 1, "x"),
    (torch.randn(10, 3), 3, "z_dim"),
    (torch.randn(10, 3), 4, "z_dim"),
    (torch.randn(10, 3), 0, "z_dim"),
    (torch.randn(10, 3), 1.0, "z_dim"),
    (torch.randn(10, 3), True, "z_dim"),
    (torch.randn(3, 4), 2, "too few points"),
    (torch.randn(1, 4), 1, "too few points"),
])
def test_fit_rejects_bad_input(x, z_dim, match):
    with pytest.raises(ValueError, match=match):
        LinearGaussian.fit(x, z_dim)


def test_fit_rejects_data_without_noise_and_bad_ddof():
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(20, 1, generator=g, dtype=DT) @ torch.tensor([[1.0, 2.0, 3.0]], dtype=DT)
    with pytest.raises(ValueError, match="no variance"):
        LinearGaussian.fit(flat, 1)
    with pytest.raises(ValueError, match="ddof"):
        LinearGaussian.fit(make_data(), 2, ddof=2)


# --- EM -----------------------------------------------------------------------------------------------------


def test_em_never_decreases_and_converges_to_the_fit():
    x = make_data()
    with torch.no_grad():
        target = float(LinearGaussian.fit(x, 2).log_marginal(x).mean())
    g = torch.Generator().manual_seed(7)
    model = LinearGaussian(torch.randn(5, 2, generator=g, dtype=DT), torch.zeros(5, dtype=DT), 2.0)
    history = []
    with torch.no_grad():
        for _ in range(300):
            history.append(float(model.log_marginal(x).mean()))
            model = model.em_step(x)
        history.append(float(model.log_marginal(x).mean()))
    steps = np.diff(history)
    assert (steps >= -1e-10).all(), f"EM decreased the log-likelihood by {-steps.min():.3g}"
    assert history[0] < target - 1.0  # it started far away ...
    assert history[-1] <= target + 1e-9  # ... never passes the maximum ...
    assert target - history[-1] < 1e-6  # ... and gets there.
    assert isinstance(model, LinearGaussian) and model.W.requires_grad


def test_em_step_keeps_the_maximum_likelihood_fit():
    x = make_data()
    fitted = LinearGaussian.fit(x, 2)
    stepped = fitted.em_step(x)
    # W is only identified up to a rotation of z: compare the marginal, which is what EM optimises.
    torch.testing.assert_close(stepped.marginal_covariance().detach(), fitted.marginal_covariance().detach())
    torch.testing.assert_close(stepped.b.detach(), fitted.b.detach())


def test_em_step_rejects_bad_x(linear_gaussian):
    model = linear_gaussian(d_x=4, sigma=0.7)
    with pytest.raises(ValueError, match=r"x must have shape \[\*, 4\] .*got \[10, 3\]"):
        model.em_step(torch.randn(10, 3, dtype=DT))


# --- the closed-form ELBO ------------------------------------------------------------------------------------


def test_elbo_exact_equals_log_marginal_at_the_posterior_and_matches_monte_carlo(linear_gaussian):
    model = linear_gaussian(d_x=4, d_z=2, sigma=0.5, seed=11)
    x = torch.randn(3, 4, dtype=DT)
    with torch.no_grad():
        post = model.posterior(x)
        torch.testing.assert_close(model.elbo_exact(x, post), model.log_marginal(x), rtol=1e-10, atol=1e-10)
        q = Independent(Normal(post.mean + 0.3, torch.full((3, 2), 0.4, dtype=DT)), 1)
        exact = model.elbo_exact(x, q)
        torch.manual_seed(0)
        z = q.sample((200_000,))
        per_sample = model.joint_log_prob(x, z) - q.log_prob(z)
    mc, se = per_sample.mean(0), per_sample.std(0) / per_sample.shape[0] ** 0.5
    assert ((mc - exact).abs() < 4 * se).all()
    assert (exact < model.log_marginal(x).detach()).all()


def test_elbo_exact_rejects_non_gaussian_or_misshaped_q(linear_gaussian):
    model = linear_gaussian(d_x=4, d_z=2, sigma=0.7)
    x = torch.randn(3, 4, dtype=DT)
    with pytest.raises(ValueError, match="q must be a MultivariateNormal or an Independent.Normal, 1. over z"):
        model.elbo_exact(x, Independent(torch.distributions.Laplace(torch.zeros(3, 2), torch.ones(3, 2)), 1))
    with pytest.raises(ValueError, match=r"q must have batch shape \[3\] .* got batch \[2\]"):
        model.elbo_exact(x, Independent(Normal(torch.zeros(2, 2), torch.ones(2, 2)), 1))


# --- bad inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("W, b, sigma, match", [
    (torch.zeros(3), torch.zeros(3), 1.0, "W"),
    (torch.zeros(3, 2, 1), torch.zeros(3), 1.0, "W"),
    (torch.zeros(0, 2), torch.zeros(0), 1.0, "W"),
    (torch.tensor([[1.0], [float("nan")]]), torch.zeros(2), 1.0, "W"),
    (torch.zeros(3, 2), torch.zeros(2), 1.0, "b"),
    (torch.zeros(3, 2), torch.tensor([0.0, float("inf"), 0.0]), 1.0, "b"),
    (torch.zeros(3, 2), torch.zeros(3), 0.0, "sigma"),
    (torch.zeros(3, 2), torch.zeros(3), -1.0, "sigma"),
    (torch.zeros(3, 2), torch.zeros(3), float("nan"), "sigma"),
    (torch.zeros(3, 2), torch.zeros(3), [1.0, 2.0], "sigma"),
    ("abc", torch.zeros(3), 1.0, "W"),
])
def test_constructor_rejects_bad_input(W, b, sigma, match):
    with pytest.raises(ValueError, match=match):
        LinearGaussian(W, b, sigma)


@pytest.mark.parametrize("W, sigma, message", [
    (torch.randn(3, 2).half(), 1.0, "W must be float32 or float64, got torch.float16; convert it with W.float()"),
    (torch.randn(3, 2).bfloat16(), 1.0, "W must be float32 or float64, got torch.bfloat16"),
    (torch.full((3, 2), 1e20), 1.0, "too large for torch.float32: W Wᵀ"),
    (torch.ones(3, 2), 1e30, "too large for torch.float32"),
    (torch.ones(3, 2), 1e-30, "sigma = 1e-30 is too small for torch.float32"),
])
def test_constructor_refuses_parameters_it_could_not_evaluate(W, sigma, message):
    with pytest.raises(ValueError, match=message):
        LinearGaussian(W, torch.zeros(3, dtype=W.dtype), sigma)


@pytest.mark.parametrize("method", ["log_marginal", "posterior", "em_step", "elbo_exact"])
def test_empty_and_overflowing_x_are_explained(method, linear_gaussian):
    model = linear_gaussian(d_x=4, d_z=2, sigma=0.7).float()

    def call(x):
        if method == "elbo_exact":
            return model.elbo_exact(x, model.prior().expand((x.shape[0],)))
        return getattr(model, method)(x)

    with pytest.raises(ValueError, match=r"x must hold at least one data point, got shape \[0, 4\]"):
        call(torch.zeros(0, 4))
    # Finite in float64, inf in the model's float32: the message says so, not "x must be finite".
    with pytest.raises(ValueError, match=r"x overflows torch.float32: .*1e\+300.*model.double\(\)"):
        call(torch.full((2, 4), 1e300, dtype=DT))
    if method in ("log_marginal", "elbo_exact"):  # squared distances overflow: log p(x) would be -inf
        with pytest.raises(ValueError, match="x is too far out for torch.float32: .* overflowed"):
            call(torch.full((2, 4), 1e20))


def test_methods_reject_bad_x_and_z(linear_gaussian):
    model = linear_gaussian(d_x=4, d_z=2, sigma=0.7)
    shape_error = r"x must have shape \[\*, 4\] \(n points in d_x = 4 dimensions\), got "
    for bad, expected in ((torch.zeros(4), shape_error + r"\[4\]"), (torch.zeros(3, 5), shape_error + r"\[3, 5\]"),
                          (torch.zeros(2, 3, 4), shape_error + r"\[2, 3, 4\]"),
                          (torch.full((2, 4), float("nan")), r"x must be finite \(no NaN or inf\), got \[nan")):
        with pytest.raises(ValueError, match=expected):
            model.log_marginal(bad)
        with pytest.raises(ValueError, match=expected):
            model.posterior(bad)
    for bad in (torch.zeros(3), torch.zeros(5, 3)):
        with pytest.raises(ValueError, match=r"z must have shape \[\.\.\., 2\] \(its last dimension is d_z\), got "
                                             + re.escape(str(list(bad.shape)))):
            model.likelihood(bad)


@pytest.mark.parametrize("evaluate", [lambda m, x: m.log_marginal(x), lambda m, x: m.posterior(x),
                                      lambda m, x: lvm.ancestral_sample(m, 2)])
def test_a_model_whose_parameters_turned_nan_says_so(evaluate):
    # A NaN in W gave torch's "not positive-definite" dump (or a NaN-filled Normal) instead of a sentence.
    model = lvm.LinearGaussian(torch.randn(4, 2), torch.zeros(4), sigma=0.5)
    with torch.no_grad():
        model.W[0, 0] = float("nan")
    with pytest.raises(ValueError, match="the model's W is not finite"):
        evaluate(model, torch.randn(3, 4))
