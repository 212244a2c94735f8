"""Chapter 9's explorer (lvm.explorers.diffusion), driven as a student drives it: each slider redraws, and
the curves it draws are the densities they claim to be, checked against computations that do not use it."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import lvm
from lvm import diffusion
from lvm.explorers.diffusion import diffusion_explorer
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")

# chapter 9's data: chapter 1's mixture of three Gaussians
MIXTURE = lvm.GaussianMixture([0.3, 0.5, 0.2], [-2.5, 0.5, 3.0], [0.6, 0.9, 0.5])


def curve(ax, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The x and y data of the line labelled ``label`` on ``ax``."""
    lines = [line for line in ax.get_lines() if line.get_label() == label]
    found = [line.get_label() for line in ax.get_lines()]
    assert len(lines) == 1, f"expected one line labelled {label!r}, found {found}"
    return np.asarray(lines[0].get_xdata(), dtype=float), np.asarray(lines[0].get_ydata(), dtype=float)


def moments(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    mass = np.trapezoid(y, x)
    mean = np.trapezoid(y * x, x) / mass
    return float(mean), float(np.trapezoid(y * (x - mean) ** 2, x) / mass)


def test_both_sliders_redraw_the_figure():
    explorer = diffusion_explorer(MIXTURE)
    assert explorer.controls["t"].min == 1 and explorer.controls["t"].max == 10
    assert_control_changes_drawing(explorer, "t", 4)
    assert_control_changes_drawing(explorer, "t", 1)  # t = 1: the step back given x_0 is x_0 itself
    assert_control_changes_drawing(explorer, "x0", -2.0)
    stand_in = explorer.stand_in([{"t": 1}, {"t": 10}])
    titles = [sub._suptitle.get_text() for sub in stand_in.subfigs if sub.get_visible()]
    assert titles == ["step t = 1", "step t = 10"]


def test_the_plotted_noised_marginal_is_the_histogram_of_noised_samples():
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3)
    explorer.controls["t"].value = 3
    x, y = curve(explorer.figure.axes[0], "$q(x_t)$")
    # noise the data as the encoder does, with ᾱ_3 = (10⁻³)^(3/10) written out, not taken from lvm
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    z = torch.multinomial(MIXTURE.weights, n, replacement=True, generator=gen)
    x0 = MIXTURE.means[z] + MIXTURE.stds[z] * torch.randn(n, generator=gen)
    keep = 1e-3 ** (3 / 10)
    xt = (math.sqrt(keep) * x0 + math.sqrt(1 - keep) * torch.randn(n, generator=gen)).numpy()
    edges = np.linspace(-4, 4, 33)  # bins 0.25 wide
    counts, _ = np.histogram(xt, bins=edges)
    share = counts / n
    plotted = np.array([np.trapezoid(y[(x >= a - 1e-9) & (x <= b + 1e-9)], x[(x >= a - 1e-9) & (x <= b + 1e-9)])
                        for a, b in zip(edges[:-1], edges[1:])])  # the plotted curve's mass in each bin
    se = np.sqrt(plotted * (1 - plotted) / n)
    # the largest standardised difference over the 32 bins is 2.0; the marginal's scale ᾱ_t x_0 in place of
    # √ᾱ_t x_0 puts a bin 50 standard errors off, leaving ᾱ_t σ_n² out of its variance 6.9
    assert np.max(np.abs(share - plotted) / se) < 5
    assert abs(np.trapezoid(y, x) - 1) < 1e-3  # the curve holds the whole density on the plotted range


def test_the_plotted_posterior_has_the_closed_form_mean_and_variance_and_the_reverse_step_is_bayes():
    noise = -0.7
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, noise=noise, x0=3.0)
    assert explorer.controls["x0"].value == 3.0
    explorer.controls["t"].value = 4
    bottom = explorer.figure.axes[1]
    alpha = 1e-3 ** (1 / 10)
    before, now = alpha**3, alpha**4  # ᾱ_3 and ᾱ_4
    xt = math.sqrt(now) * 3.0 + math.sqrt(1 - now) * noise
    # eq. (diffusion-posterior), written out here
    mean = (math.sqrt(before) * (1 - alpha) * 3.0 + math.sqrt(alpha) * (1 - before) * xt) / (1 - now)
    variance = (1 - alpha) * (1 - before) / (1 - now)
    plotted = moments(*curve(bottom, r"$q(x_{t-1} \mid x_t, x_0)$"))
    # 1e-9 apart; ᾱ_t in place of ᾱ_{t-1} in the formula would put the mean 0.16 off
    assert plotted == pytest.approx((mean, variance), abs=1e-6)
    library = diffusion.forward_posterior(torch.tensor(3.0, dtype=torch.float64),
                                          torch.tensor(xt, dtype=torch.float64), alpha, before)
    assert plotted == pytest.approx((float(library.mean), float(library.variance)), abs=1e-6)
    assert f"mean {mean:.2f}, sd {math.sqrt(variance):.2f}" in bottom.get_title()
    assert f"$x_t$ = {xt:.2f}" in bottom.get_title()
    # the true reverse step, by Bayes' rule on the grid, has the moments of lvm's best Gaussian reverse step
    # (eq. denoised-moments): variance 0.601; leaving out Var[x_0 | x_t] would make it σ̃_4² = 0.465
    step = diffusion.reverse_step(MIXTURE.double(), torch.tensor([xt], dtype=torch.float64),
                                  torch.tensor(alpha, dtype=torch.float64), before)
    true = moments(*curve(bottom, r"$q(x_{t-1} \mid x_t)$"))
    assert true == pytest.approx((float(step.mean[0]), float(step.variance[0])), abs=1e-6)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="mixture"):
        diffusion_explorer(lvm.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="mixture"):
        diffusion_explorer("not a mixture")
    with pytest.raises(ValueError, match="steps"):
        diffusion_explorer(MIXTURE, steps=0)
    with pytest.raises(ValueError, match="final"):
        diffusion_explorer(MIXTURE, final=1.5)
    with pytest.raises(ValueError, match="x_range"):
        diffusion_explorer(MIXTURE, x_range=(2.0, -2.0))
    with pytest.raises(ValueError, match="x0"):
        diffusion_explorer(MIXTURE, x0=9.0)
    with pytest.raises(ValueError, match="noise"):
        diffusion_explorer(MIXTURE, noise=float("nan"))
    explorer = diffusion_explorer(MIXTURE, steps=5)
    with pytest.raises(ValueError, match="t must"):
        explorer.draw(Figure(), t=6, x0=0.0)
    with pytest.raises(ValueError, match="x0"):
        explorer.draw(Figure(), t=2, x0=float("inf"))


def test_the_two_steps_back_draw_closer_at_the_steps_the_chapter_shows():
    # chapter 9's stand-in (x_0 = 3; t = 3, 6, 10) says the lower panel's two curves lie closer at each step
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=3.0)
    distances = []
    for t in (3, 6, 10):
        explorer.controls["t"].value = t
        bottom = explorer.figure.axes[1]
        x, given = curve(bottom, r"$q(x_{t-1} \mid x_t, x_0)$")
        _, true = curve(bottom, r"$q(x_{t-1} \mid x_t)$")
        distances.append(0.5 * np.trapezoid(np.abs(given - true), x))  # total variation
    # 0.137, 0.110 and 0.035; not at every step (0.117 at t = 2, 0.144 at t = 4), so only these are claimed
    assert distances[0] > distances[1] > distances[2]
