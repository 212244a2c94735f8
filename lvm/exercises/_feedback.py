"""What every check shares: the feedback exception and the careful call of a student's function."""

from __future__ import annotations

import copy
import inspect
import textwrap
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from .._checks import check_int, check_positive_int

__all__ = ["ExerciseFeedback"]

_HERE = str(Path(__file__).resolve().parent)


class ExerciseFeedback(AssertionError):
    """A check found a problem; the message explains it.

    In IPython (Jupyter, Colab) it shows as its sentence alone: the stack of a check is the checker's own code,
    which tells a student nothing. Where the student's function itself raised an error, the lines of the
    student's code that raised it are shown above the sentence. The cell still fails, so an autograder or a book
    build still sees it.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is displayed
        lines = []
        cause = self.__cause__
        if cause is not None and not isinstance(cause, ExerciseFeedback):
            frames = [f for f in traceback.extract_tb(cause.__traceback__) if not f.filename.startswith(_HERE)]
            if frames:
                text = "".join(traceback.format_list(frames) + traceback.format_exception_only(type(cause), cause))
                lines += ["Your function raised this error:", *text.rstrip("\n").split("\n"), ""]
        return lines + [f"{type(self).__name__}: {self}"]


class NotWrittenYet(ExerciseFeedback):
    """The function is still the student edition's stub: a note on what to do next, not an alarm.

    It shows as its sentence alone, without an error's name in front, and the cell still fails, so that an
    autograder or a book build gives no credit for an untouched stub.
    """

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def _passed(message: str) -> None:
    """Print a check's success, wrapped to the width a notebook's output box shows (76 characters)."""
    print("\n".join(textwrap.fill(line, width=76, subsequent_indent="  ") for line in message.split("\n")))


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


def _describe(fn: Callable, args: tuple[Any, ...]) -> str:
    """The arguments a function was called with, as a student reads them: names (the student's own) and shapes."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        names = []
    if len(names) != len(args):
        names = [f"argument {i + 1}" for i in range(len(args))]
    parts = []
    for label, a in zip(names, args):
        if isinstance(a, torch.Tensor):
            parts.append(f"{label} of shape {list(a.shape)}" if a.dim() else f"{label}, a 0-dim tensor")
        elif isinstance(a, Distribution):
            parts.append(f"{label}, a {type(a).__name__} with batch shape {list(a.batch_shape)}")
        elif isinstance(a, nn.Module):
            parts.append(f"{label}, a {type(a).__name__}")
        elif callable(a):
            parts.append(f"{label}, a function")
        elif hasattr(a, "__next__"):
            parts.append(f"{label}, an iterator of tensors")
        else:
            parts.append(f"{label} = {a!r}")
    return "; ".join(parts)


def _invoke(fn: Callable, name: str, *args: Any, copies: bool = True,
            explain: Callable[[Exception], str | None] | None = None) -> Any:
    """``fn(*args)`` (on copies of the tensors, unless ``copies`` is false); its answer as it is.

    A stub (``NotImplementedError``) is told so; any other error the student's function raises becomes a
    sentence. ``explain``, if given, may name the mistake behind an error it recognises (a sentence, or None);
    otherwise the sentence says what the function was called with: the usual cause is code that only works for
    the sizes of the student's own example (a hard-coded number of components, ``torch.eye(2)``).
    """
    try:
        return fn(*(_copies(*args) if copies else args))
    except NotImplementedError:
        # No backticks or quotes: the site highlights this output as a traceback, and its lexer chokes on them.
        raise NotWrittenYet(f"{name} is not written yet: write its body in place of the line that raises, then run "
                            "this check again.") from None
    except ExerciseFeedback:
        raise
    except Exception as err:  # the student's own error: say what it was called with, keep it as the cause
        reason = explain(err) if explain is not None else None
        if reason:
            raise ExerciseFeedback(f"{name} raised {type(err).__name__} ({_first_line(err)}). {reason}") from err
        raise ExerciseFeedback(
            f"{name} raised {type(err).__name__} ({err}) when called with {_describe(fn, args)}. If it "
            "runs on your own example, check that it does not assume particular sizes (a fixed number of "
            "components, points or dimensions).") from err


def _first_line(err: Exception, limit: int = 90) -> str:
    """The start of an error's message, short enough for a sentence."""
    text = str(err).strip().split("\n")[0]
    return (text[:limit] + "…") if len(text) > limit else text


def _tensor(out: Any, name: str) -> torch.Tensor:
    """A student's answer as a detached float64 tensor, or feedback on why it is not a tensor."""
    if not isinstance(out, torch.Tensor):
        hint = (" (.item(), float() and .tolist() give numbers, not tensors, and cut the gradient)"
                if isinstance(out, (int, float, list)) else "")
        raise ExerciseFeedback(f"{name} must return a torch.Tensor, it returned {type(out).__name__}{hint}.")
    return out.detach().to(torch.float64)


def _call(fn: Callable, name: str, *args) -> torch.Tensor:
    """``fn`` on copies of ``args``; its answer as a detached float64 tensor, or feedback on why not."""
    return _tensor(_invoke(fn, name, *args), name)


def _pair(out: Any, name: str, parts: tuple[str, str]) -> tuple[Any, Any]:
    """The two parts of an answer that is a pair: any two-element tuple or list is one (not a stacked tensor)."""
    what = f"a pair ({parts[0]}, {parts[1]})"
    if isinstance(out, torch.Tensor):
        raise ExerciseFeedback(f"{name} must return {what}, e.g. `return {parts[0]}, {parts[1]}`; it returned one "
                               f"tensor of shape {list(out.shape)}.")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        size = f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""
        raise ExerciseFeedback(f"{name} must return {what}, e.g. `return {parts[0]}, {parts[1]}`; it returned a "
                               f"{type(out).__name__}{size}.")
    for part, label in zip(out, parts):
        if not isinstance(part, torch.Tensor):
            raise ExerciseFeedback(f"{name}: {label} must be a torch.Tensor, got {type(part).__name__}.")
    return out[0], out[1]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def _sizes_hint(right_for: Iterable[str], now: str) -> str:
    """A sentence for an answer that was right for some sizes and is wrong for ``now``; empty if none."""
    others = sorted(set(right_for) - {now})
    if not others:
        return ""
    return (f" Your function was right for {', '.join(others)}, but not for {now}: does it assume a fixed size "
            "(indexing single components or dimensions, a hard-coded shape)?")
