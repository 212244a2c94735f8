"""What every check shares: the feedback exception and the careful call of a student's function."""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["ExerciseFeedback"]


class ExerciseFeedback(AssertionError):
    """A check found a problem; the message explains it.

    In IPython (Jupyter, Colab) it shows as its sentence alone: the stack of a check is the checker's own code,
    which tells a student nothing. The cell still fails, so an autograder or a book build still sees it.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is displayed
        return [f"{type(self).__name__}: {self}"]


def _call(fn: Callable, name: str, *args) -> torch.Tensor:
    try:
        out = fn(*args)
    except NotImplementedError:
        raise ExerciseFeedback(f"{name} is not written yet (it raised NotImplementedError).") from None
    if not isinstance(out, torch.Tensor):
        raise ExerciseFeedback(f"{name} must return a torch.Tensor, it returned {type(out).__name__}.")
    return out.detach().to(torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)
