"""Chapter 4: the KL divergence between diagonal Gaussians."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import kl_divergence

from ._feedback import ExerciseFeedback, _call, _close, _invoke, _passed, _start, _tensor

__all__ = ["check_gaussian_kl"]


def check_gaussian_kl(fn: Callable, n_trials: int = 20, seed: int = 4) -> None:
    """Check ``fn(mu_q, std_q, mu_p, std_p) -> KL(q ‖ p)`` between diagonal Gaussians (eq. ``gauss-kl``).

    All four arguments are ``[n, d]`` (standard deviations, not variances); the answer must be ``[n]``: the
    divergence summed over the ``d`` coordinates of each row.
    """
    from torch.distributions import Normal

    n_trials, gen = _start(fn, seed, n_trials)
    for _ in range(n_trials):
        n = int(torch.randint(2, 6, (1,), generator=gen))
        d = n + int(torch.randint(1, 4, (1,), generator=gen))  # d != n, so a sum over the wrong axis shows
        mu_q, mu_p = 2 * torch.randn(2, n, d, generator=gen, dtype=torch.float64)
        std_q, std_p = 0.2 + 1.5 * torch.rand(2, n, d, generator=gen, dtype=torch.float64)
        got = _call(fn, "gaussian_kl", mu_q, std_q, mu_p, std_p)
        per_dim = kl_divergence(Normal(mu_q, std_q), Normal(mu_p, std_p))  # [n, d]
        want = per_dim.sum(-1)
        if got.shape == per_dim.shape and _close(got, per_dim):
            raise ExerciseFeedback(f"You returned one divergence per coordinate, shape {list(got.shape)}: for "
                                   "independent coordinates the KL is their sum, so sum over the last "
                                   f"dimension to get shape {list(want.shape)}.")
        if got.shape != want.shape:
            hint = (" You summed over the rows (dim 0): sum over the last dimension instead."
                    if got.shape == per_dim.sum(0).shape else "")
            raise ExerciseFeedback(f"Expected one divergence per row, shape {list(want.shape)}; got shape "
                                   f"{list(got.shape)}.{hint}")
        if _close(got, want):
            continue
        log_ratio = (std_p / std_q).log().sum(-1)
        quadratic = ((std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2)).sum(-1)
        if _close(got, kl_divergence(Normal(mu_p, std_p), Normal(mu_q, std_q)).sum(-1)):
            raise ExerciseFeedback("You computed KL(p ‖ q): the roles of q and p are swapped. KL(q ‖ p) is an "
                                   "expectation under q: log(σ_p / σ_q) + (σ_q² + (μ_q − μ_p)²) / (2 σ_p²) "
                                   "− ½.")
        if _close(got, want + d / 2):
            raise ExerciseFeedback("Your answer is too large by d/2: each coordinate contributes a constant −½ "
                                   "(from E_q[log q]).")
        if _close(got, want - d / 2):
            raise ExerciseFeedback("Your answer is too small by d/2: the constant per coordinate is −½, not −1.")
        if _close(got, want + log_ratio):
            raise ExerciseFeedback("The log term is twice too large: it is log(σ_p / σ_q) = ½ log(σ_p² / σ_q²). "
                                   "With variances, keep the ½. If you squared a standard deviation in place "
                                   "(std_q.pow_(2), std_q **= 2), std_q now holds the variance, so a later "
                                   "log(std_p / std_q) is the log of the variances.")
        if _close(got, want - log_ratio):
            raise ExerciseFeedback("The log term log(σ_p / σ_q) is missing: it comes from the normalisers "
                                   "1/σ of the two densities.")
        if _close(got, want - 2 * log_ratio):
            raise ExerciseFeedback("The log term has the wrong sign: it is log(σ_p / σ_q), the log of p's standard "
                                   "deviation over q's (KL(q ‖ p) = E_q[log q − log p]).")
        if _close(got, -want):
            raise ExerciseFeedback("Your answer is minus the divergence: KL(q ‖ p) = E_q[log q − log p] ≥ 0, and "
                                   "yours is negative.")
        if _close(got, per_dim.mean(-1)):
            raise ExerciseFeedback(f"You averaged over the {d} coordinates: for independent coordinates the KL is "
                                   "their SUM, .sum(-1).")
        as_variances = (0.5 * (std_p / std_q).log() + (std_q + (mu_q - mu_p) ** 2) / (2 * std_p) - 0.5).sum(-1)
        if _close(got, as_variances):
            raise ExerciseFeedback("You treated std_q and std_p as variances: they are standard deviations, so the "
                                   "variances are std_q**2 and std_p**2.")
        over_std = ((std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p)).sum(-1)
        if _close(got, want - quadratic + over_std):
            raise ExerciseFeedback("The quadratic term divides by 2 σ_p, the standard deviation: it is "
                                   "(σ_q² + (μ_q − μ_p)²) / (2 σ_p²), over twice the VARIANCE of p (std_p**2).")
        to_standard = 0.5 * (mu_q**2 + std_q**2 - 1 - torch.log(std_q**2)).sum(-1)
        if _close(got, to_standard):
            raise ExerciseFeedback("You computed the KL to N(0, I), the VAE's prior; p here has mean mu_p and "
                                   "standard deviation std_p. Per coordinate: log(σ_p / σ_q) + (σ_q² + (μ_q − μ_p)²) "
                                   "/ (2 σ_p²) − ½.")
        if _close(got, want + quadratic) or _close(got, want - quadratic / 2):
            raise ExerciseFeedback("The quadratic term is off: it is (σ_q² + (μ_q − μ_p)²) / (2 σ_p²), "
                                   "with the 2 and with the variance σ_p², not the standard deviation.")
        raise ExerciseFeedback(f"Wrong values. For the first row expected KL = {want[0].item():.6f}, you "
                               f"returned {got[0].item():.6f}. The formula per coordinate: "
                               "log(σ_p / σ_q) + (σ_q² + (μ_q − μ_p)²) / (2 σ_p²) − ½.")
    out = _invoke(fn, "gaussian_kl", mu_q, std_q, mu_q, std_q)
    same = _tensor(out, "gaussian_kl")
    # Rounding: each of the d coordinates adds a few units of the precision the answer computed in (float32: 1.2e-7
    # each, e.g. -5.96e-08 from a formula that multiplies by the precision 1/σ_p²), and a float32 computation may be
    # returned as float64: allow 16 d units of float32, or of the answer's dtype if coarser (1.5e-5 for d = 8).
    # A wrong formula is off by 0.1 or more.
    unit = torch.finfo(torch.float32).eps
    if out.is_floating_point():
        unit = max(unit, torch.finfo(out.dtype).eps)
    if not torch.allclose(same, torch.zeros_like(same), atol=16 * mu_q.shape[-1] * unit):
        raise ExerciseFeedback(f"KL(q ‖ q) must be 0, you returned {same.tolist()}.")
    _passed(f"✓ gaussian_kl agrees with torch on {n_trials} random pairs of diagonal Gaussians.")
