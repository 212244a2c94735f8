"""Diffusion as a hierarchical VAE with a fixed encoder, in one dimension (chapter 9).

The encoder is the forward process x_t = √α_t x_{t−1} + √(1 − α_t) ε_t, t = 1..T, so that
q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t) with ᾱ_t = α_1 ⋯ α_t (eq. ``diffusion-marginal``). The decoder is a chain of
Gaussians p(x_{t−1} | x_t) from p(x_T) = N(0, 1). For data drawn from a 1-D :class:`lvm.GaussianMixture` every
q(x_t) is again a mixture, so the best Gaussian reverse step, from E[x_0 | x_t] and Var[x_0 | x_t], is available in
closed form, and the ELBO
of such a decoder can be computed with no training at all.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from ._checks import as_tensor, check_finite, check_int, check_positive_int, is_integer
from .models.mixture import GaussianMixture

__all__ = ["alpha_bars", "denoised_moments", "diffused_mixture", "diffusion_elbo", "forward_marginal",
           "forward_posterior", "reverse_step", "signal_schedule"]


def signal_schedule(steps: int, final: float = 1e-3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """α_1..α_T of ``steps`` steps whose kept signal ᾱ_t falls geometrically from 1 to ``final`` at t = T:
    every step keeps the same fraction α = final^(1/T) of the signal's variance.

    Args:
        steps (int): T >= 1.
        final (float): ᾱ_T, strictly between 0 and 1.
        dtype (~torch.dtype): of the result, ``[T]``.
    """
    steps = check_positive_int(steps, "steps")
    if not 0 < final < 1:
        raise ValueError(f"final must lie strictly between 0 and 1, got {final!r}")
    return torch.full((steps,), final ** (1 / steps), dtype=dtype)


def alpha_bars(alphas: torch.Tensor) -> torch.Tensor:
    """ᾱ_t = α_1 ⋯ α_t for t = 1..T, shape ``[T]``."""
    alphas = _check_alphas(alphas)
    return torch.cumprod(alphas, dim=0)


def forward_marginal(x0: torch.Tensor, alpha_bar: torch.Tensor | float) -> Normal:
    """q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t) (eq. ``diffusion-marginal``), batched like x0 and ᾱ_t."""
    x0 = check_finite(as_tensor(x0, "x0"), "x0")
    alpha_bar = _level(alpha_bar, "alpha_bar", x0.dtype, x0.device)
    return Normal(alpha_bar.sqrt() * x0, (1 - alpha_bar).sqrt())


def forward_posterior(x0: torch.Tensor, xt: torch.Tensor, alpha: torch.Tensor | float,
                      alpha_bar_before: torch.Tensor | float) -> Normal:
    """q(x_{t−1} | x_t, x_0), Gaussian in closed form (eq. ``diffusion-posterior``):

        mean = (√ᾱ_{t−1} (1 − α_t) x_0 + √α_t (1 − ᾱ_{t−1}) x_t) / (1 − ᾱ_t),
        variance = (1 − α_t)(1 − ᾱ_{t−1}) / (1 − ᾱ_t),

    with ᾱ_t = α_t ᾱ_{t−1}; needs t >= 2 (ᾱ_{t−1} < 1), where the variance is positive.
    """
    x0 = check_finite(as_tensor(x0, "x0"), "x0")
    xt = check_finite(as_tensor(xt, "xt", dtype=x0.dtype), "xt").to(x0.device)
    alpha = _level(alpha, "alpha", x0.dtype, x0.device)
    before = _level(alpha_bar_before, "alpha_bar_before", x0.dtype, x0.device)  # < 1: t >= 2
    now = alpha * before
    mean = (before.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - before) * xt) / (1 - now)
    variance = (1 - alpha) * (1 - before) / (1 - now)
    return Normal(mean, variance.sqrt())


def diffused_mixture(mixture: GaussianMixture, alpha_bar: float) -> GaussianMixture:
    """q(x_t) for data x_0 from a 1-D mixture: each component N(μ_n, σ_n²) becomes
    N(√ᾱ μ_n, ᾱ σ_n² + 1 − ᾱ), with the same weights."""
    _check_1d(mixture)
    keep = float(alpha_bar)
    return GaussianMixture(mixture.weights, math.sqrt(keep) * mixture.means,
                           (keep * mixture.stds**2 + 1 - keep).sqrt())


@torch.no_grad()
def denoised_moments(mixture: GaussianMixture, xt: torch.Tensor, alpha_bar: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """E[x_0 | x_t] and Var[x_0 | x_t] under the data mixture (eq. ``denoised-moments``): each diffused
    component's responsibility times that component's Gaussian posterior, shapes like ``xt``."""
    noisy = diffused_mixture(mixture, alpha_bar)
    keep = float(alpha_bar)
    weights = noisy.posterior(xt.reshape(-1)).probs.reshape(*xt.shape, -1)  # [..., N]
    gain = math.sqrt(keep) * mixture.stds**2 / noisy.stds**2  # [N]
    means = mixture.means + gain * (xt[..., None] - math.sqrt(keep) * mixture.means)  # E[x_0 | x_t, n]
    variances = mixture.stds**2 * (1 - math.sqrt(keep) * gain)  # Var[x_0 | x_t, n]
    mean = (weights * means).sum(-1)
    second = (weights * (variances + means**2)).sum(-1)
    return mean, (second - mean**2).clamp(min=0)


@torch.no_grad()
def reverse_step(mixture: GaussianMixture, xt: torch.Tensor, alpha: torch.Tensor | float,
                 alpha_bar_before: torch.Tensor | float) -> Normal:
    """The best Gaussian reverse step p(x_{t−1} | x_t) for data from ``mixture``: the Gaussian with the mean and
    variance of the true reverse step q(x_{t−1} | x_t) (eq. ``denoised-moments``),

        mean = μ̃_t(x_t, E[x_0 | x_t]),   variance = σ̃_t² + (√ᾱ_{t−1} (1 − α_t) / (1 − ᾱ_t))² Var[x_0 | x_t],

    with μ̃_t, σ̃_t² of eq. ``diffusion-posterior``. With ᾱ_{t−1} = 1 (t = 1) it is the decoder's last step,
    p(x_0 | x_1) = N(E[x_0 | x_1], Var[x_0 | x_1]). Batched like ``xt``.
    """
    _check_1d(mixture)
    dtype = mixture.means.dtype
    xt = check_finite(as_tensor(xt, "xt", dtype=dtype), "xt")
    alpha = _level(alpha, "alpha", dtype)
    before = _level(alpha_bar_before, "alpha_bar_before", dtype, one_allowed=True)  # ᾱ_0 = 1 at t = 1
    now = alpha * before
    guess, spread = denoised_moments(mixture, xt, float(now))
    slope = before.sqrt() * (1 - alpha) / (1 - now)  # how μ̃_t moves with x_0
    mean = slope * guess + alpha.sqrt() * (1 - before) / (1 - now) * xt
    variance = (1 - alpha) * (1 - before) / (1 - now) + slope**2 * spread
    return Normal(mean, variance.sqrt())


@torch.no_grad()
def diffusion_elbo(mixture: GaussianMixture, x0: torch.Tensor, alphas: torch.Tensor, n_samples: int = 100,
                   generator: torch.Generator | None = None, estimator: str = "steps",
                   per_draw: bool = False) -> torch.Tensor:
    """The ELBO of each x_0 ``[n]`` under the best Gaussian decoder for data from ``mixture``: p(x_T) = N(0, 1)
    and each reverse step p(x_{t−1} | x_t) the Gaussian with the mean and variance of the true reverse step
    (:func:`reverse_step`). Two unbiased Monte Carlo estimators of the same number:

    * ``estimator="steps"``: the per-step form (eq. ``diffusion-elbo``),

        E[log p(x_0 | x_1)] − Σ_{t=2..T} E[KL(q(x_{t−1} | x_t, x_0) ‖ p(x_{t−1} | x_t))] − KL(q(x_T | x_0) ‖ N(0, 1)),

      each expectation over x_t ~ q(x_t | x_0), with fresh draws for every step; the last KL is exact.
    * ``estimator="chain"``: chapter 4's form, log p(x_0, x_1, …, x_T) − log q(x_1, …, x_T | x_0) on whole
      forward chains drawn step by step with eq. ``diffusion-forward``. When the reverse steps are close to the
      true ones this log-ratio is close to log q(x_0) on every chain, so its variance is small.

    Args:
        mixture (~lvm.GaussianMixture): the 1-D data distribution.
        x0 (~torch.Tensor): data points ``[n]``.
        alphas (~torch.Tensor): α_1..α_T ``[T]``, each strictly between 0 and 1.
        n_samples (int): draws of each x_t (``"steps"``) or of whole chains (``"chain"``) per point.
        generator (~torch.Generator | int | None): a generator or an integer seed, for reproducible draws.
        estimator (str): ``"steps"`` or ``"chain"``.
        per_draw (bool): return one estimate per draw, ``[n_samples, n]`` (independent rows, each unbiased),
            instead of their mean.

    Returns:
        ``[n]`` (or ``[n_samples, n]``), in nats.
    """
    _check_1d(mixture)
    wanted = mixture.means.dtype
    # In float64 whatever the mixture's dtype: with α_t close to 1, 1 − α_t and 1 − ᾱ_t lose every digit in
    # float32 (α = 1 − 1e-8 rounds to 1), and the steps' variances came out 0 or negative.
    mixture = GaussianMixture(mixture.weights.double(), mixture.means.double(), mixture.stds.double())
    alphas = _check_alphas(alphas).to(torch.float64)
    x0 = check_finite(as_tensor(x0, "x0", dtype=torch.float64), "x0")
    n_samples = check_positive_int(n_samples, "n_samples")
    generator = _generator(generator)
    if estimator not in ("steps", "chain"):
        raise ValueError(f"estimator must be 'steps' or 'chain', got {estimator!r}")
    bars = alpha_bars(alphas)
    befores = torch.cat([bars.new_ones(1), bars[:-1]])  # ᾱ_{t−1}, with ᾱ_0 = 1
    prior = Normal(torch.zeros((), dtype=x0.dtype), torch.ones((), dtype=x0.dtype))
    total = torch.zeros(n_samples, *x0.shape, dtype=x0.dtype)
    previous = x0.expand(n_samples, *x0.shape)  # the chain's x_{t−1} ("chain")
    for t in range(len(alphas)):  # index t is step t + 1
        noise = torch.randn(n_samples, *x0.shape, generator=generator, dtype=x0.dtype)
        if estimator == "steps":
            xt = bars[t].sqrt() * x0 + (1 - bars[t]).sqrt() * noise  # x_t ~ q(x_t | x_0), [S, n]
            model = reverse_step(mixture, xt, alphas[t], befores[t])
            if t == 0:  # the decoder's last step, log p(x_0 | x_1)
                total += model.log_prob(x0)
            else:
                target = forward_posterior(x0, xt, alphas[t], befores[t])
                total -= torch.distributions.kl_divergence(target, model)
        else:
            xt = alphas[t].sqrt() * previous + (1 - alphas[t]).sqrt() * noise  # eq. (diffusion-forward)
            total += (reverse_step(mixture, xt, alphas[t], befores[t]).log_prob(previous)  # log p(x_{t−1} | x_t)
                      - forward_marginal(previous, alphas[t]).log_prob(xt))  # − log q(x_t | x_{t−1})
            previous = xt
    if estimator == "steps":
        total -= torch.distributions.kl_divergence(forward_marginal(x0, bars[-1]), prior)
    else:
        total += prior.log_prob(previous)  # log p(x_T)
    return (total if per_draw else total.mean(0)).to(wanted)


def _level(value: object, name: str, dtype: torch.dtype, device: torch.device | None = None,
           one_allowed: bool = False) -> torch.Tensor:
    """α_t or ᾱ_t as a tensor, each value in (0, 1) (or (0, 1] where ``one_allowed``: ᾱ_0 = 1), or an error naming
    ``name``: ᾱ passed for α (or 1 − ᾱ for ᾱ) gave a wrong or NaN step without a word."""
    level = check_finite(as_tensor(value, name, dtype=dtype), name)
    if device is not None:
        level = level.to(device)
    inside = (level > 0) & ((level <= 1) if one_allowed else (level < 1))
    if not bool(inside.all()):
        interval = "(0, 1]" if one_allowed else "(0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got values from {float(level.min()):.4g} to "
                         f"{float(level.max()):.4g}")
    return level


def _generator(generator: object) -> torch.Generator | None:
    """A generator, an integer seed (turned into a CPU generator) or None."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if is_integer(generator):
        return torch.Generator().manual_seed(check_int(generator, "generator", minimum=0))
    raise ValueError(f"generator must be a torch.Generator, an integer seed or None, got {type(generator).__name__}")


def _check_alphas(alphas: object) -> torch.Tensor:
    checked = check_finite(as_tensor(alphas, "alphas"), "alphas")
    if checked.dim() != 1 or checked.numel() == 0 or not bool(((checked > 0) & (checked < 1)).all()):
        raise ValueError("alphas must be a non-empty 1-D tensor of numbers strictly between 0 and 1 (the signal "
                         f"each step keeps), got shape {list(checked.shape)}")
    return checked


def _check_1d(mixture: object) -> None:
    if not isinstance(mixture, GaussianMixture) or mixture.means.dim() != 1:
        raise ValueError("mixture must be a 1-D lvm.GaussianMixture (means of shape [N])")
