"""What :func:`lvm.fit` maximises (chapters 4, 7 and 8), one function per objective.

An objective is a function ``objective(model, batch, epoch) -> values`` that returns one value per example,
shape ``[B]``, to **maximise**; ``fit`` minimises minus their mean. ``batch`` is a batch of x ``[B, x_dim]``,
or a pair ``(x, y)`` when ``fit`` was given data ``(x, y)`` (a :class:`lvm.ConditionalVAE` and its labels);
``epoch`` counts from 1. :func:`lvm.objectives.unpack` turns either kind of batch into a model of x and x, so one objective
serves both. A new objective is a new function here (or in a chapter), never an edit of ``fit``.

- :func:`elbo` — the ELBO with a β-weighted KL, free bits and KL warm-up (eq. ``beta-elbo``).
- :func:`iwae` — the importance-weighted bound (eq. ``iwae``), trained through ``rsample``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Callable, Union

import torch

from . import bounds
from ._checks import as_scalar, check_int, check_positive_int
from .bounds import _check_x, _draw, _kl_per_dimension

__all__ = ["Batch", "Objective", "elbo", "iwae", "unpack"]

Batch = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
Objective = Callable[..., torch.Tensor]  # (model, batch, epoch) -> per-example values [B] to maximise


def unpack(model, batch: Batch):
    """``(the model of x, x)`` for a batch: ``(model, x)`` for a tensor x, ``(model.given(y), x)`` for ``(x, y)``.

    The model returned has ``prior()``, ``likelihood(z)`` and ``encode(x)``, so every bound applies to it.
    """
    if isinstance(batch, tuple):
        x, y = batch
        if not callable(getattr(model, "given", None)):
            raise ValueError(f"a batch (x, y) needs a model with given(y), such as lvm.ConditionalVAE; "
                             f"{type(model).__name__} has none. Pass the data as a tensor x instead.")
        return model.given(y), x
    return model, batch


def elbo(beta: float = 1.0, free_bits: float = 0.0, warmup_epochs: int = 0, n_samples: int = 1) -> Objective:
    """The ELBO with a weighted KL (eq. ``beta-elbo``): per example x_i,

        E_q[log p(x_i | z)] − β_t Σ_j (KL_ij + max(m_j, τ) − m_j),     β_t = β · min(1, t / T)

    where KL_ij = KL(q(z_j | x_i) ‖ p(z_j)) is the KL of latent dimension j (closed form for diagonal
    Gaussians, else Monte Carlo), m_j = (1/B) Σ_i KL_ij its mean over the batch, τ = ``free_bits``, t the
    epoch (from 1) and T = ``warmup_epochs`` (T = 0: β_t = β from the start).

    - **β** (Higgins et al. 2017): β > 1 presses q towards the prior (β-VAE), β < 1 lets it go.
    - **Free bits** τ, in nats per latent dimension (Kingma et al. 2016, IAF paper, appendix C.8): the batch's
      objective is E[log p(x | z)] − β_t Σ_j max(m_j, τ), so a dimension whose *batch-mean* KL is below τ is
      not pushed further towards the prior, and no encoder is rewarded for collapsing it. The clamp is on
      the batch mean, as in that paper, rather than per example (max(KL_ij, τ)): per example, every data
      point that uses a dimension lightly would lose its gradient there, even while the dimension carries
      information on average. Above, the shared term max(m_j, τ) − m_j spreads the clamp over the batch, so
      the values' mean is exactly that objective and each value is the example's own ELBO when nothing
      is clamped.
    - **KL warm-up** (Bowman et al. 2016; Sønderby et al. 2016): β_t rises linearly, β/T in the first epoch,
      up to β in epoch T; the decoder learns to use z before the KL pulls q towards the prior.

    With the defaults (β = 1, τ = 0, T = 0) this is the ELBO of :func:`lvm.elbo <lvm.bounds.elbo>`, to the bit. Requires q and
    the prior to factorise over z's dimensions (an ``Independent``, like a VAE's).

    Args:
        beta: β >= 0.
        free_bits: τ >= 0, nats per latent dimension.
        warmup_epochs: T >= 0.
        n_samples: draws of z per example for E_q[log p(x | z)].

    Returns:
        The objective, ``(model, batch, epoch) -> [B]``.
    """
    beta = _non_negative(beta, "beta")
    free_bits = _non_negative(free_bits, "free_bits")
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", minimum=0)
    n_samples = check_positive_int(n_samples, "n_samples")

    def beta_elbo(model, batch: Batch, epoch: int) -> torch.Tensor:
        model_x, x = unpack(model, batch)
        x = _check_x(model_x, x)
        q = model_x.encode(x)
        recon = model_x.likelihood(_draw(q, n_samples)).log_prob(x).mean(0)  # [B]
        kl = _kl_per_dimension(q, model_x.prior(), n_samples)  # [B, d_z]
        if free_bits > 0:  # skipped at τ = 0, so that the default is lvm.elbo exactly
            batch_mean = kl.mean(0)
            kl = kl + (batch_mean.clamp(min=free_bits) - batch_mean)
        return recon - _warm(beta, epoch, warmup_epochs) * kl.sum(-1)

    return beta_elbo


def iwae(k: int) -> Objective:
    """The importance-weighted bound as a training objective (eq. ``iwae``; Burda et al. 2016): per example,

        log (1/k) Σ_{s=1..k} p(x, z_s) / q(z_s | x),     z_s ~ q(z | x) by ``rsample``

    the number :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>` estimates, here with gradients through the reparameterised draws. k = 1
    is the ELBO (with a Monte Carlo KL); larger k gives a tighter bound and a model with a higher log p(x).
    Memory grows with k (all k draws are in the graph at once).

    Returns:
        The objective, ``(model, batch, epoch) -> [B]``.
    """
    k = check_positive_int(k, "k")

    def iwae_k(model, batch: Batch, epoch: int) -> torch.Tensor:
        model_x, x = unpack(model, batch)
        x = _check_x(model_x, x)
        q = model_x.encode(x)
        z = _draw(q, k)  # [k, B, d_z]
        log_w = model_x.joint_log_prob(x, z) - q.log_prob(z)  # [k, B]
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    return iwae_k


def _default(n_samples: int) -> Objective:
    """``fit``'s objective when it is given none: :func:`lvm.elbo <lvm.bounds.elbo>` with q = ``model.encode(x)``, for any q."""

    def plain_elbo(model, batch: Batch, epoch: int) -> torch.Tensor:
        model_x, x = unpack(model, batch)
        return bounds.elbo(model_x, x, model_x.encode(x), n_samples=n_samples)

    return plain_elbo


def _warm(beta: float, epoch: int, warmup_epochs: int) -> float:
    """β_t = β · min(1, t / T), with t counted from 1; β itself when T = 0."""
    if warmup_epochs == 0:
        return beta
    return beta * min(1.0, check_positive_int(epoch, "epoch") / warmup_epochs)


def _non_negative(value, name: str) -> float:
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
