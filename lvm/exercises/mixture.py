"""Chapter 1: the log-density and the responsibilities of a mixture of Gaussians."""

from __future__ import annotations

from typing import Callable

import torch

from ..models.mixture import GaussianMixture
from ._feedback import ExerciseFeedback, _call, _close, _start

__all__ = ["check_mixture_log_density", "check_responsibilities"]


def _random_mixture(gen: torch.Generator) -> GaussianMixture:
    k = int(torch.randint(2, 6, (1,), generator=gen))
    weights = torch.rand(k, generator=gen, dtype=torch.float64) + 0.1
    means = 6 * torch.rand(k, generator=gen, dtype=torch.float64) - 3
    stds = 0.3 + torch.rand(k, generator=gen, dtype=torch.float64)
    return GaussianMixture(weights / weights.sum(), means, stds)

def check_mixture_log_density(fn: Callable, n_trials: int = 20, seed: int = 0) -> None:
    """Check ``fn(x, weights, means, stds) -> log p(x)`` of a 1-D mixture (eq. ``gmm-marginal``).

    ``x`` is ``[n]``; ``weights``, ``means``, ``stds`` are ``[K]``; the answer must be ``[n]``.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for _ in range(n_trials):
        model = _random_mixture(gen)
        x = 8 * torch.rand(7, generator=gen, dtype=torch.float64) - 4
        args = (x, model.weights, model.means, model.stds)
        got = _call(fn, "mixture_log_density", *args)
        want = model.log_marginal(x)
        if got.shape != want.shape:
            raise ExerciseFeedback(f"Expected one log-density per point, shape {list(want.shape)}; "
                                   f"got shape {list(got.shape)}. Did you sum over points, or forget to sum "
                                   "over components?")
        if _close(got, want):
            continue
        if _close(got, want.exp()):
            raise ExerciseFeedback("Your values are p(x), not log p(x): return the logarithm.")
        unweighted = torch.logsumexp(model.components().log_prob(x[:, None]), dim=-1)
        if _close(got, unweighted):
            raise ExerciseFeedback("Each component must be weighted by its λ_k: you summed the components "
                                   "with equal weight one.")
        raise ExerciseFeedback(f"Wrong values. For x = {x[:3].tolist()} the expected log p(x) starts "
                               f"{want[:3].tolist()}, you returned {got[:3].tolist()}.")
    _check_far_tail(fn)
    print(f"✓ mixture_log_density: right on {n_trials} random mixtures and far out in the tails.")


def _check_far_tail(fn: Callable) -> None:
    # A point 40 standard deviations out: exp(log N) underflows to 0 in floating point, log-sum-exp does not.
    model = GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0])
    x = torch.tensor([40.0, -45.0], dtype=torch.float32)
    got = _call(fn, "mixture_log_density", x, model.weights, model.means, model.stds)
    want = model.log_marginal(x).to(torch.float64)
    if not torch.isfinite(got).all() or not torch.allclose(got, want, rtol=1e-4):
        raise ExerciseFeedback(
            f"Far from every component (x = 40, -45) you returned {got.tolist()} instead of {want.tolist()}: "
            "the densities underflow to zero before the log. Work in log space: "
            "torch.logsumexp(log λ_k + log N(x | μ_k, σ_k²), dim=-1).")


def check_responsibilities(fn: Callable, n_trials: int = 20, seed: int = 1) -> None:
    """Check ``fn(x, weights, means, stds) -> [n, K]`` posterior probabilities p(z = k | x) (eq. ``responsibilities``)."""
    n_trials, gen = _start(fn, seed, n_trials)
    for _ in range(n_trials):
        model = _random_mixture(gen)
        x = 8 * torch.rand(6, generator=gen, dtype=torch.float64) - 4
        got = _call(fn, "responsibilities", x, model.weights, model.means, model.stds)
        want = model.responsibilities(x)
        if got.shape == want.T.shape and got.shape != want.shape:
            raise ExerciseFeedback(f"Expected shape [n, K] = {list(want.shape)}, got {list(got.shape)}: "
                                   "one row per point, one column per component (transpose your answer).")
        if got.shape != want.shape:
            raise ExerciseFeedback(f"Expected shape [n, K] = {list(want.shape)}, got {list(got.shape)}.")
        if _close(got, want):
            continue
        if not torch.allclose(got.sum(-1), torch.ones(got.shape[0], dtype=got.dtype), atol=1e-5):
            raise ExerciseFeedback("Each row must sum to one (it is a distribution over z for one x): "
                                   "divide λ_k N(x | μ_k, σ_k²) by p(x), the sum over k.")
        unweighted = model.components().log_prob(x[:, None]).softmax(-1)
        if _close(got, unweighted):
            raise ExerciseFeedback("The prior λ_k is missing: Bayes' rule multiplies the likelihood "
                                   "N(x | μ_k, σ_k²) by p(z = k) = λ_k before normalising.")
        raise ExerciseFeedback(f"Wrong values. For x = {x[0]:.3f} expected {want[0].tolist()}, "
                               f"got {got[0].tolist()}.")
    model = GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0])
    x = torch.tensor([60.0])
    got = _call(fn, "responsibilities", x, model.weights, model.means, model.stds)
    if not torch.isfinite(got).all():
        raise ExerciseFeedback(f"At x = 60 you returned {got.tolist()}: both densities underflow to 0 and "
                               "0/0 is NaN. Normalise in log space (torch.softmax of the log joint).")
    print(f"✓ responsibilities: right on {n_trials} random mixtures and finite far away.")


# --- chapter 2: the posterior of probabilistic PCA ------------------------------------------------------------
