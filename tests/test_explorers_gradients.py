"""Chapter 5's explorer: the variances it writes on its panels are those of all the draws it makes (those
off the plot included), and those draws have the variances that Gauss-Hermite quadrature gives the two
estimators, within Monte Carlo error."""

from __future__ import annotations

import re
import time

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from numpy.polynomial.hermite_e import hermegauss

from lvm.explorers.gradients import estimator_draws, estimator_explorer, exact_variance
from lvm.plot import COLORS
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")

MU = 0.8
TITLE = re.compile(r"^(score function|reparameterised): variance ([0-9.e-]+), exact ([0-9.e-]+)$")


def quadrature_moments(estimator: str, sigma: float, baseline: str) -> tuple[float, float]:
    """Variance and fourth central moment of ONE estimate of d/dμ E[z²], z = μ + σε, by Gauss-Hermite
    quadrature on 12 nodes (exact: the estimates are polynomials of degree 3 in ε, their fourth powers 12)."""
    nodes, weights = hermegauss(12)
    weights = weights / weights.sum()
    z = MU + sigma * nodes
    if estimator == "reparameterised":
        estimate = 2 * z
    else:
        c = MU**2 + sigma**2 if baseline == "E[h]" else 0.0
        estimate = (z**2 - c) * nodes / sigma  # (h(z) - c) times the score ε/σ
    centred = estimate - weights @ estimate
    return float(weights @ centred**2), float(weights @ centred**4)


def averaged_moments(v: float, m4: float, s: int) -> tuple[float, float]:
    """Variance and fourth central moment of the mean of s independent draws with variance v and M₄ m4."""
    return v / s, (m4 + 3 * (s - 1) * v**2) / s**3


def variance_se(v: float, m4: float, n: int) -> float:
    """Standard error of the unbiased sample variance of n draws with variance v and fourth central moment m4."""
    return float(np.sqrt((m4 - v**2 * (n - 3) / (n - 1)) / n))


def panel_titles(figure) -> dict[str, tuple[str, str]]:
    titles = {}
    for ax in figure.axes:
        match = TITLE.match(ax.get_title(loc="left"))
        assert match, ax.get_title(loc="left")
        titles[match.group(1)] = (match.group(2), match.group(3))
    return titles


@pytest.mark.parametrize("n_samples, baseline, sigma", [(1, "none", 0.6), (4, "E[h]", 0.3), (16, "none", 1.0)])
def test_the_variances_on_the_panels_are_those_of_all_the_draws_and_match_quadrature(n_samples, baseline,
                                                                                     sigma):
    repeats = 4000  # the explorer's default
    explorer = estimator_explorer(mu=MU, repeats=repeats)
    explorer.controls["n_samples"].value = n_samples
    explorer.controls["baseline"].value = baseline
    explorer.controls["sigma"].value = sigma
    titles = panel_titles(explorer.figure)
    # Both panels share one horizontal axis, the default 2μ ± 7.5 = (-5.9, 9.1). Without sharex the top
    # panel would take matplotlib's own limits, the bins' span plus 5% margins: (-6.65, 9.85).
    top, bottom = explorer.figure.axes
    assert top.get_xlim() == bottom.get_xlim() == (2 * MU - 7.5, 2 * MU + 7.5)
    draws = explorer.draws(n_samples, baseline, sigma)
    for name in ("score function", "reparameterised"):
        values = draws[name].numpy()
        assert values.shape == (repeats,)
        measured, written_exact = (float(t) for t in titles[name])
        # What the title writes is the variance of all the draws (to the 3 figures it shows), including those
        # off the plot: at S = 1, σ = 0.6 without a baseline, 4.4% of them, and the variance of the others
        # alone would write 3.70 in place of 14.2.
        assert measured == pytest.approx(values.var(ddof=1), rel=6e-3, abs=1e-4)
        v1, m4_1 = quadrature_moments(name, sigma, baseline)
        v, m4 = averaged_moments(v1, m4_1, n_samples)
        # The exact value it writes is the quadrature's, to the figures shown. Forgetting to divide by S would
        # write 4 or 16 times as much; at S = 4, σ = 0.3 the score function's variance without the baseline
        # in place of the one with it would write 2.5 times as much.
        assert written_exact == pytest.approx(v, rel=6e-3, abs=1e-4)
        # The plotted draws have that variance within 4 standard errors of a sample variance of `repeats`
        # draws (from the exact M₄): 9% of v for the heavy-tailed score function at S = 1 (kurtosis 37),
        # 2% to 5% elsewhere; with seed 0 the deviations are 2.8 SE or less. The per-sample variance (not
        # divided by S) would be 61 to 670 standard errors off at S = 4 and 16; at S = 1 the variance of the
        # reparameterised estimate in place of the score function's, 10.8 times smaller, 9.6 below.
        se = variance_se(v, m4, repeats)
        assert abs(values.var(ddof=1) - v) < 4 * se, (name, values.var(ddof=1), v, se)
        # And its mean is the exact gradient 2μ (unbiased), within 4 standard errors of a mean.
        assert abs(values.mean() - 2 * MU) < 4 * np.sqrt(v / repeats)
    # Each panel's histogram is of its own estimator's draws: its tallest bar is theirs. The two estimators'
    # tallest bars differ by a factor 2.0 to 5.4 in these settings (density 2.09 against 0.39 at S = 1), so
    # a panel plotting the other estimator's draws fails; and it has a dotted vertical line at the exact
    # gradient 2μ = 1.6 (one at μ = 0.8 would fail). Its colour is its estimator's in chapter 5 (figs 5.1 to
    # 5.3 and the alt text of fig 5.4): the score function blue (COLORS[0]) on top, the reparameterised
    # estimator orange (COLORS[1]) below; swapped colours (COLORS[1::-1]) give orange on top and fail.
    edges = np.linspace(2 * MU - 7.5, 2 * MU + 7.5, 151)
    for i, (ax, name) in enumerate(zip(explorer.figure.axes, ("score function", "reparameterised"))):
        assert to_rgb(ax.patches[0].get_facecolor()) == to_rgb(COLORS[i]), name
        values = draws[name].numpy()
        heights, _ = np.histogram(values, bins=edges)
        tallest = heights.max() / (repeats * (edges[1] - edges[0]))  # matplotlib's density: over all draws
        inside = (values >= edges[0]) & (values <= edges[-1])
        tallest *= repeats / inside.sum()  # ... that fall in the bins
        assert max(ax.patches[0].get_xy()[:, 1]) == pytest.approx(tallest), name
        dotted = [line.get_xdata() for line in ax.lines if line.get_linestyle() == ":"]
        assert any(np.allclose(x, [2 * MU, 2 * MU]) for x in dotted), (name, dotted)
    # The bottom panel labels the line to its right, without touching it: the label's left edge is 4 points
    # (5.6 px at the figure's 100 dpi) right of the line. A label centred on the line would start left of
    # it; one put on the left (as testing 1.6 <= the axis's midpoint, 1.5999999999999996, did) 99 px left.
    explorer.figure.draw_without_rendering()  # lay the figure out, as showing it does
    bottom = explorer.figure.axes[1]
    (label,) = [t for t in bottom.texts if t.get_text() == "exact gradient"]
    line_x = bottom.transData.transform((2 * MU, 0))[0]
    left = label.get_window_extent().x0
    assert left - line_x == pytest.approx(4 * explorer.figure.dpi / 72, abs=0.5)


def test_moving_only_s_redraws_the_draws_of_the_new_s_in_the_chapter_stand_in_and_live():
    # Chapter 5's stand-in (fig-grad-explorer): S = 1 and 16, each without and with the baseline, at σ = 0.6.
    # Between its first and third settings, and its second and fourth, only S moves. Each panel must plot the
    # draws of its own S (recomputed here, not read from the explorer), write their variance and write the
    # quadrature's variance divided by S. Draws kept under a key without S (baseline, σ) would put the S = 1
    # histograms in the S = 16 row: titles "variance 14.2, exact 0.969" and "7.77, exact 0.545" there, the
    # measured value 14.6 and 14.3 times the exact one, and bars off by up to 2.08 (see below).
    settings = [(1, "none"), (1, "E[h]"), (16, "none"), (16, "E[h]")]
    edges = np.linspace(2 * MU - 7.5, 2 * MU + 7.5, 151)

    def check_panels(axes, n_samples, baseline):
        for ax, name in zip(axes, ("score function", "reparameterised")):
            values = estimator_draws(MU, 0.6, n_samples, baseline)[name].numpy()
            measured, written_exact = (float(t) for t in panel_titles_of(ax))
            assert measured == pytest.approx(values.var(ddof=1), rel=6e-3, abs=1e-4), (name, n_samples)
            v1, _ = quadrature_moments(name, 0.6, baseline)
            assert written_exact == pytest.approx(v1 / n_samples, rel=6e-3, abs=1e-4), (name, n_samples)
            # The histogram drawn is that of these draws, bar by bar (matplotlib's density counts the
            # draws inside the bins). The S = 1 and S = 16 histograms' tallest differences between bars
            # are 1.07 to 2.08 density units, against a tolerance of 1e-9.
            outline = ax.patches[0].get_xy()
            bars = [y0 for (x0, y0), (x1, y1) in zip(outline, outline[1:]) if y0 == y1 and x1 > x0]
            heights, _ = np.histogram(values, bins=edges, density=True)
            np.testing.assert_allclose(bars, heights, atol=1e-9, err_msg=f"{name}, S = {n_samples}, {baseline}")

    explorer = estimator_explorer(mu=MU, sigma=0.6)
    stand_in = explorer.stand_in([{"n_samples": s, "baseline": b} for s, b in settings], panel_size=(3.3, 3.0))
    panels = [sub for sub in stand_in.subfigs if sub.get_visible()]
    assert len(panels) == 4
    for panel, (n_samples, baseline) in zip(panels, settings):
        check_panels(panel.axes, n_samples, baseline)
        # One horizontal axis for both panels, 2μ ± 7.5 (without sharex the top one's is (-6.65, 9.85)).
        top, bottom = panel.axes
        assert top.get_xlim() == bottom.get_xlim() == (2 * MU - 7.5, 2 * MU + 7.5), (n_samples, baseline)
    # Live: the same four settings reached by moving S alone (1 -> 16), then the baseline, then S (16 -> 1).
    explorer = estimator_explorer(mu=MU, sigma=0.6)
    for n_samples, baseline in [(1, "none"), (16, "none"), (16, "E[h]"), (1, "E[h]")]:
        explorer.controls["n_samples"].value = n_samples
        explorer.controls["baseline"].value = baseline
        check_panels(explorer.figure.axes, n_samples, baseline)
        assert explorer.draws(n_samples, baseline, 0.6)["score function"].var().item() == pytest.approx(
            estimator_draws(MU, 0.6, n_samples, baseline)["score function"].var().item(), rel=1e-12)


def panel_titles_of(ax) -> tuple[str, str]:
    match = TITLE.match(ax.get_title(loc="left"))
    assert match, ax.get_title(loc="left")
    return match.group(2), match.group(3)


def test_the_exact_variances_are_the_closed_forms_and_a_baseline_does_not_touch_the_pathwise_estimate():
    for sigma in (0.2, 0.6, 1.2):
        for name, baseline in (("score function", "none"), ("score function", "E[h]"),
                               ("reparameterised", "none"), ("reparameterised", "E[h]")):
            v, _ = quadrature_moments(name, sigma, baseline)
            assert exact_variance(name, MU, sigma, 8, baseline) == pytest.approx(v / 8, rel=1e-12)
    # The baseline cuts the score function's variance by 44% at the chapter's setting (15.5 to 8.72, a
    # factor 1.78), and the same noise is behind the draws with and without it, so the reparameterised
    # draws are identical.
    assert exact_variance("score function", MU, 0.6) == pytest.approx(15.4978, abs=1e-4)
    assert exact_variance("score function", MU, 0.6, baseline="E[h]") == pytest.approx(8.72)
    plain = estimator_draws(MU, 0.6, 4, "none", repeats=50, seed=3)
    with_baseline = estimator_draws(MU, 0.6, 4, "E[h]", repeats=50, seed=3)
    assert (plain["reparameterised"] == with_baseline["reparameterised"]).all()
    assert not (plain["score function"] == with_baseline["score function"]).any()


@pytest.mark.parametrize("n_samples, baseline, sigma", [(1, "E[h]", 0.6), (16, "E[h]", 1.0), (4, "none", 0.3)])
def test_the_draws_are_the_estimates_recomputed_from_the_same_seeded_noise(n_samples, baseline, sigma):
    # ε as lvm.gradients draws it: [S, repeats] standard normals from a generator seeded with `seed`. The
    # score-function estimate is (z² − c) ε/σ with c = μ² + σ² (or 0), the reparameterised one 2z.
    repeats, seed = 500, 7
    draws = estimator_draws(MU, sigma, n_samples, baseline, repeats=repeats, seed=seed)
    eps = torch.randn((n_samples, repeats), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = MU + sigma * eps
    c = MU**2 + sigma**2 if baseline == "E[h]" else 0.0
    # Exact up to rounding. A baseline c = μ² (σ² dropped from E[h]) would shift each average by σ times
    # the mean of its S values of ε: by 0.44 (S = 1) and 0.16 (S = 16) in the median draw, against 1e-12.
    torch.testing.assert_close(draws["score function"], ((z**2 - c) * eps / sigma).mean(0), rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(draws["reparameterised"], (2 * z).mean(0), rtol=1e-12, atol=1e-12)


def test_the_share_of_draws_off_the_plot_is_written_to_a_tenth_of_a_percent():
    # At S = 4, no baseline, σ = 0.3, 20 of the 4,000 averages (0.5%) lie off the axis 2μ ± 7.5; rounded to
    # whole percents the panel would say "0%".
    explorer = estimator_explorer(mu=MU)
    explorer.controls["n_samples"].value = 4
    explorer.controls["sigma"].value = 0.3
    values = explorer.draws(4, "none", 0.3)["score function"].numpy()
    off = np.mean((values < 2 * MU - 7.5) | (values > 2 * MU + 7.5))
    assert off == pytest.approx(0.005)
    texts = [t.get_text() for t in explorer.figure.axes[0].texts]
    shown = [float(m.group(1)) for m in map(re.compile(r"^([0-9.]+)% of the draws").match, texts) if m]
    assert shown == [0.5], texts
    # The reparameterised averages all lie on the plot: the bottom panel's only text labels the line.
    assert [t.get_text() for t in explorer.figure.axes[1].texts] == ["exact gradient"]
    # Draws off either edge count. With the axis from 0 to 15, at S = 1, no baseline, σ = 0.6, the negative
    # half of the score-function draws (51.1% with seed 0) lies off its left edge and 1.75% of them off its
    # right: the panel says 52.8%; counting only the right edge would say 1.8%, only the left 51.1%.
    explorer = estimator_explorer(mu=MU, x_range=(0.0, 15.0))
    top, bottom = explorer.figure.axes
    assert top.get_xlim() == bottom.get_xlim() == (0.0, 15.0)  # not the default (-5.9, 9.1)
    values = explorer.draws(1, "none", 0.6)["score function"].numpy()
    left, right = np.mean(values < 0.0), np.mean(values > 15.0)
    assert left > 0.45 and right > 0.01
    texts = [t.get_text() for t in explorer.figure.axes[0].texts]
    shown = [float(m.group(1)) for m in map(re.compile(r"^([0-9.]+)% of the draws").match, texts) if m]
    assert len(shown) == 1 and shown[0] == pytest.approx(100 * (left + right), abs=0.05), (texts, left, right)


def test_the_score_function_with_the_baseline_at_one_sample_is_drawn_as_the_chapter_describes_it():
    # Chapter 5's alt text of fig-grad-explorer (seed 0, the default axis 2μ ± 7.5 in bars 0.1 wide): a
    # spike just below zero about 1.3 high, falling to about 0.2 by 1 and staying near that up to a sharp
    # end near 2.8, then a thin tail with a tenth of the draws above 3. The estimate (z² − c) ε/σ is
    # 0.6ε³ + 1.6ε² − 0.6ε here: negative for 0 < ε < 1/3 (down to −0.053), with a local maximum of 2.80 at
    # ε = −1.95. Read as "starting at zero", the tallest bar would be (0, 0.1), 1.02 high.
    explorer = estimator_explorer(mu=MU)
    explorer.controls["baseline"].value = "E[h]"
    top = explorer.figure.axes[0]
    # The stepfilled outline runs along the bars' tops left to right: each bar is a step from (a, h) to
    # (a + 0.1, h).
    outline = top.patches[0].get_xy()
    bars = [(x0, y0) for (x0, y0), (x1, y1) in zip(outline, outline[1:]) if y0 == y1 and x1 > x0]
    left, heights = np.array(bars).T
    assert len(left) == 150 and np.allclose(np.diff(left), 0.1)
    tallest = int(heights.argmax())
    assert left[tallest] == pytest.approx(-0.1) and 1.2 < heights[tallest] < 1.4
    plateau = heights[(left > 0.95) & (left < 2.75)]  # the bars from 1.0 to 2.8
    assert plateau.min() > 0.1 and plateau.max() < 0.3, plateau
    tail = heights[(left > 2.85) & (left < 7.5)]  # from 2.9 up: under a tenth of the plateau's lowest bar
    assert tail.max() < 0.05, tail
    values = explorer.draws(1, "E[h]", 0.6)["score function"].numpy()
    assert 0.09 < np.mean(values > 3) < 0.11


def test_the_line_is_labelled_on_its_left_when_it_stands_in_the_right_of_the_axis():
    # With the axis from -10 to 2.5 the line at 1.6 is 93% of the way across: the label (94 px wide) on its
    # right would run 58 px past the axis; on its left, its right edge is 4 points (5.6 px) short of the line.
    explorer = estimator_explorer(mu=MU, x_range=(-10.0, 2.5))
    explorer.figure.draw_without_rendering()
    bottom = explorer.figure.axes[1]
    (label,) = [t for t in bottom.texts if t.get_text() == "exact gradient"]
    line_x = bottom.transData.transform((2 * MU, 0))[0]
    assert line_x - label.get_window_extent().x1 == pytest.approx(4 * explorer.figure.dpi / 72, abs=0.5)


def test_every_control_redraws_cheaply_and_the_stand_in_titles_each_setting():
    start = time.perf_counter()
    explorer = estimator_explorer()
    assert time.perf_counter() - start < 5.0
    assert_control_changes_drawing(explorer, "n_samples", 16)
    assert_control_changes_drawing(explorer, "baseline", "E[h]")
    assert_control_changes_drawing(explorer, "sigma", 0.3)
    start = time.perf_counter()
    explorer.controls["n_samples"].value = 64  # a setting not drawn before: its draws are computed now
    explorer.figure.canvas.draw()
    assert time.perf_counter() - start < 2.0  # about 0.1 s on a laptop; room for a busy CI machine
    stand_in = explorer.stand_in([{"n_samples": 1, "baseline": "none"}, {"n_samples": 16, "baseline": "E[h]"}],
                                 panel_size=(3.3, 3.0))
    panels = [sub for sub in stand_in.subfigs if sub.get_visible()]
    titles = [sub._suptitle.get_text() for sub in panels]
    assert titles == ["S = 1, baseline = none", "S = 16, baseline = E[h]"]
    for panel in panels:  # one horizontal axis, 2μ ± 7.5 (without sharex the top one's is (-6.65, 9.85))
        top, bottom = panel.axes
        assert top.get_xlim() == bottom.get_xlim() == (2 * MU - 7.5, 2 * MU + 7.5)
    assert stand_in.get_size_inches()[0] <= 6.6


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mu"):
        estimator_explorer(mu=float("nan"))
    with pytest.raises(ValueError, match="sigma"):
        estimator_explorer(sigma=0.65)  # not one of the slider's values
    with pytest.raises(ValueError, match="sigmas"):
        estimator_explorer(sigmas=(0.5, 0.2))
    with pytest.raises(ValueError, match="sample_sizes"):
        estimator_explorer(sample_sizes=(0, 1))
    with pytest.raises(ValueError, match="repeats"):
        estimator_explorer(repeats=1)
    with pytest.raises(ValueError, match="x_range"):
        estimator_explorer(x_range=(2.0, -2.0))
    with pytest.raises(ValueError, match="estimator"):
        exact_variance("pathwise", MU, 0.6)
    with pytest.raises(ValueError, match="baseline"):
        estimator_draws(MU, 0.6, 4, baseline="leave-one-out")
    with pytest.raises(ValueError, match="sigma"):
        exact_variance("score function", MU, -0.6)
    with pytest.raises(TypeError, match="mu"):
        estimator_draws(None, 0.6, 4)
