"""Where computations run: CUDA first, then Apple's MPS, then the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

__all__ = ["autocast", "default_device", "describe_device", "resolve_device",
           "sum_dtype", "training_device"]


def default_device() -> torch.device:
    """The fastest device this machine has."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means :func:`default_device`; anything else must name a device torch
    knows."""
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError("device must be None, 'cpu', 'cuda', 'mps' or a torch.device, "
                         f"got {device!r}") from exc


def describe_device(device: str | torch.device | None = None) -> str:
    """One line for the top of a chapter: which device, and its name for a GPU."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


def training_device(device: str | torch.device | None) -> torch.device:
    """:func:`resolve_device`, then checked for training: a device this machine has, of
    a kind that ``fit`` knows (CPU, CUDA, MPS). Found before any work, with what to use
    instead, rather than as torch's error at the first tensor moved there."""
    device = resolve_device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available on this "
                         "machine; use device=None or 'cpu'")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device='mps' but Apple's MPS is not available on this "
                             "machine; use device=None or 'cpu'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError("device must be None, 'cpu', 'cuda' or 'mps', got "
                         f"{str(device)!r}")
    return device


def autocast(device: torch.device, enabled: bool) -> Callable[[], AbstractContextManager[object]]:
    """A factory of the context that a training step runs in: bf16 autocast where it is
    asked for and the device is CUDA (densities stay in float32), else nothing."""
    if enabled and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of a sum over a whole epoch (~10⁷ nats): float64, except on Apple's
    MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64
