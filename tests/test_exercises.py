"""The exercise checks accept right answers and explain the usual wrong ones."""

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from lvm import exercises
from lvm.exercises import ExerciseFeedback, NotWrittenYet, check_mixture_log_density, check_responsibilities

BOOK = Path(__file__).resolve().parents[1] / "book"


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


def book_check_calls() -> list[tuple[str, str]]:
    """Every ``lvm.exercises.check_X(function_name)`` call in the chapters: the checker and what it checks."""
    calls = set()
    for notebook in sorted(BOOK.glob("*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            calls.update(re.findall(r"lvm\.exercises\.(check_\w+)\((\w+)", "".join(cell["source"])))
    return sorted(calls)


BOOK_CHECKS = book_check_calls()


def test_the_book_calls_every_checker():
    assert {check for check, _ in BOOK_CHECKS} == {n for n in exercises.__all__ if n.startswith("check_")}


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


TRIAL_CHECKS = [c for c in (getattr(exercises, n) for n in exercises.__all__ if n.startswith("check_"))
                if "n_trials" in inspect.signature(c).parameters]


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
