"""Argument checks shared by the public API.

Every check raises ``ValueError`` that names the argument and says what was expected (``check_real``: a
``TypeError`` for something that is not a number at all), so a student who passes the wrong thing learns what
to fix instead of meeting a shape error deep inside torch.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["as_scalar", "as_tensor", "check_data", "check_finite", "check_int", "check_nonempty", "check_overflow",
           "check_positive", "check_positive_int", "check_probability_vector", "check_real", "check_same_device",
           "check_shape",
           "distribution_device", "is_integer", "readable", "validation", "values_checked"]

# True inside values_checked(): the caller has checked its whole data set once, so the per-call value checks
# (which read a result back from the device, a "sync") are skipped. fit trains inside it.
_VALUES_CHECKED = False


@contextlib.contextmanager
def values_checked() -> Iterator[None]:
    """Skip the value checks of data (finite, in range) inside the block: the caller checked its data once.

    ``fit`` checks the whole training set before its loop and runs the loop inside this block, so that no
    training step waits for the device to answer "is this batch finite?".
    """
    global _VALUES_CHECKED
    before, _VALUES_CHECKED = _VALUES_CHECKED, True
    try:
        yield
    finally:
        _VALUES_CHECKED = before


def readable(tensor: torch.Tensor) -> bool:
    """Whether the values of ``tensor`` should be checked here: not inside :func:`values_checked`, not on the
    ``meta`` device (which has shapes but no values)."""
    return not _VALUES_CHECKED and tensor.device.type != "meta"


def validation(tensor: torch.Tensor) -> bool | None:
    """``validate_args`` for a distribution built from ``tensor``: torch's default where the values can be read,
    off where they cannot (``meta``) or need not be (inside :func:`values_checked`; validation reads them back
    from the device, a sync)."""
    return None if readable(tensor) else False


def distribution_device(d: torch.distributions.Distribution) -> torch.device | None:
    """The device of the tensors that define the distribution ``d`` (found in it or in a distribution inside it,
    such as an ``Independent``'s base); ``None`` if it holds none."""
    for value in vars(d).values():
        if isinstance(value, torch.Tensor):
            return value.device
        if isinstance(value, torch.distributions.Distribution):
            inner = distribution_device(value)
            if inner is not None:
                return inner
    return None


def check_same_device(d: torch.distributions.Distribution, device: torch.device, name: str, where: str) -> None:
    """The distribution ``d`` must live on ``device`` (``where`` says whose device that is)."""
    if _VALUES_CHECKED:  # fit placed the model and the data on one device; walking q inside it costs per step
        return
    found = distribution_device(d)
    if found is not None and found != device:
        raise ValueError(f"{name} is on {found} but {where} is on {device}: build {name} there (for example from "
                         f"the model's own encode or posterior), or move its parameters with .to({str(device)!r})")


def as_tensor(value: object, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert ``value`` to a real floating tensor, or explain why not.

    A floating tensor keeps its dtype and device unless ``dtype`` is given; arrays, lists and integer tensors
    become ``dtype`` (default: torch's default dtype).
    """
    tensor = _real(value, name)
    return tensor.to(_target_dtype(value, tensor, dtype))


def _real(value: object, name: str) -> torch.Tensor:
    """``value`` as a tensor in its own precision (numbers of any kind), refusing complex ones."""
    if isinstance(value, torch.Tensor):
        return _refuse_complex(value, name)
    try:
        tensor = torch.as_tensor(value)
        if tensor.dtype == torch.float32 and not isinstance(value, np.ndarray):
            # Python floats are doubles, but torch made them float32 above: convert again, losing nothing.
            tensor = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}") from exc
    return _refuse_complex(tensor, name)


def _refuse_complex(tensor: torch.Tensor, name: str) -> torch.Tensor:
    if tensor.is_complex():
        # .to(float) would silently drop the imaginary part.
        raise ValueError(f"{name} must be real, got complex numbers ({tensor.dtype}); pass the real part "
                         f"({name}.real) or the modulus ({name}.abs()) if that is what you mean")
    return tensor


def _target_dtype(value: object, tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        return dtype
    if isinstance(value, torch.Tensor) and tensor.is_floating_point():
        return tensor.dtype
    return torch.get_default_dtype()


def check_finite(tensor: torch.Tensor, name: str) -> torch.Tensor:
    if readable(tensor) and not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite (no NaN or inf), got {_preview(tensor)}")
    return tensor


def check_data(x: object, name: str, *, dtype: torch.dtype | None = None, device: torch.device | None = None,
               unit_interval: bool = False) -> torch.Tensor:
    """Data as a real tensor of ``dtype`` on ``device``, after checking its values where they are.

    Refuses complex values, NaN and inf, values that overflow ``dtype`` (1e300 is finite in float64 but inf in
    float32), and with ``unit_interval`` values outside [0, 1] (a Bernoulli likelihood's data). The values are
    checked before the move to ``device``, so a CPU tensor bound for a GPU (or for ``meta``) is read on the
    CPU. Inside :func:`values_checked` only the type is checked.
    """
    raw = _real(x, name)  # in its own precision, so that values lost in the conversion are seen
    converted = raw.to(_target_dtype(x, raw, dtype))
    if not raw.is_floating_point():
        raw = converted
    if readable(raw):
        check_finite(raw, name)
        if not torch.isfinite(converted).all():
            raise ValueError(f"{name} overflows {converted.dtype}: its largest magnitude is "
                             f"{float(raw.abs().max()):.3g}, beyond {torch.finfo(converted.dtype).max:.3g}. "
                             "Rescale it, or use a float64 model (model.double()).")
        if unit_interval and raw.numel() > 0 and not bool(((raw >= 0) & (raw <= 1)).all()):
            raise ValueError(f"{name} must lie in [0, 1] for a Bernoulli likelihood (binary pixels or pixel "
                             f"intensities), got values from {float(raw.min()):.4g} to {float(raw.max()):.4g}. "
                             "Scale 8-bit images by 1/255 (lvm.data.mnist already returns [0, 1]).")
    return converted if device is None else converted.to(device)


def check_positive(tensor: torch.Tensor, name: str) -> torch.Tensor:
    check_finite(tensor, name)
    if readable(tensor) and not (tensor > 0).all():
        raise ValueError(f"{name} must be strictly positive, got {_preview(tensor)}")
    return tensor


def as_scalar(value: object) -> Any:
    """A 0-d (or one-element) tensor or a NumPy scalar as the Python number it holds; anything else unchanged.

    So that ``lr=torch.tensor(1e-3)`` or ``threshold=np.float32(0.01)`` pass a check for a real number, as a
    float would (they were refused as "must be a number"). A bool tensor stays a tensor: it is not a number.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool \
            and not value.is_complex():
        return value.item()
    if isinstance(value, np.generic) and not isinstance(value, (np.bool_, np.complexfloating)):
        return value.item()
    return value


def check_real(value: Any, name: str) -> float:
    """``value`` as one finite ``float``, or an error naming ``name``.

    Python numbers, NumPy scalars and one-element tensors count; a bool does not (``True`` passed as a mean is
    a slip, not a 1.0), nor text, nor a tensor of several values.
    """
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise TypeError(f"{name} must be one real number, got {value!r}")
    if isinstance(value, (str, bytes)):  # float("0.5") would succeed: a number typed as text is a slip
        raise TypeError(f"{name} must be one real number, got str {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):  # torch raises RuntimeError for a tensor of several values
        raise TypeError(f"{name} must be one real number, got {type(value).__name__} {value!r:.60}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}")
    return number


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` within [minimum, maximum], or a ``ValueError`` naming ``name``.

    Anything Python treats as an integer counts: ``int``, ``numpy.int64``, a 0-d integer tensor. A bool does
    not, nor a float that happens to be whole (``3.0``): a count written as a float is usually a bug.
    """
    is_bool = isinstance(value, (bool, np.bool_)) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool)
    try:
        if is_bool:
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {_describe(minimum, maximum)}, got {value!r} "
                         f"(a {type(value).__name__})") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {_describe(minimum, maximum)}, got {number}")
    return number


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer in the sense of :func:`check_int` (e.g. an int seed)."""
    try:
        check_int(value, "value")
    except ValueError:
        return False
    return True


def check_positive_int(value: object, name: str) -> int:
    """An integer >= 1 (see :func:`check_int`)."""
    return check_int(value, name, minimum=1)


def _describe(minimum: int | None, maximum: int | None) -> str:
    if maximum is None:
        return {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer between {minimum} and {maximum}"


def check_probability_vector(tensor: torch.Tensor, name: str, atol: float = 1e-5) -> torch.Tensor:
    """A 1-D vector of non-negative numbers that sums to one."""
    check_finite(tensor, name)
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(tensor.shape)}")
    if not readable(tensor):
        return tensor
    if (tensor < 0).any():
        raise ValueError(f"{name} must be non-negative, got {_preview(tensor)}")
    total = float(tensor.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1, got a sum of {total:.6g}")
    return tensor


def check_shape(tensor: torch.Tensor, name: str, shape: Sequence[int | None], what: str = "") -> torch.Tensor:
    """Check ``tensor.shape`` against ``shape``, where ``None`` matches any size."""
    ok = tensor.dim() == len(shape) and all(s is None or s == t for s, t in zip(shape, tensor.shape))
    if not ok:
        expected = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        hint = f" ({what})" if what else ""
        raise ValueError(f"{name} must have shape {expected}{hint}, got {list(tensor.shape)}")
    return tensor


def check_overflow(values: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    """``values`` computed from finite data ``x`` must be finite: a Gaussian's log-density is never ±inf, so
    a non-finite one means that a squared distance overflowed ``x``'s dtype."""
    if readable(values) and not torch.isfinite(values).all():
        raise ValueError(f"x is too far out for {x.dtype}: {what} overflowed (|x| up to "
                         f"{float(x.abs().max()):.3g}). Standardise x (subtract its mean, divide by its standard "
                         "deviation), or use a float64 model (model.double()).")
    return values


def check_nonempty(x: torch.Tensor, name: str) -> torch.Tensor:
    """At least one data point (a first dimension of size >= 1)."""
    if x.dim() == 0 or x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one data point, got shape {list(x.shape)}")
    return x


def _preview(tensor: torch.Tensor, limit: int = 6) -> str:
    flat = tensor.detach().flatten()
    shown = ", ".join(f"{float(v):.4g}" for v in flat[:limit])
    more = ", ..." if flat.numel() > limit else ""
    return f"[{shown}{more}]"
