"""The chapter-9 exercise check: ``lvm.exercises.check_forward_marginal``."""

import pytest
import torch

from lvm import diffusion
from lvm.exercises import ExerciseFeedback, check_forward_marginal


def right(alphas):
    bars = torch.cumprod(alphas, dim=0)
    return bars.sqrt(), 1 - bars


def right_in_place(alphas):
    bars = alphas.cumprod_(dim=0)  # in place: fine, the check hands out copies
    return bars.sqrt(), 1 - bars


def test_right_answers_pass(capsys):
    check_forward_marginal(right)
    check_forward_marginal(right_in_place)
    assert "✓ forward_marginal" in capsys.readouterr().out


def test_the_right_answer_is_what_lvm_uses():
    alphas = diffusion.signal_schedule(7, final=0.05)
    scale, variance = right(alphas)
    marginal = diffusion.forward_marginal(torch.ones(7, dtype=torch.float64), diffusion.alpha_bars(alphas))
    torch.testing.assert_close(marginal.mean, scale)
    torch.testing.assert_close(marginal.variance, variance)


@pytest.mark.parametrize("wrong, says", [
    (lambda a: (a.sqrt(), 1 - a), "own α_t"),
    (lambda a: (torch.cumprod(a, 0), 1 - torch.cumprod(a, 0)), "scaled by √ᾱ_t"),
    (lambda a: (torch.cumprod(a, 0).sqrt(), (1 - torch.cumprod(a, 0)).sqrt()), "standard deviation"),
    (lambda a: (torch.cumprod(a, 0).sqrt(), torch.cumsum(1 - a, 0)), "do not simply add up"),
    (lambda a: torch.cumprod(a, 0), "must return a pair"),
    (lambda a: (torch.cumprod(a, 0).sqrt()[:1], 1 - torch.cumprod(a, 0)), "shape"),
    (lambda a: (torch.cumprod(a, 0).sqrt() * 1.01, 1 - torch.cumprod(a, 0)), "Wrong values"),
])
def test_wrong_answers_get_a_sentence_that_says_what_is_wrong(wrong, says):
    with pytest.raises(ExerciseFeedback, match=says):
        check_forward_marginal(wrong)
