"""Argument checks shared by the public API.

Every check raises ``ValueError`` that names the argument and says what was expected, so a student who
passes the wrong thing learns what to fix instead of meeting a shape error deep inside torch.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["as_tensor", "check_finite", "check_positive", "check_positive_int", "check_probability_vector",
           "check_shape"]


def as_tensor(value, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert ``value`` to a floating tensor (keeping a tensor's dtype and device), or explain why not."""
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(value, dtype=dtype or torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{name} must be a tensor or array of numbers, got {type(value).__name__}") from exc
    if not tensor.is_floating_point():
        tensor = tensor.to(dtype or torch.get_default_dtype())
    elif dtype is not None:
        tensor = tensor.to(dtype)
    return tensor


def check_finite(tensor: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite (no NaN or inf), got {_preview(tensor)}")
    return tensor


def check_positive(tensor: torch.Tensor, name: str) -> torch.Tensor:
    check_finite(tensor, name)
    if not (tensor > 0).all():
        raise ValueError(f"{name} must be strictly positive, got {_preview(tensor)}")
    return tensor


def check_positive_int(value, name: str) -> int:
    """An integer >= 1 (not a bool, not a float that happens to be whole)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_probability_vector(tensor: torch.Tensor, name: str, atol: float = 1e-5) -> torch.Tensor:
    """A 1-D vector of non-negative numbers that sums to one."""
    check_finite(tensor, name)
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(tensor.shape)}")
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


def _preview(tensor: torch.Tensor, limit: int = 6) -> str:
    flat = tensor.detach().flatten()
    shown = ", ".join(f"{float(v):.4g}" for v in flat[:limit])
    more = ", ..." if flat.numel() > limit else ""
    return f"[{shown}{more}]"
