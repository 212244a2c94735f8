"""EM for the mixture: closed-form M-step, monotone log-likelihood, recovery of the truth, bad input."""

import math

import pytest
import torch
from scipy import stats

import lvm


def data_from(model, n=3000, seed=0):
    return lvm.ancestral_sample(model, n, generator=seed)[0]


def em_step_by_hand(x, weights, means, stds):
    """One EM step from the definitions, with loops over points, components and coordinates (no lvm code).

    E-step: r_ik = λ_k Π_j N(x_ij | μ_kj, σ_kj²) / Σ_l λ_l Π_j N(x_ij | μ_lj, σ_lj²).
    M-step: N_k = Σ_i r_ik, λ_k = N_k / n, μ_kj = Σ_i r_ik x_ij / N_k, σ_kj² = Σ_i r_ik (x_ij − μ_kj)² / N_k.
    x is a list of points, each a list of d coordinates; the parameters are lists too.
    """
    n, k, d = len(x), len(weights), len(x[0])
    r = []
    for i in range(n):
        joint = [weights[c] * math.prod(stats.norm.pdf(x[i][j], means[c][j], stds[c][j]) for j in range(d))
                 for c in range(k)]
        r.append([p / sum(joint) for p in joint])
    n_k = [sum(r[i][c] for i in range(n)) for c in range(k)]
    new_weights = [n_k[c] / n for c in range(k)]
    new_means = [[sum(r[i][c] * x[i][j] for i in range(n)) / n_k[c] for j in range(d)] for c in range(k)]
    new_vars = [[sum(r[i][c] * (x[i][j] - new_means[c][j]) ** 2 for i in range(n)) / n_k[c] for j in range(d)]
                for c in range(k)]
    return new_weights, new_means, new_vars


@pytest.mark.parametrize("d", [None, 2])  # a mixture on the line, and one in the plane
def test_m_step_matches_the_definitions_computed_by_hand(d):
    g = torch.Generator().manual_seed(3)
    shape = (3,) if d is None else (3, d)
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    means = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    stds = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
    x = 3 * torch.randn((12,) if d is None else (12, d), generator=g, dtype=torch.float64)
    as_rows = (lambda t: t[:, None].tolist()) if d is None else (lambda t: t.tolist())
    by_hand = em_step_by_hand(as_rows(x), weights.tolist(), as_rows(means), as_rows(stds))
    new = lvm.em_step(lvm.GaussianMixture(weights, means, stds), x, min_std=1e-6)
    want_weights, want_means, want_vars = (torch.tensor(v, dtype=torch.float64) for v in by_hand)
    if d is None:
        want_means, want_vars = want_means[:, 0], want_vars[:, 0]
    torch.testing.assert_close(new.weights, want_weights, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(new.means, want_means, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(new.stds**2, want_vars, rtol=1e-10, atol=1e-12)


def test_log_likelihood_never_decreases_and_truth_is_recovered():
    truth = lvm.GaussianMixture(torch.tensor([0.3, 0.7], dtype=torch.float64),
                                torch.tensor([-2.0, 2.0], dtype=torch.float64),
                                torch.tensor([0.5, 1.0], dtype=torch.float64))
    x = data_from(truth)
    init = lvm.GaussianMixture([0.5, 0.5], torch.tensor([-0.5, 0.5], dtype=torch.float64),
                               torch.ones(2, dtype=torch.float64))
    result = lvm.fit_em(x, 2, n_iter=80, init=init)
    ll = torch.tensor(result.log_likelihood)
    assert len(ll) == 81 and torch.all(ll.diff() >= -1e-10)
    assert ll[-1] >= truth.log_marginal(x).mean() - 1e-6  # ML fits the sample at least as well as the truth
    order = result.model.means.argsort()
    assert torch.allclose(result.model.means[order], truth.means, atol=0.1)
    assert torch.allclose(result.model.weights[order], truth.weights, atol=0.05)


def test_multivariate_em_climbs():
    truth = lvm.GaussianMixture([0.5, 0.5], torch.tensor([[-3.0, 0.0], [3.0, 1.0]]), torch.ones(2, 2))
    x = data_from(truth, 1000, seed=1)
    result = lvm.fit_em(x, 2, n_iter=30, generator=torch.Generator().manual_seed(0))
    ll = torch.tensor(result.log_likelihood)
    assert torch.all(ll.diff() >= -1e-5)
    assert result.model.means.shape == (2, 2)


def test_min_std_stops_a_collapse():
    x = torch.tensor([0.0, 0.0, 0.0, 5.0])
    model = lvm.GaussianMixture([0.5, 0.5], [0.0, 5.0], [0.5, 0.5])
    for _ in range(5):
        model = lvm.em_step(model, x, min_std=0.01)
    assert torch.all(model.stds >= 0.01 - 1e-7)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(x=torch.zeros(2, 2, 2), n_components=1), "x"),
    (dict(x=torch.tensor([0.0, float("nan")]), n_components=1), "x"),
    (dict(x=torch.zeros(5), n_components=0), "n_components"),
    (dict(x=torch.zeros(5), n_components=6), "n_components"),
    (dict(x=torch.zeros(5), n_components=2, n_iter=-1), "n_iter"),
])
def test_bad_input(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        lvm.fit_em(**kwargs)
