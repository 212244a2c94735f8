"""The chapter-7 exercise check: ``lvm.exercises.check_log_mean_exp_stream`` (the IWAE estimate over chunks)."""

import math

import pytest
import torch

import lvm
from lvm.exercises import ExerciseFeedback, check_log_mean_exp_stream


def right(chunks):
    total, count = None, 0
    for log_w in chunks:
        chunk_lse = torch.logsumexp(log_w, dim=0)
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        count += log_w.shape[0]
    return total - math.log(count)


def right_with_a_shift(chunks):
    # The max-shift by hand, in place on each chunk (the check hands out copies): right, and it streams.
    total, count = None, 0
    for log_w in chunks:
        peak = log_w.max(0).values
        log_w -= peak
        chunk_lse = peak + log_w.exp().sum(0).log()
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        count += log_w.shape[0]
    return total - math.log(count)


def right_by_concatenation(chunks):
    # Right values, but it holds all K draws at once: the memory the exercise is about. Rejected.
    log_w = torch.cat(list(chunks))
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def test_right_answers_pass(capsys):
    check_log_mean_exp_stream(right)
    check_log_mean_exp_stream(right_with_a_shift)
    assert "✓ log_mean_exp_stream" in capsys.readouterr().out


def test_the_right_answer_is_what_lvm_iwae_bound_computes(linear_gaussian):
    # Same draws (same seed), any chunking: the streamed estimate is lvm.iwae_bound's.
    model = linear_gaussian(d_x=6, d_z=2, sigma=0.5)
    x, _ = lvm.ancestral_sample(model, 4, generator=1)
    q = torch.distributions.MultivariateNormal(model.posterior(x).mean,
                                               4 * model.posterior(x).covariance_matrix)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        log_w = lvm.log_importance_weights(model, x, q, k=12, chunk_size=5)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        bound = lvm.iwae_bound(model, x, q, k=12, chunk_size=5)
    assert torch.allclose(right(iter(log_w.split(5))), bound)
    assert torch.allclose(right(iter(log_w.split(1))), bound)


def mean_of_chunk_estimates(chunks):
    return torch.stack([torch.logsumexp(c, 0) - math.log(c.shape[0]) for c in chunks]).mean(0)


def divide_by_chunk_count(chunks):
    chunks = list(chunks)
    return torch.logsumexp(torch.cat(chunks), 0) - math.log(len(chunks))


WRONG = {
    "concatenated": (right_by_concatenation, "built one tensor of the draws of several chunks"),
    "per draw": (lambda chunks: torch.cat(list(chunks)), "one value per draw"),
    "scalar": (lambda chunks: right_by_concatenation(chunks).mean(), "reduced over the data points"),
    "summed weights": (lambda chunks: torch.logsumexp(torch.cat(list(chunks)), 0), "too large by log K"),
    "chunk count": (divide_by_chunk_count, "number of chunks"),
    "mean of chunk estimates": (mean_of_chunk_estimates, "averaged the chunks' estimates"),
    "mean of logs": (lambda chunks: torch.cat(list(chunks)).mean(0), "that is the ELBO"),
    "exp then log": (lambda chunks: torch.cat(list(chunks)).exp().mean(0).log(), "underflows"),
    "not written": (lambda chunks: (_ for _ in ()).throw(NotImplementedError), "not written yet"),
    "just wrong": (lambda chunks: right(chunks) + 0.01, "Wrong values"),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_typical_mistakes_get_specific_feedback(name):
    fn, message = WRONG[name]
    with pytest.raises(ExerciseFeedback, match=message):
        check_log_mean_exp_stream(fn)
