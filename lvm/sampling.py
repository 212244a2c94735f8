"""Ancestral sampling: draw z from the prior, then x from the likelihood given that z."""

from __future__ import annotations

import torch

from ._checks import check_int, check_positive_int, is_integer
from .models.base import LatentVariableModel

__all__ = ["ancestral_sample"]


def ancestral_sample(model: LatentVariableModel, n: int,
                     generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` pairs (x, z): z ~ p(z), then x ~ p(x | z) (eq. ``ancestral``).

    Works for any model that honours the contract, because it only calls ``prior()`` and ``likelihood(z)``.

    Args:
        model: a latent variable model.
        n: how many samples, a positive integer.
        generator (~torch.Generator | int | None): a generator or an integer seed for reproducible draws;
            ``None`` uses torch's global random state.

    Returns:
        ``(x, z)`` with leading dimension ``n``: x is ``[n, *event_shape_x]``, z is ``[n, *event_shape_z]``.
    """
    if not (callable(getattr(model, "prior", None)) and callable(getattr(model, "likelihood", None))):
        raise TypeError("model must be a latent variable model, with prior() and likelihood(z) (any lvm model), "
                        f"got {type(model).__name__}")
    n = check_positive_int(n, "n")
    if generator is None:
        return _draw(model, n)
    if is_integer(generator):
        seed = check_int(generator, "generator")
    elif isinstance(generator, torch.Generator):
        # torch.distributions draw from the global state, so fork it and seed it from the caller's generator.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    else:
        raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    devices = _cuda_devices(model)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return _draw(model, n)


@torch.no_grad()
def _draw(model: LatentVariableModel, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    z = model.prior().sample((n,))
    x = model.likelihood(z).sample()
    return x, z


def _cuda_devices(model: LatentVariableModel) -> list[int]:
    tensors = list(model.parameters()) + list(model.buffers())
    return sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
