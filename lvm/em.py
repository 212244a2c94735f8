"""Expectation maximisation for the mixture of Gaussians: chapter 1's preview of "maximise a bound".

Each iteration first makes the bound touch log p(x) (E-step: q(z) = p(z | x), the responsibilities), then
maximises the bound over the parameters in closed form (M-step). The log-likelihood can therefore never go
down, which chapter 4 proves for any model.
"""

from __future__ import annotations

import dataclasses

import torch

from ._checks import as_tensor, check_finite, check_int
from .models.mixture import GaussianMixture

__all__ = ["EMResult", "em_step", "fit_em"]


@dataclasses.dataclass
class EMResult:
    """What :func:`fit_em` returns: the fitted mixture and the log-likelihood along the way.

    Attributes:
        model: the mixture after the last EM step.
        log_likelihood: the mean log p(x) per data point, before each step and after the last
            (``n_iter + 1`` numbers).
    """

    model: GaussianMixture
    log_likelihood: list[float]  # mean log p(x) per data point, before each step and after the last


def em_step(model: GaussianMixture, x: torch.Tensor, min_std: float = 1e-3) -> GaussianMixture:
    """One EM iteration; returns a new mixture (eq. ``em-updates``).

    ``min_std`` keeps a component that collapses onto a single point from reaching σ = 0, where the
    likelihood of a mixture is unbounded.
    """
    x = model.check_x(x)
    q = model.responsibilities(x)  # E-step: q_in = p(z = n | x_i), [I, N]
    i_n = q.sum(0)  # I_n = Σ_i q_in, the effective number of points each component explains
    weights = i_n / i_n.sum()
    if model.x_dim is None:
        means = (q * x[:, None]).sum(0) / i_n
        var = (q * (x[:, None] - means) ** 2).sum(0) / i_n
    else:
        means = (q.T @ x) / i_n[:, None]
        var = (q[:, :, None] * (x[:, None, :] - means) ** 2).sum(0) / i_n[:, None]
    stds = var.clamp_min(min_std**2).sqrt()
    return GaussianMixture(weights, means, stds)


def fit_em(x: object, n_components: int, n_iter: int = 50, init: GaussianMixture | None = None,
           generator: torch.Generator | None = None) -> EMResult:
    """Fit a mixture to ``x`` (``[I]`` or ``[I, D]``) by ``n_iter`` EM steps.

    Without ``init``, the means start at randomly chosen data points, the weights are equal and every
    standard deviation is the data's.

    Args:
        x: the data, ``[I]`` or ``[I, D]``.
        n_components: the number of components N, an integer between 1 and I.
        n_iter: the number of EM steps, a non-negative integer.
        init: the mixture to start from; ``None`` for the start described above.
        generator (~torch.Generator | None): draws the starting means when ``init`` is ``None``; ``None``
            uses torch's global random state.

    Returns:
        the fitted mixture and the log-likelihood before each step and after the last.
    """
    x = check_finite(as_tensor(x, "x"), "x")
    if x.dim() not in (1, 2) or x.shape[0] < 1:
        raise ValueError(f"x must have shape [n] or [n, d] with n >= 1, got {list(x.shape)}")
    # the upper bound is the number of points: each component starts at one of them
    n_components = check_int(n_components, "n_components", minimum=1, maximum=x.shape[0])
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    if init is None:
        pick = torch.randperm(x.shape[0], generator=generator)[:n_components]
        spread = x.std(0).clamp_min(1e-3) if x.shape[0] > 1 else torch.ones_like(x[0])
        stds = spread.expand_as(x[pick]).clone()
        init = GaussianMixture(torch.full((n_components,), 1.0 / n_components), x[pick], stds)
    model = init
    history = [float(model.log_marginal(x).mean())]
    for _ in range(n_iter):
        model = em_step(model, x)
        history.append(float(model.log_marginal(x).mean()))
    return EMResult(model, history)
