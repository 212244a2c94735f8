"""Walking through latent space (chapter 8): spherical interpolation between two codes.

Under the prior N(0, I) in d dimensions almost all the mass lies near the sphere of radius √d, and the midpoint
of a straight line between two typical codes lies well inside it (at about √(d/2) for orthogonal ones), where
the prior puts little mass. Spherical interpolation keeps to the great circle through the two codes instead.
"""

from __future__ import annotations

import torch

from ._checks import as_tensor, check_finite, readable

__all__ = ["slerp"]

# Codes whose angle has |sin Ω| below this are treated as parallel (or antiparallel): the great circle
# through them is then undefined or ill-conditioned, and the straight line is used.
_PARALLEL = 1e-6


def _norm(z: torch.Tensor) -> torch.Tensor:
    """‖z‖ over the last dimension, without overflow: scaled by the largest entry first (the square of 1e20
    is inf in float32)."""
    scale = z.abs().amax(-1, keepdim=True)
    # Tensor.norm has no annotations in torch: its result is a tensor.
    norm: torch.Tensor = (z / scale.clamp_min(torch.finfo(z.dtype).tiny)).norm(dim=-1, keepdim=True) * scale
    return norm


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation from ``z0`` (t = 0) to ``z1`` (t = 1) (eq. ``slerp``):

        slerp(z0, z1; t) = sin((1 − t) Ω) / sin Ω · z0 + sin(t Ω) / sin Ω · z1,    cos Ω = z0·z1 / (‖z0‖ ‖z1‖)

    For codes of equal norm the path keeps that norm. Where z0 and z1 are (nearly) parallel or antiparallel,
    or one of them is zero, sin Ω ≈ 0 and the formula breaks down: the result is the linear interpolation
    (1 − t) z0 + t z1 there.

    Args:
        z0, z1: codes ``[..., d]`` (broadcastable against each other).
        t: a number in [0, 1], or a tensor of them; a tensor gets a trailing dimension and is broadcast against
            the codes' leading dimensions, so t ``[T]`` with z0, z1 ``[d]`` gives the path ``[T, d]``.

    Returns:
        ``[..., d]``: the broadcast shape of ``t[..., None]``, ``z0`` and ``z1``.
    """
    z0 = check_finite(as_tensor(z0, "z0"), "z0")
    z1 = check_finite(as_tensor(z1, "z1", dtype=z0.dtype).to(z0.device), "z1")
    if z0.dim() == 0 or z1.dim() == 0:
        raise ValueError(f"z0 and z1 must be codes of shape [..., d], got {list(z0.shape)} and {list(z1.shape)}")
    t = check_finite(as_tensor(t, "t", dtype=z0.dtype).to(z0.device), "t")
    if readable(t) and not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"t must lie in [0, 1], got values from {float(t.min()):.4g} to {float(t.max()):.4g}")
    t = t.unsqueeze(-1)
    try:
        torch.broadcast_shapes(t.shape, z0.shape, z1.shape)  # type: ignore[no-untyped-call]  # unannotated in torch
    except RuntimeError:
        raise ValueError(f"z0 {list(z0.shape)}, z1 {list(z1.shape)} and t {list(t.shape[:-1])} must broadcast "
                         "(t gets a trailing dimension for the codes' last)") from None
    # The angle from unit vectors: a product of two norms, or of two large codes, overflows (float32 codes of
    # norm 1e20 gave NaN).
    tiny = torch.finfo(z0.dtype).tiny
    n0, n1 = _norm(z0), _norm(z1)
    cos = ((z0 / n0.clamp_min(tiny)) * (z1 / n1.clamp_min(tiny))).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    parallel = (sin.abs() < _PARALLEL) | (n0 == 0) | (n1 == 0)
    sin = torch.where(parallel, torch.ones_like(sin), sin)  # no 0/0 where the linear path is taken anyway
    spherical = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin
    linear = (1 - t) * z0 + t * z1
    return torch.where(parallel, linear, spherical)
