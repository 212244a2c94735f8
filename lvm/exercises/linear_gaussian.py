"""Chapter 2: the posterior of probabilistic PCA."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import MultivariateNormal

from ..models.linear import LinearGaussian
from ._feedback import ExerciseFeedback, _close, _invoke, _pair, _passed, _sizes_hint, _start

__all__ = ["check_ppca_posterior"]


def _ppca_posterior_reference(x, W, b, sigma, m_extra: float | None = None):
    """Mean [n, D_z] and covariance [D_z, D_z] of eq. ``lg-posterior``; ``m_extra`` replaces the σ² inside M."""
    eye = torch.eye(W.shape[1], dtype=W.dtype)
    M = W.T @ W + (sigma**2 if m_extra is None else m_extra) * eye
    M_inv = torch.linalg.inv(M)
    return (x - b) @ W @ M_inv, sigma**2 * M_inv


def _posterior_pair(fn: Callable, name: str, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """Call ``fn``; accept ``(mean, cov)`` as a tuple or list, or a ``MultivariateNormal``; return float64 tensors."""
    out = _invoke(fn, name, *args)
    if isinstance(out, MultivariateNormal):
        out = (out.mean, out.covariance_matrix)
    mean, cov = _pair(out, name, ("mean", "cov"))
    return mean.detach().to(torch.float64), cov.detach().to(torch.float64)


def _no_identity(W, sigma):
    """M with σ² added to every entry, ``W.T @ W + sigma**2`` without the identity: right only for D_z = 1."""
    return W.T @ W + sigma**2


def check_ppca_posterior(fn: Callable, n_trials: int = 10, seed: int = 2) -> None:
    """Check ``fn(x, W, b, sigma) -> (mean, cov)``, the probabilistic-PCA posterior p(z | x) (eq. ``lg-posterior``).

    ``x`` is ``[n, D]``, ``W`` ``[D, D_z]``, ``b`` ``[D]`` and ``sigma`` a 0-dim tensor. The answer is a pair:
    ``mean`` of shape ``[n, D_z]`` and ``cov`` of shape ``[D_z, D_z]`` (the same for every x; a stack
    ``[n, D_z, D_z]`` or a ``MultivariateNormal`` is accepted too); a tuple or a list.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    f64 = torch.float64
    n = 9  # more points than latent dimensions, so a transposed mean cannot have the right shape
    right_for: set[str] = set()
    for trial in range(n_trials):
        d_x = int(torch.randint(2, 9, (1,), generator=gen))
        d_z = int(torch.randint(1, d_x, (1,), generator=gen))
        if trial < 2:  # D_z = 1 first, then 2: an answer right for one latent dimension only passes, then fails
            d_x, d_z = 3 + trial, 1 + trial
        W = torch.randn(d_x, d_z, generator=gen, dtype=f64)
        b = torch.randn(d_x, generator=gen, dtype=f64)
        sigma = torch.tensor(0.3 + 1.2 * float(torch.rand(1, generator=gen)), dtype=f64)
        z = torch.randn(n, d_z, generator=gen, dtype=f64)
        x = z @ W.T + b + sigma * torch.randn(n, d_x, generator=gen, dtype=f64)
        with torch.no_grad():
            mean, cov = _posterior_pair(fn, "ppca_posterior", x, W, b, sigma)
            exact = LinearGaussian(W, b, sigma).posterior(x)
        want_mean, want_cov = exact.mean, exact.covariance_matrix[0]
        sizes = f"D = {d_x}, D_z = {d_z}"
        _diagnose_ppca_mean(mean, want_mean, x, W, b, sigma, _sizes_hint(right_for, sizes))
        _diagnose_ppca_cov(cov, want_cov, W, sigma, n, _sizes_hint(right_for, sizes))
        right_for.add(sizes)
    _passed(f"✓ ppca_posterior agrees with lvm.LinearGaussian.posterior on {n_trials} random models.")


def _diagnose_ppca_mean(mean, want, x, W, b, sigma, sizes_hint) -> None:
    d_z = want.shape[1]
    if mean.shape != want.shape:
        hint = " (transpose it: one row per data point)" if mean.shape == want.T.shape else ""
        raise ExerciseFeedback(f"The mean must have shape [n, D_z] = {list(want.shape)}, got "
                               f"{list(mean.shape)}{hint}.")
    if _close(mean, want):
        return
    no_b, _ = _ppca_posterior_reference(x + b, W, b, sigma)  # i.e. M⁻¹ Wᵀ x
    if _close(mean, no_b):
        raise ExerciseFeedback("The posterior mean is M⁻¹ Wᵀ (x − b): subtract the offset b before projecting.")
    twice_b, _ = _ppca_posterior_reference(x - b, W, b, sigma)  # i.e. M⁻¹ Wᵀ (x − 2b)
    if _close(mean, twice_b):
        raise ExerciseFeedback("You subtracted b twice: the mean is M⁻¹ Wᵀ (x − b). An in-place x -= b changes x "
                               "itself, so a later x - b subtracts it again.")
    unit_m, _ = _ppca_posterior_reference(x, W, b, sigma, m_extra=1.0)
    if _close(mean, unit_m):
        raise ExerciseFeedback("M = WᵀW + σ² I: the noise variance σ² belongs inside M (you used the identity).")
    std_as_var, _ = _ppca_posterior_reference(x, W, b, sigma, m_extra=float(sigma))
    if _close(mean, std_as_var):
        raise ExerciseFeedback("sigma is the noise standard deviation: M = WᵀW + sigma**2 I, not + sigma I.")
    if _close(mean, (x - b) @ W @ torch.linalg.inv(_no_identity(W, sigma))):
        raise ExerciseFeedback("W.T @ W + sigma**2 adds σ² to EVERY entry of M (that is only right when D_z = 1): "
                               "σ² belongs on the diagonal, M = WᵀW + σ² I (torch.eye(D_z)).")
    least_squares = torch.linalg.lstsq(W, (x - b).T).solution.T
    if _close(mean, least_squares):
        raise ExerciseFeedback("That is the least-squares fit (WᵀW)⁻¹ Wᵀ (x − b), the σ → 0 limit. The prior "
                               "N(0, I) pulls z towards 0: use M = WᵀW + σ² I.")
    M = W.T @ W + sigma**2 * torch.eye(d_z, dtype=W.dtype)
    if _close(mean, (x - b) @ W @ M):
        raise ExerciseFeedback("Multiply by the inverse of M (torch.linalg.solve or inv), not by M itself.")
    raise ExerciseFeedback(f"Wrong posterior mean. For the first point expected {want[0].tolist()}, "
                           f"got {mean[0].tolist()}." + sizes_hint)


def _diagnose_ppca_cov(cov, want, W, sigma, n, sizes_hint) -> None:
    d_z = want.shape[0]
    if cov.shape == (n, d_z, d_z):
        if not torch.allclose(cov, cov[0].expand_as(cov), rtol=1e-5, atol=1e-6):
            raise ExerciseFeedback("The posterior covariance σ² M⁻¹ is the same for every x, but yours varies "
                                   "from point to point.")
        cov = cov[0]
    if cov.shape != want.shape:
        raise ExerciseFeedback(f"The covariance must have shape [D_z, D_z] = {list(want.shape)}, got "
                               f"{list(cov.shape)}.")
    if _close(cov, want):
        return
    M = W.T @ W + sigma**2 * torch.eye(d_z, dtype=W.dtype)
    if _close(cov, want / sigma**2):
        raise ExerciseFeedback("The covariance is σ² M⁻¹: you returned M⁻¹, multiply it by sigma**2.")
    if _close(cov, want / sigma):
        raise ExerciseFeedback("The covariance is σ² M⁻¹: you returned σ M⁻¹. sigma is the standard deviation: "
                               "multiply by sigma**2.")
    if _close(cov, M / sigma**2):
        raise ExerciseFeedback("You returned the precision M / σ² (the inverse covariance): invert it.")
    if _close(cov, sigma**2 * torch.linalg.inv(_no_identity(W, sigma))):
        raise ExerciseFeedback("W.T @ W + sigma**2 adds σ² to EVERY entry of M (that is only right when D_z = 1): "
                               "σ² belongs on the diagonal, M = WᵀW + σ² I (torch.eye(D_z)).")
    if _close(cov, torch.eye(d_z, dtype=W.dtype)):
        raise ExerciseFeedback("That is the prior's covariance I; the posterior's is σ² M⁻¹, narrower.")
    _, unit_m = _ppca_posterior_reference(W.new_zeros(1, W.shape[0]), W, W.new_zeros(W.shape[0]), sigma,
                                          m_extra=1.0)
    if _close(cov, unit_m):
        raise ExerciseFeedback("M = WᵀW + σ² I: the noise variance σ² belongs inside M (you used the identity).")
    raise ExerciseFeedback(f"Wrong posterior covariance: expected {want.tolist()}, got {cov.tolist()}."
                           + sizes_hint)
