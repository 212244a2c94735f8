"""Is the latent space used? Two numbers per trained VAE (chapter 8, posterior collapse).

- :func:`kl_per_dimension` — how many nats each latent dimension carries about x, on average: a dimension
  with KL ≈ 0 has q(z_j | x) = p(z_j) for every x, so the decoder cannot learn anything from it.
- :func:`active_units` — Burda et al. (2016)'s count of the dimensions whose posterior mean moves with x.

Both take x, or ``(x, y)`` for a :class:`lvm.ConditionalVAE`, and run the encoder in eval mode, without
gradients, on the whole of x at once.
"""

from __future__ import annotations

import contextlib
from numbers import Real
from typing import Iterator

import torch

from .bounds import _check_x, _kl_per_dimension
from .objectives import Batch, unpack

__all__ = ["active_units", "kl_per_dimension"]


@torch.no_grad()
def kl_per_dimension(model, x: Batch, n_samples: int = 100) -> torch.Tensor:
    """The mean over the data of KL(q(z_j | x) ‖ p(z_j)) for each latent dimension j, shape ``[z_dim]``
    (eq. ``kl-per-dim``):

        KL_j = (1/n) Σ_i KL(q(z_j | x_i) ‖ p(z_j))

    in nats; Σ_j KL_j is the mean KL term of the ELBO. Closed form for diagonal Gaussians (eq. ``gauss-kl``,
    per dimension), otherwise a Monte Carlo average over ``n_samples`` draws per example.

    Args:
        model: a VAE (anything with ``encode(x)`` and ``prior()`` that factorise over z's dimensions).
        x: data ``[n, x_dim]``, or ``(x, y)`` with labels y ``[n]`` for a conditional VAE.
    """
    model_x, x = unpack(model, x)
    x = _check_x(model_x, x)
    with _evaluating(model):
        return _kl_per_dimension(model_x.encode(x), model_x.prior(), n_samples).mean(0)


@torch.no_grad()
def active_units(model, x: Batch, threshold: float = 0.01) -> int:
    """The number of active latent dimensions (Burda et al. 2016, eq. ``active-units``): u is active when

        A_u = Cov_x(E_{q(z | x)}[z_u]) > threshold

    i.e. when the variance over the data of the posterior mean of z_u exceeds ``threshold`` (Burda et al.
    use 0.01). The variance is the data set's own (divided by n), so x needs at least two examples.

    Args:
        model: a VAE (anything whose ``encode(x)`` has a ``mean``).
        x: data ``[n, x_dim]`` with n >= 2, or ``(x, y)`` for a conditional VAE.
        threshold: a number >= 0.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    model_x, x = unpack(model, x)
    x = _check_x(model_x, x)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least two examples to measure a variance over them, got {x.shape[0]}")
    with _evaluating(model):
        means = model_x.encode(x).mean  # [n, z_dim]
    return int((means.var(dim=0, correction=0) > threshold).sum())


@contextlib.contextmanager
def _evaluating(model) -> Iterator[None]:
    """Eval mode inside the block (no dropout, batch norm from its running statistics), then as it was."""
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        yield
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
