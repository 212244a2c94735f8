"""Two ways to estimate ∇ E_{q(z)}[f(z)] for a Gaussian q(z) = N(μ, σ²) (chapter 5).

Both estimators are unbiased; they differ (often enormously) in variance. The functions here return one
gradient estimate *per sample*, so that a notebook can compute their mean (to check unbiasedness against a
closed form) and their variance (to compare them). q is diagonal and may be batched: μ and σ have any shape,
and z = μ + σ ε has shape ``[n_samples, *μ.shape]``.

``f`` maps such a z to one value per sample: shape ``[n_samples]``, or ``[n_samples, *batch]`` where
``batch`` is a leading part of μ's shape and value ``[s, i]`` depends on z only through ``z[s, i]``
(independent problems solved side by side). It must treat samples independently (no mixing across the
first axis), because the per-sample reparameterised gradients come from one backward pass through
``f(z).sum()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from ._checks import as_tensor, check_finite, check_int, check_positive, check_positive_int, check_shape, is_integer

__all__ = ["reparameterised_gradients", "score_function_gradients"]

Baseline = float | torch.Tensor | Literal["leave-one-out"] | None
TensorLike = torch.Tensor | float  # a tensor, or a number that becomes one


def score_function_gradients(f: Callable[[torch.Tensor], torch.Tensor], mu: TensorLike, std: TensorLike,
                             n_samples: int,
                             generator: torch.Generator | int | None = None,
                             baseline: Baseline = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample score-function (REINFORCE) estimates (f(z) − c) ∇ log q(z) (eq. ``score-function``).

    Uses E_q[∇ log q(z)] = 0, so subtracting any c that does not depend on z keeps the estimate unbiased
    while it can cut the variance (a control variate). For a Gaussian the score is analytic:
    ∂ log q / ∂μ = ε / σ and ∂ log q / ∂σ = (ε² − 1) / σ, with ε = (z − μ) / σ. Only values of f are needed
    (f need not be differentiable).

    Args:
        f: the integrand (see the module docstring for the shapes it takes and returns).
        mu: q's mean μ, any shape.
        std: q's standard deviation σ > 0, the shape of ``mu``.
        n_samples: the number of draws z ~ q, a positive integer.
        generator (~torch.Generator | int | None): a generator or an integer seed for reproducible draws;
            ``None`` uses torch's global random state.
        baseline: c: ``None`` (c = 0), a number or tensor broadcastable against f's values, or
            ``"leave-one-out"``: for sample s, the mean of f over the other samples (independent of z_s, so
            still unbiased; needs ``n_samples >= 2``).

    Returns:
        ``(grad_mu, grad_std)``, each of shape ``[n_samples, *mu.shape]``; their means over the first axis
        estimate ∇_μ E_q[f] and ∇_σ E_q[f].
    """
    mu, std, eps = _draw(mu, std, n_samples, generator)
    with torch.no_grad():
        values = _evaluate(f, mu + std * eps, n_samples, mu.shape)
    values = values - _baseline(baseline, values, n_samples)
    values = values.reshape(values.shape + (1,) * (eps.dim() - values.dim()))  # broadcast over μ's trailing dims
    return values * eps / std, values * (eps**2 - 1) / std


def reparameterised_gradients(f: Callable[[torch.Tensor], torch.Tensor], mu: TensorLike, std: TensorLike,
                              n_samples: int,
                              generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample reparameterised (pathwise) estimates, via z = μ + σ ε with ε ~ N(0, I) (eq. ``reparam``).

    ∇_μ f(μ + σ ε) = f'(z) and ∇_σ f(μ + σ ε) = f'(z) ε: the gradient passes *through* the sample, so f must
    be differentiable. f'(z) for all samples at once comes from one backward pass through Σ_s f(z_s), which
    is exact per sample because sample s only enters term s.

    Unlike :func:`score_function_gradients` there is no baseline: a constant shift of f does not change f'.

    Args:
        f: the integrand, differentiable in z (see the module docstring for the shapes it takes and returns).
        mu: q's mean μ, any shape.
        std: q's standard deviation σ > 0, the shape of ``mu``.
        n_samples: the number of draws z ~ q, a positive integer.
        generator (~torch.Generator | int | None): a generator or an integer seed for reproducible draws;
            ``None`` uses torch's global random state.

    Returns:
        ``(grad_mu, grad_std)``, each of shape ``[n_samples, *mu.shape]``; their means over the first axis
        estimate ∇_μ E_q[f] and ∇_σ E_q[f].
    """
    mu, std, eps = _draw(mu, std, n_samples, generator)
    with torch.enable_grad():
        z = (mu + std * eps).requires_grad_(True)
        values = _evaluate(f, z, n_samples, mu.shape)
        if not values.requires_grad:
            raise ValueError("f must be differentiable in z (built from torch operations) for the "
                             "reparameterised estimator")
        (dfdz,) = torch.autograd.grad(values.sum(), z)
    return dfdz, dfdz * eps


def _draw(mu: TensorLike, std: TensorLike, n_samples: int, generator: torch.Generator | int | None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mu = check_finite(as_tensor(mu, "mu"), "mu").detach()
    std = check_positive(as_tensor(std, "std", dtype=mu.dtype).to(mu.device), "std").detach()
    check_shape(std, "std", list(mu.shape), "the shape of mu")
    check_positive_int(n_samples, "n_samples")
    if is_integer(generator):
        generator = torch.Generator(device=mu.device).manual_seed(check_int(generator, "generator"))
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    return mu, std, eps


def _evaluate(f: object, z: torch.Tensor, n_samples: int, shape: torch.Size) -> torch.Tensor:
    if not callable(f):
        raise ValueError(f"f must be a callable f(z) -> values, got {type(f).__name__}")
    values = f(z)
    if not isinstance(values, torch.Tensor):
        raise ValueError(f"f must return a tensor, got {type(values).__name__}")
    batch = tuple(values.shape[1:])
    if values.dim() < 1 or values.shape[0] != n_samples or batch != tuple(shape[: len(batch)]):
        raise ValueError(f"f must return one value per sample: shape [{n_samples}] or [{n_samples}, *batch] with "
                         f"batch a leading part of mu's shape {list(shape)}, got {list(values.shape)}")
    return values


def _baseline(baseline: Baseline, values: torch.Tensor, n_samples: int) -> torch.Tensor | float:
    if baseline is None:
        return 0.0
    if isinstance(baseline, str):
        if baseline != "leave-one-out":
            raise ValueError(f"baseline must be None, a number, a tensor or 'leave-one-out', got {baseline!r}")
        if n_samples < 2:
            raise ValueError("baseline 'leave-one-out' needs n_samples >= 2")
        # Mean of the *other* samples: independent of z_s, so E[(f(z_s) − c_s) ∇ log q(z_s)] is unchanged.
        return (values.sum(0, keepdim=True) - values) / (n_samples - 1)
    c = check_finite(as_tensor(baseline, "baseline", dtype=values.dtype).to(values.device), "baseline")
    try:
        # torch.broadcast_shapes carries no annotations in torch itself
        ok = torch.broadcast_shapes(c.shape, values.shape) == values.shape  # type: ignore[no-untyped-call]
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"baseline must broadcast against f's values of shape {list(values.shape)}, "
                         f"got {list(c.shape)}")
    return c
