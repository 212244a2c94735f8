"""Chapter 4's exercise check: the KL divergence between diagonal Gaussians (eq. ``gauss-kl``)."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from lvm.exercises import ExerciseFeedback, check_gaussian_kl


def gaussian_kl(mu_q, std_q, mu_p, std_p):
    return (torch.log(std_p / std_q) + (std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2) - 0.5).sum(-1)


def test_right_answers_pass(capsys):
    check_gaussian_kl(gaussian_kl)
    # torch's own divergence is a right answer too
    check_gaussian_kl(lambda a, b, c, d: kl_divergence(Normal(a, b), Normal(c, d)).sum(-1))
    assert "✓" in capsys.readouterr().out


def test_float32_answer_passes():
    def in_float32(a, b, c, d):
        return gaussian_kl(a.float(), b.float(), c.float(), d.float())

    check_gaussian_kl(in_float32)


def per_dim(a, b, c, d):
    return torch.log(d / b) + (b**2 + (a - c) ** 2) / (2 * d**2) - 0.5


@pytest.mark.parametrize("wrong, message", [
    (lambda a, b, c, d: gaussian_kl(c, d, a, b), "swapped"),
    (lambda a, b, c, d: per_dim(a, b, c, d), "per coordinate"),
    (lambda a, b, c, d: per_dim(a, b, c, d).sum(0), "rows"),
    (lambda a, b, c, d: gaussian_kl(a, b, c, d) + a.shape[-1] / 2, "too large by d/2"),
    (lambda a, b, c, d: (per_dim(a, b, c, d) - 0.5).sum(-1), "too small by d/2"),
    (lambda a, b, c, d: (torch.log(d**2 / b**2) + (b**2 + (a - c) ** 2) / (2 * d**2) - 0.5).sum(-1), "log term"),
    (lambda a, b, c, d: (torch.log(d / b) + (b**2 + (a - c) ** 2) / d**2 - 0.5).sum(-1), "quadratic term"),
    (lambda a, b, c, d: (torch.log(d / b) + (b + (a - c) ** 2) / (2 * d) - 0.5).sum(-1), "Wrong values"),
    (lambda a, b, c, d: gaussian_kl(a, b, c, d).tolist(), "torch.Tensor"),
])
def test_typical_mistakes_get_specific_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_gaussian_kl(wrong)


def test_unwritten_exercise_says_so():
    def stub(mu_q, std_q, mu_p, std_p):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_gaussian_kl(stub)
