"""What every check shares: the feedback exception and the careful call of a student's function."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn
from torch.distributions import Distribution

from .._checks import check_int, check_positive_int

__all__ = ["ExerciseFeedback"]


class ExerciseFeedback(AssertionError):
    """A check found a problem; the message explains it.

    In IPython (Jupyter, Colab) it shows as its sentence alone: the stack of a check is the checker's own code,
    which tells a student nothing. The cell still fails, so an autograder or a book build still sees it.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is displayed
        return [f"{type(self).__name__}: {self}"]


def _start(fn: Callable, seed: int, n_trials: int = 1) -> tuple[int, torch.Generator]:
    """Check a check's own arguments; return the number of trials and the generator of the random cases."""
    if not callable(fn):
        raise ValueError(f"fn must be your function (a callable), got {type(fn).__name__}; pass its name "
                         "without calling it, e.g. check(my_function)")
    n_trials = check_positive_int(n_trials, "n_trials")  # 0 trials would check nothing, and say it passed
    return n_trials, torch.Generator().manual_seed(check_int(seed, "seed"))


def _copies(*args: Any) -> tuple[Any, ...]:
    """Fresh copies of the tensors, models and distributions in ``args``; anything else as it is.

    A student's function gets copies, so a right answer that works in place (``x -= b``,
    ``sigma.pow_(2)``) cannot change the tensors the check computes its reference from.
    """
    return tuple(_copy(a) for a in args)


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (nn.Module, Distribution)):
        return copy.deepcopy(value)
    return value


def _call(fn: Callable, name: str, *args) -> torch.Tensor:
    """``fn`` on copies of ``args``; its answer as a detached float64 tensor, or feedback on why not."""
    try:
        out = fn(*_copies(*args))
    except NotImplementedError:
        raise ExerciseFeedback(f"{name} is not written yet (it raised NotImplementedError).") from None
    if not isinstance(out, torch.Tensor):
        raise ExerciseFeedback(f"{name} must return a torch.Tensor, it returned {type(out).__name__}.")
    return out.detach().to(torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
