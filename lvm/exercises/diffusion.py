"""Chapter 9: the forward process of a diffusion model, in closed form."""

from __future__ import annotations

from typing import Callable

import torch

from ._feedback import ExerciseFeedback, _close, _copies, _start

__all__ = ["check_forward_marginal"]


def check_forward_marginal(fn: Callable, n_trials: int = 10, seed: int = 10) -> None:
    """Check ``fn(alphas) -> (scale, variance)``: for every step t = 1..T, the mean scale √ᾱ_t and the variance
    1 − ᾱ_t of q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t), where ᾱ_t = α_1 ⋯ α_t (eq. ``diffusion-marginal``), as
    :func:`lvm.diffusion.forward_marginal` uses them. ``alphas`` is ``[T]``; both answers are ``[T]``.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for trial in range(n_trials):
        steps = 4 if trial == 0 else int(torch.randint(1, 12, (1,), generator=gen))
        alphas = 0.5 + 0.49 * torch.rand(steps, generator=gen, dtype=torch.float64)
        bars = torch.cumprod(alphas, 0)
        want_scale, want_variance = bars.sqrt(), 1 - bars
        try:
            out = fn(*_copies(alphas))
        except NotImplementedError:
            raise ExerciseFeedback("forward_marginal is not written yet (it raised NotImplementedError).") from None
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(o, torch.Tensor) for o in out)):
            raise ExerciseFeedback("Return a pair of tensors (scale, variance), one value per step each.")
        scale, variance = (o.detach().to(torch.float64) for o in out)
        if scale.shape != (steps,) or variance.shape != (steps,):
            raise ExerciseFeedback(f"Expected two tensors of shape [{steps}], one value per step; got "
                                   f"{list(scale.shape)} and {list(variance.shape)}.")
        if _close(scale, want_scale) and _close(variance, want_variance):
            continue
        if _close(scale, alphas.sqrt()) or _close(variance, 1 - alphas):
            raise ExerciseFeedback("You used each step's own α_t. The marginal after t steps keeps the product "
                                   "ᾱ_t = α_1 ⋯ α_t of the signal (torch.cumprod).")
        if _close(scale, bars) and _close(variance, want_variance):
            raise ExerciseFeedback("The variance is right, but the mean is scaled by √ᾱ_t, not ᾱ_t: each step "
                                   "multiplies x by √α_t.")
        if _close(scale, want_scale) and _close(variance, (1 - bars).sqrt()):
            raise ExerciseFeedback("You returned the standard deviation √(1 − ᾱ_t); the check asks for the "
                                   "variance 1 − ᾱ_t.")
        if _close(scale, want_scale) and _close(variance, torch.cumsum(1 - alphas, 0)):
            raise ExerciseFeedback("The noise variances do not simply add up: each later step shrinks the noise "
                                   "added before it by α. The total is 1 − ᾱ_t.")
        raise ExerciseFeedback(f"Wrong values for alphas = {alphas.tolist()}: expected scale "
                               f"{want_scale.tolist()} and variance {want_variance.tolist()}.")
    print(f"✓ forward_marginal agrees with lvm on {n_trials} schedules.")
