"""The exercise checks accept right answers and explain the usual wrong ones."""

import pytest
import torch
from torch.distributions import Normal

from lvm.exercises import ExerciseFeedback, check_mixture_log_density, check_responsibilities


def log_density(x, weights, means, stds):
    return torch.logsumexp(weights.log() + Normal(means, stds).log_prob(x[:, None]), dim=-1)


def responsibilities(x, weights, means, stds):
    return torch.softmax(weights.log() + Normal(means, stds).log_prob(x[:, None]), dim=-1)


def test_right_answers_pass(capsys):
    check_mixture_log_density(log_density)
    check_responsibilities(responsibilities)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda x, w, m, s: log_density(x, w, m, s).exp(), "not log p"),
    (lambda x, w, m, s: torch.logsumexp(Normal(m, s).log_prob(x[:, None]), -1), "weighted"),
    (lambda x, w, m, s: log_density(x, w, m, s).sum(), "shape"),
    (lambda x, w, m, s: (w * Normal(m, s).log_prob(x[:, None]).exp()).sum(-1).log(), "log space"),
    (lambda x, w, m, s: log_density(x, w, m, s) + 0.1, "Wrong values"),
    (lambda x, w, m, s: [0.0], "torch.Tensor"),
])
def test_log_density_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_mixture_log_density(wrong)


def naive_responsibilities(x, w, m, s):
    joint = w * Normal(m, s).log_prob(x[:, None]).exp()
    return joint / joint.sum(-1, keepdim=True)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, w, m, s: responsibilities(x, w, m, s).T, "transpose"),
    (lambda x, w, m, s: w * Normal(m, s).log_prob(x[:, None]).exp(), "sum to one"),
    (lambda x, w, m, s: torch.softmax(Normal(m, s).log_prob(x[:, None]), -1), "prior"),
    (naive_responsibilities, "log space"),
    (lambda x, w, m, s: responsibilities(x, w, m, s)[:, :1], "shape"),
])
def test_responsibilities_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_responsibilities(wrong)


def test_unwritten_exercise_says_so():
    def stub(x, weights, means, stds):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_mixture_log_density(stub)
