"""Chapter 5's exercise checks: the score-function estimator and the reparameterised sample."""

import pytest
import torch
from torch.distributions import MultivariateNormal

from lvm.exercises import ExerciseFeedback, check_reparameterised_sample, check_score_function_estimator


def score_function_estimates(f, z, mu, std):
    values = f(z)[:, None]
    return values * (z - mu) / std**2, values * ((z - mu) ** 2 / std**3 - 1 / std)


def autograd_score(f, z, mu, std):
    # The same answer from autograd of torch's log-density, one sample at a time: must pass as well.
    mu, std = mu.clone().requires_grad_(True), std.clone().requires_grad_(True)
    scores = [torch.autograd.grad(torch.distributions.Normal(mu, std).log_prob(z_s).sum(), (mu, std))
              for z_s in z]
    values = f(z)[:, None]
    return values * torch.stack([g for g, _ in scores]), values * torch.stack([g for _, g in scores])


def reparameterised_sample(mu, scale_tril, eps):
    return mu + eps @ scale_tril.T


def test_right_answers_pass(capsys):
    check_score_function_estimator(score_function_estimates)
    check_score_function_estimator(autograd_score)
    check_reparameterised_sample(reparameterised_sample)
    check_reparameterised_sample(lambda m, L, e: m + (L @ e.T).T)
    assert capsys.readouterr().out.count("✓") == 4


def sf_mu(f, z, mu, std, new_mu):
    return new_mu, score_function_estimates(f, z, mu, std)[1]


def sf_std(f, z, mu, std, new_std):
    return score_function_estimates(f, z, mu, std)[0], new_std


@pytest.mark.parametrize("wrong, message", [
    (lambda f, z, m, s: tuple(g.mean(0) for g in score_function_estimates(f, z, m, s)), "averaged"),
    (lambda f, z, m, s: sf_mu(f, z, m, s, f(z)[:, None] * (z - m) / s), "not by σ"),
    (lambda f, z, m, s: sf_mu(f, z, m, s, -f(z)[:, None] * (z - m) / s**2), "wrong sign"),
    (lambda f, z, m, s: sf_mu(f, z, m, s, (z - m) / s**2), "score alone"),
    (lambda f, z, m, s: sf_mu(f, z, m, s, 2 * z), "pathwise"),
    (lambda f, z, m, s: sf_std(f, z, m, s, f(z)[:, None] * (z - m) ** 2 / s**3), "−1/σ"),
    (lambda f, z, m, s: sf_std(f, z, m, s, -score_function_estimates(f, z, m, s)[1]), "wrong sign"),
    (lambda f, z, m, s: sf_std(f, z, m, s, ((z - m) ** 2 / s**3 - 1 / s)), "score alone"),
    (lambda f, z, m, s: sf_std(f, z, m, s, f(z)[:, None] * ((z - m) ** 2 - 1) / s), "grad_std is wrong"),
    (lambda f, z, m, s: score_function_estimates(f, z, m, s)[0], "pair"),
])
def test_score_function_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_score_function_estimator(wrong)


@pytest.mark.parametrize("wrong, message", [
    (lambda m, L, e: m + e @ L, "applied Lᵀ"),
    (lambda m, L, e: m + e @ (L @ L.T).T, "covariance"),
    (lambda m, L, e: m + e * L.diagonal(), "diagonal"),
    (lambda m, L, e: (m + e @ L.T).detach(), "no gradient"),
    (lambda m, L, e: MultivariateNormal(m, scale_tril=L).sample((e.shape[0],)), r"\.sample\(\)"),
    (lambda m, L, e: m + e @ L.T.detach(), "scale_tril"),
    (lambda m, L, e: (m + e @ L.T)[0], "shape"),
    (lambda m, L, e: (m + e @ L.T).tolist(), "torch.Tensor"),
])
def test_reparameterised_sample_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_reparameterised_sample(wrong)


def test_wrong_gradients_with_right_values_are_caught():
    class Doubled(torch.autograd.Function):
        """Right values, gradients twice too large."""

        @staticmethod
        def forward(ctx, z):
            return z.clone()

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    with pytest.raises(ExerciseFeedback, match="gradients"):
        check_reparameterised_sample(lambda m, L, e: Doubled.apply(m + e @ L.T))


def test_unwritten_exercises_say_so():
    def stub(*args):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_score_function_estimator(stub)
    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_reparameterised_sample(stub)
