"""Chapter 9: the forward process of a diffusion model, in closed form."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._feedback import ExerciseFeedback, _close, _invoke, _pair, _passed, _sizes_hint, _start

__all__ = ["check_forward_marginal"]


def check_forward_marginal(fn: Callable, n_trials: int = 10, seed: int = 10) -> None:
    """Check ``fn(alphas) -> (scale, variance)``: for every step t = 1..T, the mean scale √ᾱ_t and the variance
    1 − ᾱ_t of q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t), where ᾱ_t = α_1 ⋯ α_t (eq. ``diffusion-marginal``), as
    :func:`lvm.diffusion.forward_marginal` uses them. ``alphas`` is ``[T]``; the answer is a pair (a tuple or a
    list) of two ``[T]`` tensors.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    right_for = set()
    for trial in range(n_trials):
        steps = 4 if trial == 0 else int(torch.randint(1, 12, (1,), generator=gen))
        alphas = 0.5 + 0.49 * torch.rand(steps, generator=gen, dtype=torch.float64)
        bars = torch.cumprod(alphas, 0)
        want_scale, want_variance = bars.sqrt(), 1 - bars
        out = _invoke(fn, "forward_marginal", alphas)
        scale, variance = (o.detach().to(torch.float64) for o in _pair(out, "forward_marginal", ("scale", "variance")))
        if scale.shape != (steps,) or variance.shape != (steps,):
            raise ExerciseFeedback(f"Expected two tensors of shape [{steps}], one value per step; got "
                                   f"{list(scale.shape)} and {list(variance.shape)}.")
        if _close(scale, want_scale) and _close(variance, want_variance):
            right_for.add(f"T = {steps}")
            continue
        before = torch.cat([bars.new_ones(1), bars[:-1]])  # ᾱ_{t-1}, with ᾱ_0 = 1
        if _close(scale, before.sqrt()) or _close(variance, 1 - before):
            raise ExerciseFeedback("Off by one step: you returned ᾱ_{t−1} (starting from ᾱ_0 = 1) where step t "
                                   "needs ᾱ_t = α_1 ⋯ α_t, which includes α_t itself. torch.cumprod(alphas, 0) "
                                   "gives ᾱ_1, …, ᾱ_T in order.")
        if _close(scale, want_scale) and _close(variance, 1 - want_scale):
            raise ExerciseFeedback("The scale is right, but the variance is 1 − √ᾱ_t: you subtracted the scale √ᾱ_t "
                                   "from 1, where the variance is 1 − ᾱ_t = 1 − scale². (An in-place sqrt_() that "
                                   "turns ᾱ into √ᾱ before 1 − ᾱ is computed does the same: compute the square root "
                                   "into a new tensor, bars.sqrt().)")
        if _close(variance, want_variance) and _close(scale, want_variance.sqrt()):
            raise ExerciseFeedback("The variance is right, but the scale is √(1 − ᾱ_t), the standard deviation of the "
                                   "noise: the mean of x_t is the signal x_0 scaled by √ᾱ_t. (An in-place operation "
                                   "that overwrites ᾱ with 1 − ᾱ before the square root, such as neg_().add_(1), does "
                                   "the same: keep ᾱ in its own tensor.)")
        if _close(scale, want_variance) and _close(variance, want_scale):
            raise ExerciseFeedback("Your two tensors are swapped: the answer is the pair (scale, variance), "
                                   "(√ᾱ_t, 1 − ᾱ_t), in that order.")
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
                               f"{want_scale.tolist()} and variance {want_variance.tolist()}."
                               + _sizes_hint(right_for, f"T = {steps}"))
    _passed(f"✓ forward_marginal agrees with lvm on {n_trials} schedules.")
