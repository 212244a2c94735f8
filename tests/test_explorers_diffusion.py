"""Chapter 9's explorer (lvm.explorers.diffusion), driven as a student drives it: each slider redraws, and
the curves it draws are the densities they claim to be, checked against computations that do not use it."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy.integrate import trapezoid  # np.trapezoid is NumPy 2 only; the package allows numpy>=1.24

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
    mass = trapezoid(y, x)
    mean = trapezoid(y * x, x) / mass
    return float(mean), float(trapezoid(y * (x - mean) ** 2, x) / mass)


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
    plotted = np.array([trapezoid(y[(x >= a - 1e-9) & (x <= b + 1e-9)], x[(x >= a - 1e-9) & (x <= b + 1e-9)])
                        for a, b in zip(edges[:-1], edges[1:])])  # the plotted curve's mass in each bin
    se = np.sqrt(plotted * (1 - plotted) / n)
    # the largest standardised difference over the 32 bins is 2.0; the marginal's scale ᾱ_t x_0 in place of
    # √ᾱ_t x_0 puts a bin 50 standard errors off, leaving ᾱ_t σ_n² out of its variance 6.9
    assert np.max(np.abs(share - plotted) / se) < 5
    assert abs(trapezoid(y, x) - 1) < 1e-3  # the curve holds the whole density on the plotted range


def test_the_reference_curve_is_the_standard_normal_and_q_is_close_to_it_from_step_6():
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3)
    x, y = curve(explorer.figure.axes[0], r"$\mathcal{N}(0, 1)$")
    assert np.allclose(y, np.exp(-x**2 / 2) / math.sqrt(2 * math.pi), atol=1e-7)  # N(0, 1.5²) is 0.13 off
    explorer.controls["t"].value = 6
    x, q = curve(explorer.figure.axes[0], "$q(x_t)$")
    total_variation = 0.5 * trapezoid(np.abs(q - np.exp(-x**2 / 2) / math.sqrt(2 * math.pi)), x)
    # the text: by t = 6, q(x_t) is hard to tell from N(0, 1). Its total-variation distance is 0.013 there;
    # at t = 3 it is 0.095, and the data themselves are 0.43 away
    assert total_variation < 0.03


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
    # the markers on the axis: x_t itself (0.08 here), not its noiseless mean √ᾱ_t x_0 (0.75)
    assert curve(bottom, "$x_t$")[0] == pytest.approx([xt], abs=1e-12)
    assert curve(bottom, "$x_0$")[0].tolist() == [3.0]
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


def test_at_step_1_the_marginal_keeps_one_peak_of_the_data_s_three():
    # chapter 9 says that at t = 1 q(x_t) keeps only traces of the data's modes: one peak, near 0.4, and a shoulder
    # on each side
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=3.0)
    top = explorer.figure.axes[0]

    def other_peaks(y):
        """How far each local maximum of ``y`` but the highest rises above the lowest point between the two."""
        highest = int(np.argmax(y))
        tops = [i for i in range(1, len(y) - 1) if y[i - 1] < y[i] >= y[i + 1] and i != highest]
        return [y[i] - y[min(i, highest):max(i, highest) + 1].min() for i in tops]

    x, y = curve(top, "$q(x_t)$")
    assert abs(x[np.argmax(y)] - 0.4) < 0.05
    # the one other local maximum (x = -1.34) rises 0.09% of the peak's height above its dip; drawing q(x_{t-1}),
    # the data itself, would show two more modes rising 65% and 40%; a marginal variance ᾱ_t σ_n for ᾱ_t σ_n²
    # a bump rising 1.2%
    assert all(rise < 0.005 * y.max() for rise in other_peaks(y))
    # the shoulders: three inflection points on each side of the peak (at -2.53, -1.24, -0.27 and 1.19, 1.58,
    # 2.71), where a single bell has one; q(x_2), or a marginal with ᾱ_t x_0 for √ᾱ_t x_0, has one on each side
    curving = np.sign(np.diff(y, 2))  # the sign of the second difference, at x[1:-1]
    bends = x[1:-2][curving[:-1] != curving[1:]]
    assert np.sum(bends < x[np.argmax(y)]) == 3 and np.sum(bends > x[np.argmax(y)]) == 3
    _, data = curve(top, "data")
    assert sum(rise > 0.3 * data.max() for rise in other_peaks(data)) == 2  # the data's three modes


def test_at_step_1_the_step_back_given_x0_is_x0_and_the_true_one_is_lvm_s_last_step():
    noise = 1.0
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, noise=noise, x0=3.0)
    assert explorer.controls["t"].value == 1
    bottom = explorer.figure.axes[1]
    alpha = 1e-3 ** (1 / 10)  # α_1 = ᾱ_1
    x1 = math.sqrt(alpha) * 3.0 + math.sqrt(1 - alpha) * noise
    x, _ = curve(bottom, r"$q(x_0 \mid x_1, x_0)$")
    assert np.all(x == 3.0)  # a vertical line at x_0
    # lvm's last step p(x_0 | x_1), with ᾱ_0 = 1: mean 3.093, variance 0.333, 1e-4 from the plotted curve's,
    # which the plotted range cuts at x = -5; the data diffused to ᾱ_1 as q(x_0) in Bayes' rule (the prior of
    # step 2 moved down a step) draws mean 2.715, variance 0.480
    step = diffusion.reverse_step(MIXTURE.double(), torch.tensor([x1], dtype=torch.float64),
                                  torch.tensor(alpha, dtype=torch.float64), 1.0)
    true = moments(*curve(bottom, r"$q(x_0 \mid x_1)$"))
    assert true == pytest.approx((float(step.mean[0]), float(step.variance[0])), abs=1e-3)
    # the two points on the axis, named as the panel names them
    assert curve(bottom, "$x_0$")[0].tolist() == [3.0]
    assert curve(bottom, "$x_1$")[0] == pytest.approx([x1], abs=1e-12)
    assert f"$x_1$ = {x1:.2f}" in bottom.get_title()



def test_the_default_noise_is_epsilon_1_as_the_chapter_reads_it():
    # Fig. 9.1's caption says ε = 1, its alt text puts x_1 at 2.83, and the total variation table of chapter 9
    # is computed with ε = 1; the chapter passes noise=1.0, and a reader who builds the explorer without it must
    # see the same figure. x_1 = √ᾱ_1 3 + √(1 − ᾱ_1) with ᾱ_1 = (10⁻³)^(1/10): 2.83; a default of 0.8 gives 2.69
    explorer = diffusion_explorer(MIXTURE, x0=3.0)
    assert explorer.controls["t"].value == 1
    title = explorer.figure.axes[1].get_title()
    assert "$x_1$ = 2.83" in title, title
    explicit = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=3.0, noise=1.0)
    assert explicit.figure.axes[1].get_title() == title

def test_the_two_steps_back_first_part_then_draw_closer_at_every_step():
    # chapter 9 says: with x_0 = 3 the lower panel's two curves move slightly apart from t = 2 to 4, and from
    # t = 4 on lie closer at every step
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=3.0)
    distances = []
    for t in range(2, 11):
        explorer.controls["t"].value = t
        bottom = explorer.figure.axes[1]
        x, given = curve(bottom, r"$q(x_{t-1} \mid x_t, x_0)$")
        _, true = curve(bottom, r"$q(x_{t-1} \mid x_t)$")
        distances.append(0.5 * trapezoid(np.abs(given - true), x))  # total variation
    rising, falling = np.diff(distances[:3]), np.diff(distances[2:])
    # 0.117, 0.137, 0.144, then 0.133, 0.110, 0.086, 0.065, 0.048, 0.035. With ᾱ_t for ᾱ_{t-1} in the true
    # step's q(x_{t-1}) they fall from t = 2 (0.252, 0.230, 0.200, ...); with ᾱ_t x_0 for √ᾱ_t x_0 in x_t too
    # (0.256, 0.221, ...); with ᾱ_t for ᾱ_{t-1} in eq. (diffusion-posterior) they fall, then rise (0.093, 0.049,
    # 0.070, 0.077, 0.070, ...)
    assert np.all(rising > 0) and np.all(falling < 0)


def test_the_steps_back_are_densities_and_every_curve_fits_inside_its_panel():
    # the moment checks above are blind to scale: a true step drawn as 1.3 times its density (normalised by a
    # sum and a wrong width) has the same mean and variance; and a panel whose y-limit is squeezed clips the
    # curves the text describes
    for x0 in (3.0, -2.0):  # the stand-in's x_0, whose true step peaks on the right, and one on the left
        explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=x0)
        for t in (1, 2, 4, 10):
            explorer.controls["t"].value = t
            top, bottom = explorer.figure.axes[:2]
            reverse = r"$q(x_0 \mid x_1)$" if t == 1 else r"$q(x_{t-1} \mid x_t)$"
            steps_back = [reverse] if t == 1 else [reverse, r"$q(x_{t-1} \mid x_t, x_0)$"]
            for label in steps_back:
                x, y = curve(bottom, label)
                # each holds its whole mass on the plotted range: within 1e-5 of 1 (the step given x_0 loses
                # 9e-6 beyond x = 5 at x_0 = 3, t = 2); drawn 1.3 times too tall, the true step holds 1.3
                assert abs(trapezoid(y, x) - 1) < 1e-3, (x0, t, label)
            for ax in (top, bottom):
                # the curves of 801 points (the markers on the axis and the vertical line at t = 1 are not)
                tallest = max(float(np.max(line.get_ydata())) for line in ax.get_lines()
                              if len(line.get_xdata()) > 2)
                bottom_limit, top_limit = ax.get_ylim()
                # the tops lie 1.35 (above) and 1.6 (below) times the tallest curve; squeezed to 0.9 times, or
                # set above from the data's density alone (0.30, under N(0, 1)'s peak of 0.40), they clip a curve
                assert bottom_limit == 0 and top_limit >= tallest, (x0, t, ax.get_ylim(), tallest)


def test_the_titles_and_line_styles_are_those_the_caption_names():
    # Fig. 9.1's caption and alt text tell the curves apart by style alone: the data dotted and black, N(0, 1)
    # dashed grey, q(x_t) solid blue, the step back given x_0 solid vermilion-orange (a vertical line at t = 1),
    # the true step dash-dotted green, x_0 a black circle and x_t a blue triangle; and the text reads ᾱ_t from
    # the top title. Each line's style is checked for what the caption says, and the two steps back for being
    # told apart (drawn in one colour and style they are indistinguishable).
    from matplotlib.colors import to_rgb

    def style(ax, label):
        lines = [line for line in ax.get_lines() if line.get_label() == label]
        assert len(lines) == 1, label
        line = lines[0]
        return line.get_linestyle(), to_rgb(line.get_color()), line.get_marker()

    blue, orange, green = to_rgb("#0072B2"), to_rgb("#D55E00"), to_rgb("#009E73")
    black, grey = to_rgb("black"), to_rgb("0.3")
    explorer = diffusion_explorer(MIXTURE, steps=10, final=1e-3, x0=3.0)
    for t in (1, 4):
        explorer.controls["t"].value = t
        top, bottom = explorer.figure.axes[:2]
        # ᾱ_t written out; the module's format is .3g. ᾱ_{t-1} in its place reads "1" at t = 1 and 0.126 at t = 4
        assert f"= {1e-3 ** (t / 10):.3g} of the signal" in top.get_title(), (t, top.get_title())
        assert style(top, "data")[:2] == (":", black)  # solid or dashed data would read as q(x_t) or N(0, 1)
        assert style(top, r"$\mathcal{N}(0, 1)$")[:2] == ("--", grey)  # dotted, it would read as the data
        assert style(top, "$q(x_t)$")[:2] == ("-", blue)
        given = r"$q(x_0 \mid x_1, x_0)$" if t == 1 else r"$q(x_{t-1} \mid x_t, x_0)$"
        reverse = r"$q(x_0 \mid x_1)$" if t == 1 else r"$q(x_{t-1} \mid x_t)$"
        assert style(bottom, given)[:2] == ("-", orange)
        assert style(bottom, reverse)[:2] == ("-.", green)  # the same colour and style as `given` fails here
        assert style(bottom, "$x_0$") == ("None", black, "o")
        assert style(bottom, "$x_1$" if t == 1 else "$x_t$") == ("None", blue, "^")
