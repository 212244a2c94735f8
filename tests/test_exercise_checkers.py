"""What the exercise checks do besides judging an answer: their own arguments, stubs, and the measured memory.

Right and wrong answers, each with the sentence it must get, are the table in ``test_exercise_wrong_answers.py``.
Here: a check refuses a number of trials that checks nothing and what is not a function, accepts integer-like
trials and seeds; an untouched stub gets a note that names its function, not a failure; and the memory that the
stream exercise of chapter 7 measures stays far from its thresholds for a stream and far over them for copies.
"""

import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_exercise_wrong_answers import log_mean_exp_stream
from torch.distributions import Normal

from lvm import exercises
from lvm.exercises import ExerciseFeedback, NotWrittenYet, check_log_mean_exp_stream, check_mixture_log_density

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [n for n in exercises.__all__ if n.startswith("check_")]


def log_density(x, weights, means, stds):
    return torch.logsumexp(weights.log() + Normal(means, stds).log_prob(x[:, None]), dim=-1)


# --- the checks' own arguments ------------------------------------------------------------------------------------

TRIAL_CHECKS = [c for c in (getattr(exercises, n) for n in CHECKS) if "n_trials" in inspect.signature(c).parameters]


@pytest.mark.parametrize("check", TRIAL_CHECKS, ids=[c.__name__ for c in TRIAL_CHECKS])
@pytest.mark.parametrize("n_trials", [0, -1, 2.0, True])
def test_a_check_refuses_a_number_of_trials_that_checks_nothing(check, n_trials):
    # n_trials=0 used to crash on a variable the empty loop never set (or to pass without checking).
    with pytest.raises(ValueError, match="n_trials must be a positive integer"):
        check(lambda *args: None, n_trials=n_trials)


def test_integer_like_trials_and_seeds_are_accepted(capsys):
    check_mixture_log_density(log_density, n_trials=np.int64(2), seed=torch.tensor(3))
    assert "✓" in capsys.readouterr().out


def test_a_check_refuses_what_is_not_a_function():
    with pytest.raises(ValueError, match="fn must be your function"):
        check_mixture_log_density(log_density(torch.zeros(2), torch.ones(1), torch.zeros(1), torch.ones(1)))


# --- an untouched stub ----------------------------------------------------------------------------------------------

def book_check_calls() -> list[tuple[str, str]]:
    """Every ``lvm.exercises.check_X(function_name)`` call in the chapters: the checker and what it checks."""
    calls = set()
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            calls.update(re.findall(r"lvm\.exercises\.(check_\w+)\((\w+)", "".join(cell["source"])))
    return sorted(calls)


BOOK_CHECKS = book_check_calls()


def test_the_book_calls_every_checker():
    assert {check for check, _ in BOOK_CHECKS} == set(CHECKS)


@pytest.mark.parametrize("check, function_name", BOOK_CHECKS, ids=[c for c, _ in BOOK_CHECKS])
def test_an_untouched_stub_gets_a_note_that_names_its_function(check, function_name):
    # The student edition's stub, under the name the chapter gives it: the feedback names that function (ch. 8
    # once said "the gap is not written yet") and reads as a note, with no error name in front of it.
    def stub(*args, **kwargs):
        raise NotImplementedError

    stub.__name__ = function_name
    with pytest.raises(NotWrittenYet) as caught:
        getattr(exercises, check)(stub)
    assert str(caught.value).startswith(f"{function_name} is not written yet:")
    assert caught.value._render_traceback_() == [str(caught.value)]
    assert isinstance(caught.value, ExerciseFeedback)  # still a failure: an autograder gives no credit
    # The site highlights it as a traceback; a token that lexer cannot read (a backtick) is a build warning.
    from IPython.lib.lexers import IPythonTracebackLexer
    from pygments.token import Error

    unreadable = [text for kind, text in IPythonTracebackLexer().get_tokens(str(caught.value)) if kind in Error]
    assert unreadable == [], f"the traceback lexer cannot read {unreadable}"


@pytest.mark.parametrize("check, function_name", BOOK_CHECKS, ids=[c for c, _ in BOOK_CHECKS])
def test_a_nameless_stub_is_told_under_the_chapters_name(check, function_name):
    # A lambda that raises NotImplementedError has no name of its own: the note uses the chapter's name for it.
    with pytest.raises(NotWrittenYet, match=f"^{function_name} is not written yet:"):
        getattr(exercises, check)(lambda *args: (_ for _ in ()).throw(NotImplementedError))


# --- the memory the stream exercise measures: what an answer holds, in chunks' worth ----------------------------

# The reference answer is the table's (tests/test_exercise_wrong_answers.py); the others are written out here.
stream = log_mean_exp_stream


def stream_with_a_shift(chunks):
    # The max-shift by hand, in place on each chunk (the check hands out copies): right, and it streams.
    total, count = None, 0
    for log_w in chunks:
        peak = log_w.max(0).values
        log_w -= peak
        chunk_lse = peak + log_w.exp().sum(0).log()
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        count += log_w.shape[0]
    return total - math.log(count)


def as_python_floats_each(chunks):
    total, count = None, 0
    for log_w in chunks:
        rows = log_w.tolist()  # one chunk at a time, as Python floats: odd, but a stream
        chunk_lse = torch.logsumexp(torch.tensor(rows, dtype=torch.float64), 0)
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
        count += len(rows)
    return total - math.log(count)


def kept_as(copy):
    def answer(chunks):
        kept = [copy(c) for c in chunks]
        return stream(iter(kept))

    return answer


def measured(fn):
    from lvm.exercises.evaluation import _streaming_measured

    _streaming_measured.clear()
    try:
        check_log_mean_exp_stream(fn)
    except ExerciseFeedback:
        pass
    return dict(_streaming_measured)


@pytest.mark.parametrize("fn", [stream, stream_with_a_shift, as_python_floats_each],
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
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0 and "✓ log_mean_exp_stream" in done.stdout, done.stderr[-2000:]
