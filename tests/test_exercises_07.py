"""The chapter-7 exercise check: ``lvm.exercises.check_log_mean_exp_stream`` (the IWAE estimate over chunks)."""

import math
import subprocess
import sys
from pathlib import Path

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


def counted_from(start):
    def answer(chunks):
        total, count = None, start  # count = 1: one draw too many; -1: one too few
        for log_w in chunks:
            chunk_lse = torch.logsumexp(log_w, dim=0)
            total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
            count += log_w.shape[0]
        return total - math.log(count)

    return answer


def sized_as_the_last_chunk(chunks):
    total, size, n_chunks = None, 0, 0
    for log_w in chunks:
        chunk_lse = torch.logsumexp(log_w, dim=0)
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        size, n_chunks = log_w.shape[0], n_chunks + 1  # every chunk assumed as big as the last
    return total - math.log(size * n_chunks)


def divide_by_chunk_count(chunks):
    chunks = list(chunks)
    return torch.logsumexp(torch.cat(chunks), 0) - math.log(len(chunks))


WRONG = {
    "concatenated": (right_by_concatenation, "built one tensor of the draws of several chunks"),
    "per draw": (lambda chunks: torch.cat(list(chunks)), "one value per draw"),
    "scalar": (lambda chunks: right_by_concatenation(chunks).mean(), "reduced over the data points"),
    "summed weights": (lambda chunks: torch.logsumexp(torch.cat(list(chunks)), 0), "too large by log K"),
    "chunk count": (divide_by_chunk_count, "number of chunks"),
    # The first stream has chunks of 2, 6 and 5 draws, K = 13. With sizes 2, 5 and 4 (K = 11), a count from 1,
    # 12 = 4 × 3, was told that it assumed every chunk had 4 draws.
    "count from 1": (counted_from(1), "off by one: you divided by 14"),
    "count from -1": (counted_from(-1), "off by one: you divided by 12"),
    "every chunk as big as the last": (sized_as_the_last_chunk, "every chunk has 5 draws"),
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


# --- the memory test: what an answer holds, in chunks' worth, against the thresholds ---------------------------

def kept_as(copy):
    def answer(chunks):
        kept = [copy(c) for c in chunks]
        return right(iter(kept))

    return answer


def as_python_floats_each(chunks):
    total, count = None, 0
    for log_w in chunks:
        rows = log_w.tolist()  # one chunk at a time, as Python floats: odd, but a stream
        chunk_lse = torch.logsumexp(torch.tensor(rows, dtype=torch.float64), 0)
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        count += len(rows)
    return total - math.log(count)


def measured(fn):
    from lvm.exercises.evaluation import _streaming_measured

    _streaming_measured.clear()
    try:
        check_log_mean_exp_stream(fn)
    except ExerciseFeedback:
        pass
    return dict(_streaming_measured)


@pytest.mark.parametrize("fn", [right, right_with_a_shift, as_python_floats_each],
                         ids=["right", "right, shifted in place", "one chunk as Python floats at a time"])
def test_streaming_answers_hold_well_under_the_thresholds(fn):
    m = measured(fn)
    # 48 chunks: the thresholds are 3 chunks alive, one tensor of 2 chunks, 16 chunks' worth of copies
    assert m["alive"] <= 2 and m["largest"] < 1.1
    assert m["held"] < 8 and m["peak"] < 12  # measured 0.3-6.4 and 0.3-10.5


@pytest.mark.parametrize("copy, at_least", [(lambda c: c.clone(), 40), (lambda c: c.float(), 40),
                                            (lambda c: torch.tensor(c.tolist()), 40)],
                         ids=["clone", "float", "torch.tensor(tolist)"])
def test_answers_that_keep_copies_hold_far_over_the_threshold(copy, at_least):
    assert measured(kept_as(copy))["held"] >= at_least  # 48 chunks' worth; the threshold is 16


def test_a_right_answer_passes_in_a_fresh_interpreter():
    # What torch or Python does once (an import, a cache) in the first call of a session must not count as memory
    # the answer holds: a torch dispatch mode, for one, imports torch._dynamo (66 MB, seconds) the first time.
    code = ("import math, torch\n"
            "from lvm.exercises import check_log_mean_exp_stream\n"
            "def right(chunks):\n"
            "    total, count = None, 0\n"
            "    for log_w in chunks:\n"
            "        lse = torch.logsumexp(log_w, 0)\n"
            "        total = lse if total is None else torch.logaddexp(total, lse)\n"
            "        count += log_w.shape[0]\n"
            "    return total - math.log(count)\n"
            "check_log_mean_exp_stream(right)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and "✓ log_mean_exp_stream" in done.stdout, done.stderr[-2000:]


def test_the_stream_can_be_read_once_and_says_so():
    def two_passes(chunks):
        count = sum(len(c) for c in chunks)
        return right(chunks) - math.log(count)

    with pytest.raises(ExerciseFeedback, match="read the stream a second time"):
        check_log_mean_exp_stream(two_passes)
    with pytest.raises(ExerciseFeedback, match="no len\\(\\), no indexing"):
        check_log_mean_exp_stream(lambda chunks: right(iter([chunks[0]])))
