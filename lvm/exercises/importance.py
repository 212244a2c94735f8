"""Chapter 3: an importance-sampling estimate of p(x)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from ..models.linear import LinearGaussian
from ._feedback import ExerciseFeedback, _call, _close, _start

__all__ = ["check_importance_estimate"]


def check_importance_estimate(fn: Callable, seed: int = 3) -> None:
    """Check ``fn(model, x, proposal, n_samples) -> log p̂(x)``, shape ``[n]`` (eq. ``is-estimator``).

    ``proposal`` is a distribution over z with batch shape ``[n]``; the estimate is
    log (1/S) Σ_s p(x, z_s) / r(z_s) with z_s ~ r, computed in log space. Three tests on linear-Gaussian models,
    whose log p(x) is exact: the exact posterior as proposal (every weight equals p(x), so the estimate must
    be exact), a broadened posterior (within six standard errors), and D = 784 (p(x) underflows).
    """
    _, gen = _start(fn, seed)
    for trial in range(5):
        d_x = int(torch.randint(2, 7, (1,), generator=gen))
        model, x = _random_linear_gaussian(gen, d_x, int(torch.randint(1, d_x, (1,), generator=gen)))
        with torch.no_grad():
            proposal, exact = model.posterior(x), model.log_marginal(x)
        got = _call_estimator(fn, model, x, proposal, 50, seed + trial)
        if _close(got, exact):
            continue
        if got.shape == exact.shape and _close(got, exact.exp()):
            raise ExerciseFeedback("Your values are p̂(x), not log p̂(x): return the logarithm "
                                   "(and never leave log space: see the last test).")
        if got.shape == exact.shape and _close(got - exact, torch.full_like(exact, math.log(50))):
            raise ExerciseFeedback("Your estimate is log p(x) + log S: you summed the weights. Average them: "
                                   "logsumexp(log w, dim=0) − log S.")
        raise ExerciseFeedback(
            "With the exact posterior as proposal every weight p(x, z_s) / r(z_s) equals p(x), so the estimate "
            f"must equal log p(x) = {exact[:2].tolist()} whatever z_s you draw; you returned "
            f"{got[:2].tolist()}. Check the log-weight: log p(x, z) = log p(z) + log p(x | z) "
            "(model.joint_log_prob(x, z)) minus log r(z) (proposal.log_prob(z)).")
    _check_broad_proposal(fn, gen, seed)
    _check_high_dimension(fn, gen, seed)
    print("✓ importance_estimate is exact with the posterior as proposal,\n"
          "  within six standard errors with a broad one, and finite at D = 784.")


def _random_linear_gaussian(gen: torch.Generator, d_x: int, d_z: int, n: int = 4, scale: float = 1.0,
                            sigma: float | None = None):
    f64 = torch.float64
    W = scale * torch.randn(d_x, d_z, generator=gen, dtype=f64)
    b = torch.randn(d_x, generator=gen, dtype=f64)
    if sigma is None:
        sigma = 0.4 + float(torch.rand(1, generator=gen))
    z = torch.randn(n, d_z, generator=gen, dtype=f64)
    x = z @ W.T + b + sigma * torch.randn(n, d_x, generator=gen, dtype=f64)
    return LinearGaussian(W, b, sigma).requires_grad_(False), x


def _call_estimator(fn: Callable, model, x, proposal, n_samples: int, seed: int) -> torch.Tensor:
    # The student's draws come from torch's global generator: fork it, so the check is deterministic and
    # leaves the notebook's random state alone.
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        got = _call(fn, "importance_estimate", model, x, proposal, n_samples)
    n = x.shape[0]
    if got.shape != (n,):
        hint = (" Average over the samples (dim 0) to get one estimate per point."
                if got.dim() == 2 and got.shape[1] == n else "")
        raise ExerciseFeedback(f"Expected one estimate per data point, shape [{n}]; got {list(got.shape)}.{hint}")
    return got


def _check_broad_proposal(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """A proposal twice as wide as the posterior: the estimate is random, so compare within standard errors."""
    model, x = _random_linear_gaussian(gen, d_x=4, d_z=2)
    with torch.no_grad():
        posterior, exact = model.posterior(x), model.log_marginal(x)
        broad = MultivariateNormal(posterior.mean, covariance_matrix=4 * posterior.covariance_matrix)
        n_samples = 4000
        # Reference draws, independent of the student's, give the spread of the weights w / p(x).
        with torch.random.fork_rng():
            torch.manual_seed(seed + 100)
            z_ref = broad.sample((n_samples,))
            log_w = model.joint_log_prob(x, z_ref) - broad.log_prob(z_ref)  # [S, n]
        relative_sd = (log_w - exact).exp().std(0)
        tolerance = 6 * relative_sd / math.sqrt(n_samples) + 1e-6  # delta method: sd(log p̂) ≈ sd(w / p) / √S
        got = _call_estimator(fn, model, x, broad, n_samples, seed + 10)
        if torch.all((got - exact).abs() < tolerance):
            return
        elbo = exact - kl_divergence(broad, posterior)  # what averaging the log-weights converges to
        elbo_tolerance = 6 * log_w.std(0) / math.sqrt(n_samples)
        if torch.all((got - elbo).abs() < elbo_tolerance):
            raise ExerciseFeedback(
                "You averaged the log-weights: mean_s log w_s estimates E_r[log w], the evidence lower bound of "
                "chapter 4, which lies below log p(x) by KL(r ‖ p(z | x)). The estimator averages the weights "
                "themselves: logsumexp(log w, dim=0) − log S.")
        worst = int((got - exact).abs().argmax())
        raise ExerciseFeedback(
            f"With a proposal twice as wide as the posterior and S = {n_samples} draws, log p̂(x) should be within "
            f"{tolerance[worst]:.3f} (six standard errors) of log p(x) = {exact[worst]:.4f}; you returned "
            f"{got[worst]:.4f}. Draw S independent z for every point (proposal.sample((n_samples,)), shape "
            "[S, n, D_z]) and average the weights over them.")


def _check_high_dimension(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """D = 784: p(x) ≈ e^-1000, so exponentiating any weight underflows to 0 even in float64."""
    # σ = 1: log p(x) ≈ −784 × 1.4, far below log of the smallest float64 (≈ −745).
    model, x = _random_linear_gaussian(gen, d_x=784, d_z=5, n=3, scale=0.5, sigma=1.0)
    with torch.no_grad():
        proposal, exact = model.posterior(x), model.log_marginal(x)
    got = _call_estimator(fn, model, x, proposal, 20, seed + 20)
    if torch.isfinite(got).all() and _close(got, exact):
        return
    if torch.isfinite(got).all():
        raise ExerciseFeedback(
            f"At D = 784, log p(x) ≈ {exact[0]:.0f}; you returned {got.tolist()} instead of {exact.tolist()}: "
            "finite, but wrong. Every weight exp(log w) underflows to 0 there, and a small constant added before "
            "the log (or clamp, or nan_to_num) hides the −inf without bringing back the value. Stay in log "
            "space: torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
    raise ExerciseFeedback(
        f"At D = 784, log p(x) ≈ {exact[0]:.0f}: exp() of such a weight underflows to 0 and its log is −inf. "
        f"You returned {got.tolist()} instead of {exact.tolist()}. Stay in log space: "
        "torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
