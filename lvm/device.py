"""Where computations run: CUDA first, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["default_device", "describe_device", "resolve_device"]


def default_device() -> torch.device:
    """The fastest device this machine has."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means :func:`default_device`; anything else must name a device torch knows."""
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None, 'cpu', 'cuda', 'mps' or a torch.device, got {device!r}") from exc


def describe_device(device: str | torch.device | None = None) -> str:
    """One line for the top of a chapter: which device, and its name for a GPU."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
