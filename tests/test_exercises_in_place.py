"""Every exercise check accepts a right answer that works in place on its arguments.

A student who writes ``x -= b`` or ``sigma.pow_(2)`` changes the tensors the check gave them. A check that
computed its reference from those same tensors afterwards would call a right answer wrong; each check must
hand the student copies.
"""

import math

import pytest
import torch
from torch.distributions import Bernoulli

from lvm import exercises


def mixture_log_density(x, weights, means, stds):
    log_weights = weights.log_()  # in place: the check's weights now hold log λ
    z = (x[:, None] - means) / stds
    return torch.logsumexp(log_weights - 0.5 * z**2 - stds.log() - 0.5 * math.log(2 * math.pi), dim=-1)


def responsibilities(x, weights, means, stds):
    x.unsqueeze_(-1)  # in place: x is now [n, 1]
    log_joint = weights.log() - 0.5 * ((x - means) / stds) ** 2 - stds.log()
    return torch.softmax(log_joint, dim=-1)


def ppca_posterior(x, W, b, sigma):
    x -= b  # in place: the check's x is now centred
    m = W.T @ W + sigma**2 * torch.eye(W.shape[1], dtype=W.dtype)
    m_inv = torch.linalg.inv(m)
    return x @ W @ m_inv, sigma**2 * m_inv


def importance_estimate(model, x, proposal, n_samples):
    z = proposal.sample((n_samples,))
    log_w = model.joint_log_prob(x, z) - proposal.log_prob(z)
    x.zero_()  # in place, after use: the check must not read x again
    return torch.logsumexp(log_w, dim=0) - math.log(n_samples)


def gaussian_kl(mu_q, std_q, mu_p, std_p):
    var_q, var_p = std_q.pow_(2), std_p.pow_(2)  # in place: the stds are now variances
    mu_q -= mu_p
    return (0.5 * (var_p / var_q).log() + (var_q + mu_q**2) / (2 * var_p) - 0.5).sum(-1)


def score_function_estimates(f, z, mu, std):
    values = f(z)[:, None]
    z -= mu
    return values * z / std**2, values * (z**2 / std**3 - 1 / std)


def reparameterised_sample(mu, scale_tril, eps):
    eps.t_()  # in place: eps is now [d, S], one sample per column
    return mu + (scale_tril @ eps).T


def vae_loss(x, logits, mu, sigma):
    recon = Bernoulli(logits=logits).log_prob(x).sum(-1)
    var = sigma.pow_(2)  # in place: sigma now holds variances
    mu.pow_(2)
    kl = 0.5 * (mu + var - 1 - var.log()).sum(-1)
    return -(recon - kl).mean()


def log_mean_exp_stream(chunks):
    total, count = None, 0
    for c in chunks:
        peak = c.max(0).values
        c -= peak  # in place: the check's chunk is now shifted
        lse = peak + c.exp().sum(0).log()
        total = lse if total is None else torch.logaddexp(total, lse)
        count += c.shape[0]
    return total - math.log(count)


def mutual_information_gap(info, entropy):
    best, second = info.topk(2, dim=0).values
    info.zero_()  # in place, after use: the check must not read info again
    return (best - second) / entropy


def forward_marginal(alphas):
    bars = alphas.cumprod_(dim=0)  # in place: the check's alphas now hold the products
    return bars.sqrt(), 1 - bars


CASES = [
    (exercises.check_mixture_log_density, mixture_log_density),
    (exercises.check_responsibilities, responsibilities),
    (exercises.check_ppca_posterior, ppca_posterior),
    (exercises.check_importance_estimate, importance_estimate),
    (exercises.check_gaussian_kl, gaussian_kl),
    (exercises.check_score_function_estimator, score_function_estimates),
    (exercises.check_reparameterised_sample, reparameterised_sample),
    (exercises.check_vae_loss, vae_loss),
    (exercises.check_log_mean_exp_stream, log_mean_exp_stream),
    (exercises.check_mutual_information_gap, mutual_information_gap),
    (exercises.check_forward_marginal, forward_marginal),
]


@pytest.mark.parametrize("check, solution", CASES, ids=[c.__name__ for c, _ in CASES])
def test_a_right_answer_that_works_in_place_passes(check, solution, capsys):
    check(solution)
    assert "✓" in capsys.readouterr().out


def test_every_check_is_covered():
    assert {c.__name__ for c, _ in CASES} == {n for n in exercises.__all__ if n.startswith("check_")}
