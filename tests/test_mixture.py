"""GaussianMixture: values against scipy, the posterior by Bayes' rule, shapes, and every bad input."""

import numpy as np
import pytest
import torch
from scipy import stats

import lvm


def components(model):
    """(λ_k, μ_k, σ_k) of a 1-D mixture, as Python floats for scipy."""
    return list(zip(model.weights.tolist(), model.means.tolist(), model.stds.tolist()))


def scipy_density(model, x):
    return sum(w * stats.norm(m, s).pdf(x) for w, m, s in components(model))


def test_log_marginal_matches_scipy(mixture):
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    np.testing.assert_allclose(mixture.log_marginal(x).exp().numpy(), scipy_density(mixture, x.numpy()),
                               rtol=1e-10)


def test_log_marginal_is_finite_far_in_the_tails(mixture):
    from scipy.special import logsumexp

    x = np.array([-200.0, 150.0])
    log_terms = np.stack([np.log(w) + stats.norm(m, s).logpdf(x) for w, m, s in components(mixture)])
    assert np.all(np.exp(log_terms) == 0)  # the naive sum of densities underflows here ...
    got = mixture.log_marginal(torch.from_numpy(x))
    np.testing.assert_allclose(got.numpy(), logsumexp(log_terms, axis=0), rtol=1e-10)  # ... log-sum-exp does not


def test_marginal_integrates_to_one(mixture):
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    assert abs(float(torch.trapezoid(mixture.log_marginal(x).exp(), x)) - 1) < 1e-8


def test_posterior_is_bayes_rule(mixture):
    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    joint = np.stack([w * stats.norm(m, s).pdf(x.numpy()) for w, m, s in components(mixture)], axis=1)
    np.testing.assert_allclose(mixture.responsibilities(x).numpy(), joint / joint.sum(1, keepdims=True),
                               rtol=1e-9, atol=1e-12)
    assert mixture.posterior(x).batch_shape == (41,)


def test_posterior_stays_finite_where_densities_underflow(mixture):
    r = mixture.responsibilities(torch.tensor([80.0, -80.0], dtype=torch.float64))
    assert torch.isfinite(r).all()
    # Far out, the widest component (index 1, σ = 0.9) takes all responsibility.
    assert torch.allclose(r[:, 1], torch.ones(2, dtype=torch.float64))


def test_joint_sums_to_marginal(mixture):
    x = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    joint = torch.stack([mixture.joint_log_prob(x, torch.full((3,), k)) for k in range(3)]).exp().sum(0)
    assert torch.allclose(joint, mixture.log_marginal(x).exp())


def test_likelihood_is_batched_over_z(mixture):
    z = torch.tensor([[0, 1], [2, 2]])
    dist = mixture.likelihood(z)
    assert dist.batch_shape == (2, 2)
    assert torch.allclose(dist.mean, torch.tensor([[-2.5, 0.5], [3.0, 3.0]], dtype=torch.float64))


def test_multivariate_mixture_matches_scipy():
    weights = torch.tensor([0.4, 0.6], dtype=torch.float64)
    means = torch.tensor([[0.0, 1.0, -1.0], [2.0, -1.0, 0.5]], dtype=torch.float64)
    stds = torch.tensor([[1.0, 0.5, 2.0], [0.7, 1.5, 1.0]], dtype=torch.float64)
    model = lvm.GaussianMixture(weights, means, stds)
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = sum(w * stats.multivariate_normal(m, np.diag(s**2)).pdf(x.numpy())
                   for w, m, s in zip(weights.numpy(), means.numpy(), stds.numpy()))
    np.testing.assert_allclose(model.log_marginal(x).exp().numpy(), expected, rtol=1e-10)
    r = model.responsibilities(x)
    assert r.shape == (10, 2) and torch.allclose(r.sum(1), torch.ones(10, dtype=torch.float64))
    first = 0.4 * stats.multivariate_normal(means[0].numpy(), np.diag(stds[0].numpy() ** 2)).pdf(x.numpy())
    np.testing.assert_allclose(r[:, 0].numpy(), first / expected, rtol=1e-9)
    assert model.x_dim == 3 and model.likelihood(torch.tensor([0, 1])).event_shape == (3,)


@pytest.mark.parametrize("weights, means, stds, argument", [
    ([0.5, 0.6], [0.0, 1.0], [1.0, 1.0], "weights"),  # does not sum to one
    ([1.5, -0.5], [0.0, 1.0], [1.0, 1.0], "weights"),  # negative
    ([[0.5, 0.5]], [0.0, 1.0], [1.0, 1.0], "weights"),  # not a vector
    ([float("nan"), 1.0], [0.0, 1.0], [1.0, 1.0], "weights"),
    ([0.5, 0.5], [0.0, 1.0, 2.0], [1.0, 1.0], "means"),  # wrong length
    ([0.5, 0.5], [0.0, float("nan")], [1.0, 1.0], "means"),
    ([0.5, 0.5], [0.0, 1.0], [1.0, 0.0], "stds"),  # not positive
    ([0.5, 0.5], [0.0, 1.0], [1.0, -2.0], "stds"),
    ([0.5, 0.5], [0.0, 1.0], [1.0], "stds"),  # wrong shape
    ([0.5, 0.5], [0.0, 1.0], [1.0, float("inf")], "stds"),
    ([0.5, 0.5], "abc", [1.0, 1.0], "means"),
])
def test_bad_parameters_name_the_argument(weights, means, stds, argument):
    with pytest.raises(ValueError, match=argument):
        lvm.GaussianMixture(weights, means, stds)


def test_bad_data_names_x(mixture):
    with pytest.raises(ValueError, match=r"x must have shape \[\*\] \(a 1-D mixture takes a vector of n points\), "
                                         r"got \[3, 2\]"):
        mixture.log_marginal(torch.zeros(3, 2))  # 1-D model, 2-D data
    with pytest.raises(ValueError, match=r"x must be finite \(no NaN or inf\), got \[0, nan\]"):
        mixture.posterior(torch.tensor([0.0, float("nan")]))
    model = lvm.GaussianMixture([0.5, 0.5], torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"x must have shape \[\*, 3\] \(n points in 3 dimensions\), got \[4, 2\]"):
        model.log_marginal(torch.zeros(4, 2))


@pytest.mark.parametrize("method", ["log_marginal", "posterior", "responsibilities", "em_step"])
def test_empty_and_overflowing_x_are_explained(method):
    model = lvm.GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0])  # float32
    call = (lambda x: lvm.em_step(model, x)) if method == "em_step" else getattr(model, method)
    with pytest.raises(ValueError, match=r"x must hold at least one data point, got shape \[0\]"):
        call(torch.zeros(0))
    with pytest.raises(ValueError, match=r"x overflows torch.float32: .*1e\+300"):
        call(torch.tensor([0.0, 1e300], dtype=torch.float64))
    # (x - μ)² / σ² overflows float32: every component's density is 0, log p(x) would be -inf.
    with pytest.raises(ValueError, match="x is too far out for torch.float32: log p.x. overflowed"):
        call(torch.tensor([0.0, 1e20]))
    assert torch.isfinite(lvm.GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0]).double().log_marginal(
        torch.tensor([0.0, 1e20], dtype=torch.float64))).all()  # and in float64 it is fine


def test_bad_latent_values_name_z(mixture):
    with pytest.raises(ValueError, match=r"z must index a component in 0\.\.\d"):
        mixture.likelihood(torch.tensor([3]))
    with pytest.raises(ValueError, match="z must hold integer component indices, got dtype torch.float32"):
        mixture.likelihood(torch.tensor([0.5]))
