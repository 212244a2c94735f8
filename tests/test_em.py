"""EM for the mixture: closed-form M-step, monotone log-likelihood, recovery of the truth, bad input."""

import pytest
import torch

import lvm


def data_from(model, n=3000, seed=0):
    return lvm.ancestral_sample(model, n, generator=seed)[0]


def test_m_step_is_the_weighted_average():
    x = torch.tensor([-1.0, 0.0, 4.0, 5.0], dtype=torch.float64)
    model = lvm.GaussianMixture(torch.tensor([0.5, 0.5], dtype=torch.float64), [0.0, 4.0], [1.0, 1.0])
    r = model.responsibilities(x)
    new = lvm.em_step(model, x)
    n_k = r.sum(0)
    assert torch.allclose(new.weights, n_k / 4)
    assert torch.allclose(new.means, (r * x[:, None]).sum(0) / n_k)
    assert torch.allclose(new.stds**2, (r * (x[:, None] - new.means) ** 2).sum(0) / n_k)


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
