"""The sampling distributions of the two gradient estimators, at S samples per estimate (chapter 5).

:func:`estimator_explorer` has three controls: the number of samples S averaged into one estimate, whether the
score-function estimator subtracts the baseline c = E_q[h], and the standard deviation σ of q = N(μ, σ²). For
the chapter's running example h(z) = z², whose exact gradient is ∂/∂μ E_q[z²] = 2μ, it shows two histograms on
one horizontal axis: the S-sample averages of the score-function estimate (h(z) − c) ∂ log q / ∂μ
(eq. ``score-function``, c = 0 or c = E_q[h] = μ² + σ², eq. ``score-baseline``) and of the reparameterised
estimate h'(z) = 2z (eq. ``reparam-gradient``), each over many repeated draws, with the exact gradient as a
dotted line. Each panel's title gives the variance of all the averages drawn (``repeats`` of them, 4,000 by
default, including those off the plot) and its exact value, the per-sample variance divided by S
(:func:`exact_variance`): eq. ``variance-vs-sigma`` without a baseline; with c = E_q[h], the second moment of
exercise ``ex-optimal-baseline`` (a parabola in c) at that c, 12μ² + 10σ², less the squared mean (2μ)², that
is 8μ² + 10σ².

The draws come from :func:`lvm.gradients.score_function_gradients` and
:func:`lvm.gradients.reparameterised_gradients`, for ``repeats`` copies of (μ, σ) at once; both estimators use
the same noise ε. A setting's draws are computed the first time it is shown (tens of milliseconds; about a
second for the first draws with the baseline in a session) and kept, so a redraw only draws two histograms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_int, check_real
from ..gradients import reparameterised_gradients, score_function_gradients
from ..plot import COLORS
from ..widgets import Explorer

__all__ = ["BASELINES", "DEFAULT_SAMPLE_SIZES", "DEFAULT_SIGMAS", "EstimatorExplorer", "estimator_draws",
           "estimator_explorer", "exact_variance"]

DEFAULT_SAMPLE_SIZES = (1, 2, 4, 8, 16, 32, 64)
DEFAULT_SIGMAS = tuple(round(0.2 + 0.1 * i, 1) for i in range(11))  # 0.2, 0.3, ..., 1.2
BASELINES = ("none", "E[h]")
ESTIMATORS = ("score function", "reparameterised")


def exact_variance(estimator: str, mu: float, sigma: float, n_samples: int = 1, baseline: str = "none") -> float:
    """The exact variance of the average of ``n_samples`` estimates of ∂/∂μ E_q[z²], q = N(mu, sigma²).

    Per sample: 4σ² for the reparameterised estimate 2z and μ⁴/σ² + 14μ² + 15σ² for the score-function
    estimate z² ε/σ (eq. ``variance-vs-sigma``); 8μ² + 10σ² for the score-function estimate with the
    baseline c = E_q[z²] = μ² + σ², (z² − c) ε/σ (the second moment of exercise ``ex-optimal-baseline``, a
    parabola in c, at c = E_q[h], 12μ² + 10σ², less (2μ)²; from the same Gaussian moments E[ε²] = 1,
    E[ε⁴] = 3, E[ε⁶] = 15). The average of
    ``n_samples`` independent estimates has 1/n_samples of that. A baseline does not change the
    reparameterised estimate.
    """
    estimator = _check_choice(estimator, "estimator", ESTIMATORS)
    baseline = _check_choice(baseline, "baseline", BASELINES)
    mu = check_real(mu, "mu")
    sigma = _check_sigma(sigma)
    n_samples = check_int(n_samples, "n_samples", 1)
    if estimator == "reparameterised":
        per_sample = 4 * sigma**2
    elif baseline == "none":
        per_sample = mu**4 / sigma**2 + 14 * mu**2 + 15 * sigma**2
    else:
        per_sample = 8 * mu**2 + 10 * sigma**2
    return per_sample / n_samples


def estimator_draws(mu: float, sigma: float, n_samples: int, baseline: str = "none", repeats: int = 4000,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """``repeats`` independent S-sample averages of each estimate of ∂/∂μ E_q[z²], q = N(mu, sigma²).

    Returns ``{"score function": [repeats], "reparameterised": [repeats]}`` (float64). The per-sample
    estimates come from :func:`lvm.gradients.score_function_gradients` (with ``baseline=mu² + sigma²`` when
    ``baseline`` is ``"E[h]"``) and :func:`lvm.gradients.reparameterised_gradients`, called on ``repeats`` copies of
    (mu, sigma) with ``n_samples`` draws each and the same integer ``seed``, so the two estimators see the same
    noise ε, and so do the score function with and without its baseline.
    """
    baseline = _check_choice(baseline, "baseline", BASELINES)
    mu = check_real(mu, "mu")
    sigma = _check_sigma(sigma)
    n_samples = check_int(n_samples, "n_samples", 1)
    repeats = check_int(repeats, "repeats", 2)
    seed = check_int(seed, "seed", 0)
    mus = torch.full((repeats,), mu, dtype=torch.float64)
    sigmas = torch.full((repeats,), sigma, dtype=torch.float64)
    c = mu**2 + sigma**2 if baseline == "E[h]" else None
    with torch.no_grad():
        score, _ = score_function_gradients(_square, mus, sigmas, n_samples, generator=seed, baseline=c)
    reparam, _ = reparameterised_gradients(_square, mus, sigmas, n_samples, generator=seed)
    return {"score function": score.mean(0), "reparameterised": reparam.detach().mean(0)}


class EstimatorExplorer(Explorer):
    """The :class:`lvm.widgets.Explorer` of :func:`estimator_explorer`: its ``draws(n_samples, baseline, sigma)``
    returns the plotted averages of a setting, as :func:`estimator_draws` does."""

    draws: Callable[[int, str, float], dict[str, torch.Tensor]]


def estimator_explorer(mu: float = 0.8, sigma: float = 0.6, sample_sizes=DEFAULT_SAMPLE_SIZES,
                       sigmas=DEFAULT_SIGMAS, repeats: int = 4000, seed: int = 0,
                       x_range: tuple[float, float] | None = None) -> EstimatorExplorer:
    """Controls for S, the baseline and σ; histograms of both gradient estimators against the exact one.

    For h(z) = z² and q = N(mu, σ²), the top panel is the histogram of ``repeats`` S-sample averages of the
    score-function estimate of ∂/∂μ E_q[z²] (with the baseline c = E_q[h] when it is on), the bottom panel
    that of the reparameterised estimate, from :func:`estimator_draws`; a dotted line marks the exact
    gradient 2μ. Each panel's title gives the variance of all ``repeats`` averages (including those off the
    plot, which can carry most of it) and the exact one (:func:`exact_variance`). Both panels share one
    horizontal axis, the same for every setting (by default 2μ ± 7.5), so the histograms visibly narrow as S
    grows; where 0.5% of the draws or more lie off it, the panel says what share (to 0.1%). The dotted line
    is labelled "exact gradient" at the top of the bottom panel, on its right unless the line stands in the
    right 40% of the axis, then on its left.

    Args:
        mu: q's mean μ, a finite number; the same for every setting.
        sigma: the initial σ, one of ``sigmas``.
        sample_sizes: the numbers of samples S per estimate the slider offers, increasing positive integers.
        sigmas: the values of σ the slider offers, increasing positive numbers.
        repeats: the number of averaged estimates in each histogram, at least 2.
        seed: the integer seed of the draws (the same for every setting).
        x_range: the horizontal axis (low, high), low < high; ``None`` for 2μ ± 7.5.

    Returns:
        An :class:`EstimatorExplorer` (an :class:`lvm.widgets.Explorer`) with controls ``n_samples`` (a
        ``SelectionSlider`` over ``sample_sizes``), ``baseline`` (``ToggleButtons``, ``"none"`` or
        ``"E[h]"``) and ``sigma`` (a ``SelectionSlider`` over ``sigmas``). Its ``draws(n_samples, baseline,
        sigma)`` returns the plotted averages of a setting, as :func:`estimator_draws` does.
    """
    import ipywidgets as widgets

    mu = check_real(mu, "mu")
    sample_sizes = _check_increasing(sample_sizes, "sample_sizes", integers=True)
    sigmas = _check_increasing(sigmas, "sigmas", integers=False)
    sigma = _check_sigma(sigma)
    if sigma not in sigmas:
        raise ValueError(f"sigma must be one of sigmas {sigmas}, got {sigma}")
    repeats = check_int(repeats, "repeats", 2)
    seed = check_int(seed, "seed", 0)
    gradient = 2 * mu
    if x_range is None:
        x_range = (gradient - 7.5, gradient + 7.5)
    x_range = _check_range(x_range)
    edges = torch.linspace(x_range[0], x_range[1], 151, dtype=torch.float64).tolist()
    # The dotted line's label goes right of it unless the line is in the right 40% of the axis.
    label_right = gradient < x_range[0] + 0.6 * (x_range[1] - x_range[0])
    cache: dict[tuple, dict[str, torch.Tensor]] = {}

    def draws(n_samples, baseline, sigma):
        key = (n_samples, baseline, sigma)
        if key not in cache:
            cache[key] = estimator_draws(mu, sigma, n_samples, baseline, repeats, seed)
        return cache[key]

    def draw(fig, n_samples, baseline, sigma):
        averages = draws(n_samples, baseline, sigma)
        axes = fig.subplots(2, 1, sharex=True)
        for ax, name, color in zip(axes, ESTIMATORS, COLORS):
            values = averages[name]
            exact = exact_variance(name, mu, sigma, n_samples, baseline)
            ax.hist(values.numpy(), bins=edges, density=True, histtype="stepfilled", color=color, alpha=0.8)
            ax.axvline(gradient, color="black", ls=":", lw=1.4)
            ax.set_title(f"{name}: variance {_number(float(values.var()))}, exact {_number(exact)}",
                         fontsize=9, loc="left")
            ax.set_ylabel("density")
            ax.set_ylim(0, 1.35 * ax.get_ylim()[1])  # room above the bars for the labels
            off = float(((values < x_range[0]) | (values > x_range[1])).double().mean())
            if off >= 0.005:  # in the corner away from the line's label (upper right in the top panel)
                x = 0.99 if ax is axes[0] or not label_right else 0.01
                ax.text(x, 0.97, f"{off:.1%} of the draws\nlie off the plot", transform=ax.transAxes,
                        ha="right" if x > 0.5 else "left", va="top", fontsize=9)
        axes[0].tick_params(labelbottom=False)
        # The dotted line's label, beside its top: right of it unless it is in the right 40% of the axis.
        axes[1].annotate("exact gradient", (gradient, 0.97), xycoords=axes[1].get_xaxis_transform(),
                         xytext=(4 if label_right else -4, 0), textcoords="offset points",
                         ha="left" if label_right else "right", va="top", fontsize=9, annotation_clip=True)
        axes[1].set_xlim(*x_range)
        axes[1].set_xlabel(r"mean of $S$ estimates of $\partial_\mu \mathbb{E}[z^2]$")

    controls = {
        "n_samples": widgets.SelectionSlider(options=list(sample_sizes), value=sample_sizes[0], description="S"),
        "baseline": widgets.ToggleButtons(options=list(BASELINES), value="none", description="baseline"),
        "sigma": widgets.SelectionSlider(options=list(sigmas), value=sigma, description="σ"),
    }
    explorer = EstimatorExplorer(draw, controls, figsize=(6.4, 4.4))
    explorer.draws = draws
    return explorer


def _square(z: torch.Tensor) -> torch.Tensor:
    return z**2


def _number(value: float) -> str:
    """Three significant figures from 0.1 up, three decimals from 0.01, two significant figures below."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    if value >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2g}"


def _check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_sigma(sigma) -> float:
    sigma = check_real(sigma, "sigma")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return sigma


def _check_increasing(values, name: str, integers: bool) -> tuple:
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}") from None
    if not values:
        raise ValueError(f"{name} must hold at least one value")
    if integers:
        values = tuple(check_int(v, name, 1) for v in values)
    else:
        values = tuple(check_real(v, name) for v in values)
        if values[0] <= 0:
            raise ValueError(f"{name} must hold positive numbers, got {values[0]}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"{name} must be strictly increasing, got {values}")
    return values


def _check_range(x_range) -> tuple[float, float]:
    try:
        low, high = x_range
    except (TypeError, ValueError):
        raise ValueError(f"x_range must be a pair (low, high), got {x_range!r}") from None
    low, high = check_real(low, "x_range"), check_real(high, "x_range")
    if not low < high:
        raise ValueError(f"x_range must have low < high, got {(low, high)}")
    return low, high
