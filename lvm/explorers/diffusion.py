"""Chapter 9's explorer: the fixed encoder of a diffusion model, step by step, on data from a 1-D mixture.

:func:`diffusion_explorer` has a slider for the step t of a schedule made by
:func:`lvm.diffusion.signal_schedule` and one for a clean point x_0. It draws the noised marginal q(x_t),
a mixture in closed form (:func:`lvm.diffusion.diffused_mixture`), over the data's density q(x_0) and the
prior N(0, 1), so that the data can be watched dissolving into N(0, 1) as t grows; and, for the noisy point
x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with a fixed ε, the encoder's one-step posterior q(x_{t−1} | x_t, x_0)
(:func:`lvm.diffusion.forward_posterior`) beside the true reverse step q(x_{t−1} | x_t), which does not know
x_0 (Bayes' rule on a grid). Everything a redraw needs but the three curves of step t (q(x_t) and the two
steps back) is computed once.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from .. import diffusion
from ..models.mixture import GaussianMixture
from ..plot import COLORS
from ..widgets import Explorer

__all__ = ["diffusion_explorer", "true_reverse_step"]


def _check_mixture(mixture) -> GaussianMixture:
    if not isinstance(mixture, GaussianMixture) or mixture.x_dim is not None:
        raise ValueError("mixture must be a 1-D lvm.GaussianMixture (means of shape [N]), "
                         f"got {type(mixture).__name__}")
    with torch.no_grad():  # a float64 copy: the curves are compared with float64 computations
        return GaussianMixture(mixture.weights.detach().double(), mixture.means.detach().double(),
                               mixture.stds.detach().double())


def true_reverse_step(mixture: GaussianMixture, grid: torch.Tensor, xt: float, alpha: float,
                      alpha_bar_before: float) -> torch.Tensor:
    """The density of the true reverse step q(x_{t−1} | x_t) ∝ q(x_t | x_{t−1}) q(x_{t−1}) on ``grid``
    (float64 ``[G]``), by Bayes' rule normalised with the trapezoid rule: q(x_t | x_{t−1}) is eq.
    ``diffusion-forward`` with α_t = ``alpha``, and q(x_{t−1}) the data ``mixture`` diffused to
    ᾱ_{t−1} = ``alpha_bar_before`` (the data itself when it is 1, at t = 1)."""
    before = diffusion.diffused_mixture(mixture, alpha_bar_before)
    forward = Normal(math.sqrt(alpha) * grid, math.sqrt(1 - alpha))
    log_joint = before.log_marginal(grid) + forward.log_prob(torch.tensor(xt, dtype=grid.dtype))
    joint = (log_joint - log_joint.max()).exp()
    return joint / torch.trapezoid(joint, grid)


def diffusion_explorer(mixture: GaussianMixture, steps: int = 10, final: float = 1e-3,
                       x_range: tuple[float, float] = (-5.0, 5.0), noise: float = 1.0,
                       x0: float | None = None) -> Explorer:
    """Sliders for the step t (1..``steps``) and a clean point x_0; redraws, above, the noised marginal
    q(x_t) of data from the 1-D ``mixture`` with the data's density q(x_0) and N(0, 1), and below, for
    x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ``noise``, the encoder's one-step posterior q(x_{t−1} | x_t, x_0) (eq.
    ``diffusion-posterior``; at t = 1 all its mass is at x_0) and the true reverse step q(x_{t−1} | x_t).

    The schedule is :func:`lvm.diffusion.signal_schedule` (``steps``, ``final``): every step keeps the same
    fraction of the signal's variance, and ᾱ_T = ``final``. ``x_range`` is the plotted range, and the
    x_0 slider's; ``x0`` is where that slider starts (by default, the mean of the heaviest component).
    """
    import ipywidgets as widgets

    mixture = _check_mixture(mixture)
    alphas = diffusion.signal_schedule(steps, final=final)  # checks steps and final
    bars = diffusion.alpha_bars(alphas)
    steps = len(alphas)
    if (len(x_range) != 2 or not all(math.isfinite(float(v)) for v in x_range)
            or float(x_range[0]) >= float(x_range[1])):
        raise ValueError(f"x_range must be (lowest, highest) with lowest < highest, got {tuple(x_range)}")
    low, high = float(x_range[0]), float(x_range[1])
    if not isinstance(noise, (int, float)) or not math.isfinite(noise):
        raise ValueError(f"noise must be a finite number (the fixed ε of x_t), got {noise!r}")
    grid = torch.linspace(low, high, 801, dtype=torch.float64)
    standard = Normal(0.0, 1.0).log_prob(grid).exp()
    with torch.no_grad():
        data = mixture.log_marginal(grid).exp()
        # the top panel's height, the same at every step, so that the curves can be compared as t moves
        tallest = max(float(data.max()), float(standard.max()),
                      *(float(diffusion.diffused_mixture(mixture, float(bar)).log_marginal(grid).exp().max())
                        for bar in bars))
    if x0 is None:
        x0 = min(max(float(mixture.means[mixture.weights.argmax()]), low), high)
    elif not isinstance(x0, (int, float)) or not low <= x0 <= high:
        raise ValueError(f"x0 must be a number within x_range {(low, high)}, got {x0!r}")

    controls = {
        "t": widgets.IntSlider(value=1, min=1, max=steps, step=1, description="step t"),
        "x0": widgets.FloatSlider(value=round(float(x0), 1), min=low, max=high, step=0.1,
                                  description="x₀"),
    }

    def draw(fig, t, x0):
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= steps:
            raise ValueError(f"t must be an integer step from 1 to {steps}, got {t!r}")
        if not isinstance(x0, (int, float)) or not math.isfinite(x0):
            raise ValueError(f"x0 must be a finite number, got {x0!r}")
        bar = float(bars[t - 1])
        before = float(bars[t - 2]) if t > 1 else 1.0  # ᾱ_{t−1}, with ᾱ_0 = 1
        alpha = float(alphas[t - 1])
        xt = math.sqrt(bar) * x0 + math.sqrt(1 - bar) * noise
        with torch.no_grad():
            noisy = diffusion.diffused_mixture(mixture, bar).log_marginal(grid).exp()
            true_step = true_reverse_step(mixture, grid, xt, alpha, before)
        top, bottom = fig.subplots(2, 1, sharex=True)
        top.plot(grid, data, color="black", lw=1.2, ls=":", label="data")
        top.plot(grid, noisy, color=COLORS[0], lw=2, label="$q(x_t)$")
        # drawn over q(x_t), which it hides at large t
        top.plot(grid, standard, color="0.3", lw=1.2, ls="--", label=r"$\mathcal{N}(0, 1)$")
        top.set_ylim(0, 1.35 * tallest)
        top.set_ylabel("density")
        top.set_title(rf"$\bar\alpha_t$ = {bar:.3g} of the signal kept")
        handles, labels = top.get_legend_handles_labels()
        order = [0, 2, 1]  # data, N(0, 1), q(x_t): the order the eye meets them as t grows
        top.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center", ncol=3,
                   handlelength=1.5, columnspacing=1.0)
        highest = float(true_step.max())
        if t == 1:  # q(x_0 | x_1, x_0) puts all its mass at x_0
            bottom.axvline(x0, color=COLORS[3], lw=2, label=r"$q(x_0 \mid x_1, x_0)$")
            title = f"$x_1$ = {xt:.2f}; given $x_0$, the step back is $x_0$"
        else:
            posterior = diffusion.forward_posterior(torch.tensor(x0, dtype=torch.float64),
                                                    torch.tensor(xt, dtype=torch.float64), alpha, before)
            density = posterior.log_prob(grid).exp()
            highest = max(highest, float(density.max()))
            bottom.plot(grid, density, color=COLORS[3], lw=2, label=r"$q(x_{t-1} \mid x_t, x_0)$")
            title = (f"$x_t$ = {xt:.2f}; given $x_0$: mean {float(posterior.mean):.2f}, "
                     f"sd {float(posterior.stddev):.2f}")
        reverse = r"$q(x_0 \mid x_1)$" if t == 1 else r"$q(x_{t-1} \mid x_t)$"
        bottom.plot(grid, true_step, color=COLORS[2], lw=1.6, ls="-.", label=reverse)
        bottom.set_ylim(0, 1.6 * highest)
        bottom.set_xlim(low, high)
        # the two points, marked on the axis and named in the legend as the panel's title names them (x_1 at
        # t = 1); x_t on top, since it can lie within a marker's width of x_0 (2.83 beside 3 at t = 1)
        bottom.plot([x0], [0], "o", color="black", ms=7, clip_on=False, zorder=4, label="$x_0$")
        bottom.plot([xt], [0], "^", color=COLORS[0], ms=8, mec="white", mew=0.8, clip_on=False, zorder=5,
                    label="$x_1$" if t == 1 else "$x_t$")
        bottom.set_xlabel("$x$")
        bottom.set_ylabel("density")
        bottom.set_title(title)
        # the legend on the side away from the curves
        peak = float(grid[true_step.argmax()])
        bottom.legend(loc="upper left" if peak > (low + high) / 2 else "upper right", handlelength=1.5,
                      labelspacing=0.3)

    return Explorer(draw, controls, figsize=(6.4, 5.0))
