"""Chapter 3's exercise check: the importance-sampling estimate, right answers pass, usual mistakes explained."""

import math

import pytest
import torch

from lvm.exercises import ExerciseFeedback, check_importance_estimate


def estimate(model, x, proposal, n_samples):
    z = proposal.sample((n_samples,))
    log_w = model.joint_log_prob(x, z) - proposal.log_prob(z)
    return torch.logsumexp(log_w, dim=0) - math.log(n_samples)


def _log_w(model, x, proposal, n_samples):
    z = proposal.sample((n_samples,))
    return model.joint_log_prob(x, z) - proposal.log_prob(z)


def test_right_answer_passes(capsys):
    check_importance_estimate(estimate)
    assert "✓" in capsys.readouterr().out


def test_the_check_is_deterministic_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    check_importance_estimate(estimate)
    assert torch.equal(torch.rand(3), before)


def test_float32_answer_passes():
    def in_float32(model, x, proposal, n_samples):
        return estimate(model, x, proposal, n_samples).float()

    check_importance_estimate(in_float32)


@pytest.mark.parametrize("wrong, message", [
    # p̂ instead of log p̂
    (lambda m, x, r, s: estimate(m, x, r, s).exp(), "not log"),
    # the sum of the weights, not their mean
    (lambda m, x, r, s: torch.logsumexp(_log_w(m, x, r, s), 0), "summed the weights"),
    # the mean of the log-weights: the ELBO
    (lambda m, x, r, s: _log_w(m, x, r, s).mean(0), "averaged the log-weights"),
    # forgot to divide by the proposal density
    (lambda m, x, r, s: (lambda z: torch.logsumexp(m.joint_log_prob(x, z), 0) - math.log(s))(r.sample((s,))),
     "proposal.log_prob"),
    # forgot the prior: log p(x | z) instead of log p(x, z)
    (lambda m, x, r, s: (lambda z: torch.logsumexp(m.likelihood(z).log_prob(x) - r.log_prob(z), 0)
                         - math.log(s))(r.sample((s,))), "log p\\(z\\)"),
    # exponentiates: underflows at D = 784
    (lambda m, x, r, s: _log_w(m, x, r, s).exp().mean(0).log(), "log space"),
    # one estimate per draw instead of per point
    (lambda m, x, r, s: _log_w(m, x, r, s), "Average over the samples"),
    # a single draw, whatever n_samples says
    (lambda m, x, r, s: estimate(m, x, r, 1), "six standard errors"),
    (lambda m, x, r, s: estimate(m, x, r, s).tolist(), "torch.Tensor"),
])
def test_wrong_answers_get_specific_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_importance_estimate(wrong)


def test_unwritten_exercise_says_so():
    def stub(model, x, proposal, n_samples):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_importance_estimate(stub)
