"""Chapter 4's explorer: the ELBO, log p(x) and the gap it draws are those of an independent quadrature, and
the densities it draws are q(z) = N(m, s²) and the posterior that quadrature gives."""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb

import lvm
from lvm.explorers.elbo import elbo_gap_explorer
from lvm.plot import COLORS
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")

W, B, SIGMA = np.array([0.9, -1.3]), np.array([0.2, 0.1]), 0.8
X = np.array([1.5, -0.5])
# Steps of 1e-3, and wide enough for the widest q below, N(1.5, 2²): on [-12, 12] its tail, where log p(x, z)
# falls like -(1 + |w|²/σ²) z²/2 = -2.45 z², would be missing and its ELBO 2.5e-5 too high.
Z = np.linspace(-20.0, 20.0, 40001)
# np.trapezoid from NumPy 2.0, np.trapz before it (pyproject allows numpy >= 1.24).
trapezoid = getattr(np, "trapezoid", None) or np.trapz


def model() -> lvm.LinearGaussian:
    return lvm.LinearGaussian(torch.tensor(W[:, None]), torch.tensor(B), SIGMA)


def log_joint(z: np.ndarray) -> np.ndarray:
    """log p(x, z) = log N(z | 0, 1) + log N(x | w z + b, σ² I), written out with numpy alone."""
    residual = X[None, :] - z[:, None] * W[None, :] - B[None, :]
    log_lik = -0.5 * len(X) * math.log(2 * math.pi * SIGMA**2) - 0.5 * (residual**2).sum(1) / SIGMA**2
    return -0.5 * math.log(2 * math.pi) - 0.5 * z**2 + log_lik


def by_quadrature(m: float, s: float) -> tuple[float, float, float]:
    """(ELBO, log p(x), log p(x) − ELBO) of q = N(m, s²), by the trapezoid rule on Z: no lvm, no torch."""
    lj = log_joint(Z)
    top = lj.max()
    log_px = top + math.log(trapezoid(np.exp(lj - top), Z))
    log_q = -0.5 * math.log(2 * math.pi * s**2) - 0.5 * ((Z - m) / s) ** 2
    elbo = float(trapezoid(np.exp(log_q) * (lj - log_q), Z))
    return elbo, log_px, log_px - elbo


def drawn(figure, gid: str):
    (artist,) = [a for a in figure.findobj() if a.get_gid() == gid]
    return artist


def drawn_numbers(figure) -> tuple[float, float, float]:
    """(ELBO, log p(x), KL) as the figure draws them: the markers' positions and the KL bar's extent."""
    elbo = float(drawn(figure, "elbo").get_xdata()[0])
    log_px = float(drawn(figure, "log_px").get_xdata()[0])
    bar = drawn(figure, "kl")
    assert bar.get_x() == pytest.approx(elbo, abs=1e-12)  # the bar starts at the ELBO ...
    assert bar.get_x() + bar.get_width() == pytest.approx(log_px, abs=1e-9)  # ... and ends at log p(x)
    # ... and both lie on the visible axis (the ELBO unless an arrow head marks it off the left end), the diamond
    # with room to its right: the module leaves 0.5 nats. A right limit at log p(x) + 0.05 would cut the diamond
    # (7 points wide, about 0.1 nats in a stand-in's panel) in half, and one at log p(x) - 0.5 would clip it, its
    # guide and the bar's end.
    left, right = figure.axes[1].get_xlim()
    assert left < log_px and right >= log_px + 0.25
    assert elbo >= left or any(line.get_marker() == "<" for line in figure.axes[1].get_lines())
    return elbo, log_px, bar.get_width()


def drawn_rows(figure) -> dict[float, str]:
    """Each row of the number line, by its height: what is drawn on it, checked, and the label written beside it.

    Rows: log p(x) (a diamond) at 2, the ELBO (a dot) at 1, the KL bar at 0. Swapping the two markers' rows puts
    the diamond at 1 and the dot at 2; a bar drawn on the ELBO's row has its centre at 1.
    """
    log_px, elbo, bar = (drawn(figure, gid) for gid in ("log_px", "elbo", "kl"))
    assert (log_px.get_marker(), list(log_px.get_ydata())) == ("D", [2])
    assert (elbo.get_marker(), list(elbo.get_ydata())) == ("o", [1])
    # The alt text calls them "a black diamond" and "a blue dot" (COLORS[0]); a dot drawn black, like the diamond
    # and the posterior, fails the second, and so does its arrow head, checked against the dot's colour below.
    assert to_rgb(log_px.get_color()) == to_rgb("black")
    assert to_rgb(elbo.get_color()) == to_rgb(COLORS[0])
    assert bar.get_y() + bar.get_height() / 2 == pytest.approx(0.0, abs=1e-12)
    # The caption calls the KL the "hatched bar", and its colour is neither the dot's nor the diamond's: without
    # its hatch, or in the ELBO's blue, it would not be the bar the caption describes.
    assert bar.get_hatch() == "//"
    marker_colours = {to_rgb(marker.get_color()) for marker in (log_px, elbo)}
    assert to_rgb(bar.get_facecolor()) not in marker_colours
    bottom = figure.axes[1]
    # Every row inside the panel with room for its marker: a limit of 1.6 above would cut the diamond in half.
    low, high = bottom.get_ylim()
    assert low < -0.3 and high > 2.3, (low, high)
    # Each label with its tick's height: ticks [0, 1, 2] with the same labels would write log p(x) beside the KL
    # bar and KL beside the diamond.
    return {float(tick): label.get_text() for tick, label in zip(bottom.get_yticks(), bottom.get_yticklabels())}


def dotted_guides(figure) -> list[float]:
    """The x-positions of the number line's dotted vertical guides, in increasing order."""
    guides = [line for line in figure.axes[1].get_lines() if line.get_linestyle() == ":"]
    for line in guides:  # vertical: one x for both ends
        assert len(set(line.get_xdata())) == 1
    return sorted(float(line.get_xdata()[0]) for line in guides)


def arrow_heads(figure) -> list:
    """The '<' markers on the number line: the arrow head that says the ELBO lies left of the axis."""
    return [line for line in figure.axes[1].get_lines() if line.get_marker() == "<"]


def test_each_slider_redraws_and_the_drawn_elbo_and_gap_are_those_of_quadrature():
    explorer = elbo_gap_explorer(model(), torch.tensor(X), m_range=(-2.5, 1.5), s_range=(0.02, 2.0))
    assert set(explorer.controls) == {"m", "s"}
    assert_control_changes_drawing(explorer, "m", -1.0)
    assert_control_changes_drawing(explorer, "s", 0.3)
    # A q far off (its ELBO 9.7 nats below log p(x), off the number line's left edge), a near miss, twice the
    # posterior's standard deviation, and the posterior itself.
    post_mean, post_std = _posterior_by_quadrature()
    settings = [(1.5, 2.0), (0.0, 0.8), (post_mean, 2 * post_std), (post_mean, post_std)]
    gaps = []
    for m, s in settings:
        explorer.controls["m"].value = m
        explorer.controls["s"].value = s
        elbo, log_px, gap = drawn_numbers(explorer.figure)
        want_elbo, want_log_px, want_gap = by_quadrature(m, s)
        # Quadrature and the exact values agree to 1e-9 here. A gap drawn as KL(p(z | x) || q) would be off by
        # 0.49 to 8.6 nats at the first three settings; an ELBO without q's entropy, by 0.62 to 2.1 at all four.
        assert elbo == pytest.approx(want_elbo, abs=1e-7)
        assert log_px == pytest.approx(want_log_px, abs=1e-7)
        assert gap == pytest.approx(want_gap, abs=1e-7)
        # The numbers written beside the rows are the same, to the two decimals shown, each beside its own row.
        written = {2.0: f"log p(x) {want_log_px:.2f}", 1.0: f"ELBO {want_elbo:.2f}", 0.0: f"KL {want_gap:.2f}"}
        assert drawn_rows(explorer.figure) == {row: w.replace("-", "\u2212") for row, w in written.items()}
        # The panel's title says how the rows relate; "ELBO = log p(x) + KL" would contradict the bar.
        assert explorer.figure.axes[1].get_title() == "ELBO = log p(x) \u2212 KL"
        # One dotted guide at the ELBO and one at log p(x); with the ELBO's guide drawn at log p(x) both would
        # stand there, 9.7, 1.4 and 0.81 nats right of the ELBO at the first three settings.
        assert dotted_guides(explorer.figure) == pytest.approx(sorted([want_elbo, want_log_px]), abs=1e-7)
        # Only the first q's ELBO (9.7 nats below log p(x), 4 nats of axis) lies left of the axis: one arrow head
        # there, on the ELBO's row, at the axis' left end; none at the other three (gaps 1.4, 0.81 and 0).
        heads = arrow_heads(explorer.figure)
        if gap > 4.0:
            (head,) = heads  # without the arrow head: none
            left = explorer.figure.axes[1].get_xlim()[0]
            assert list(head.get_xdata()) == [left] and list(head.get_ydata()) == [1]
            assert left == pytest.approx(log_px - 4.0, abs=1e-12) and elbo < left
            # Drawn on the axis' edge, the head is half outside it: clipped to the axes, half of it would vanish.
            assert head.get_clip_on() is False
            # The alt text calls it a blue arrow head: in the ELBO dot's colour. In black, the log p(x) diamond's
            # colour, it would read as marking log p(x).
            assert to_rgb(head.get_color()) == to_rgb(drawn(explorer.figure, "elbo").get_color())
        else:
            assert heads == []  # an arrow head drawn at every setting: one here
        gaps.append(gap)
    # 9.72 and 1.44 nats off the posterior; at twice its standard deviation, whatever the model,
    # (4 − 1 − log 4) / 2 = 0.807; at the posterior the gap closes.
    assert gaps[0] > 9 and gaps[1] > 1
    assert gaps[2] == pytest.approx(1.5 - math.log(2), abs=1e-6)
    assert gaps[3] == pytest.approx(0.0, abs=1e-9)
    # The arrow head appears exactly when the ELBO leaves the axis, 4 nats left of log p(x): at the first q on the
    # m slider's grid (s = 1) whose gap passes 4 (by under 0.1 nats, as the chapter's far-off q passes it by
    # 0.17) and not at the one before it. A threshold a tenth of a nat off the axis' end fails one of the two.
    inside, outside = edge_of_the_axis()
    for m, want_head in [(inside, False), (outside, True)]:
        explorer.controls["m"].value = m
        explorer.controls["s"].value = 1.0
        gap = drawn_numbers(explorer.figure)[2]
        assert (len(arrow_heads(explorer.figure)) == 1) == want_head == (gap > 4.0), (m, gap)


def edge_of_the_axis() -> tuple[float, float]:
    """Two neighbouring means on the m slider's 0.01 grid whose q = N(m, 1) has gaps either side of 4 nats."""
    previous = 0.5  # near the posterior's mean: a gap of 1.2
    for step in range(1, 300):
        m = round(0.5 - 0.01 * step, 2)
        if by_quadrature(m, 1.0)[2] > 4.0:
            assert 3.9 < by_quadrature(previous, 1.0)[2] and by_quadrature(m, 1.0)[2] < 4.1
            return previous, m
        previous = m
    raise AssertionError("no gap above 4 nats on the slider's range")


def test_the_drawn_densities_are_q_and_the_posterior():
    explorer = elbo_gap_explorer(model(), X, m_range=(-2.5, 1.5))
    explorer.controls["m"].value = 0.4
    explorer.controls["s"].value = 0.7
    posterior_line, q_line = explorer.figure.axes[0].get_lines()[:2]
    # Each line and its legend entry carry the right name, the posterior's solid and q's dashed; with the two
    # labels swapped, p(z | x) would name the dashed line.
    assert (posterior_line.get_label(), posterior_line.get_linestyle()) == (r"$p(z \mid x)$", "-")
    assert (q_line.get_label(), q_line.get_linestyle()) == (r"$q(z)$", "--")
    # The alt text: "a black bell curve, the posterior" and "a dashed blue shaded bell curve shows q". A q drawn
    # black, like the posterior, fails the second; so does a shade in another colour than q's line.
    assert to_rgb(posterior_line.get_color()) == to_rgb("black")
    assert to_rgb(q_line.get_color()) == to_rgb(COLORS[0])
    legend = explorer.figure.axes[0].get_legend()
    entries = {t.get_text(): h.get_linestyle() for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert entries == {r"$p(z \mid x)$": "-", r"$q(z)$": "--"}
    z = np.asarray(q_line.get_xdata(), dtype=float)
    # Both densities are drawn on z from 1 below the m slider's minimum to 1 above its maximum, and so is the
    # panel: q's tails show with m at either end. A grid on the slider's range alone, [-2.5, 1.5], would cut q off
    # at its mean when m sits at an end.
    assert z[0] <= -2.5 - 1 + 1e-12 and z[-1] >= 1.5 + 1 - 1e-12
    np.testing.assert_array_equal(posterior_line.get_xdata(), z)
    assert explorer.figure.axes[0].get_xlim() == pytest.approx((z[0], z[-1]), abs=1e-12)
    q = np.exp(-0.5 * ((z - 0.4) / 0.7) ** 2) / (0.7 * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(q_line.get_ydata(), q, rtol=1e-9, atol=1e-12)
    # Both densities fit under the top of the panel, q's narrow peaks too (20 at s = 0.02).
    for s_value in (0.7, 0.02):
        explorer.controls["s"].value = s_value
        top = explorer.figure.axes[0]
        peak = max(max(line.get_ydata()) for line in top.get_lines()[:2])
        # With room above the peak: the module leaves at least 10% (1.1 × q's peak, 2.5 × the posterior's);
        # a top limit at exactly the peak would flatten it against the frame, under the legend.
        assert top.get_ylim()[1] >= 1.09 * peak
    explorer.controls["s"].value = 0.7
    # The one shaded area is q's: its polygon's upper edge is q's density at every z and its lower edge 0.
    # Shading the posterior instead would put the upper edge at the posterior's density, up to 0.35 from q's
    # (0.88 against 0.54 at the posterior's peak).
    (shade,) = [c for c in explorer.figure.axes[0].collections if isinstance(c, PolyCollection)]
    (path,) = shade.get_paths()
    xs, which = np.unique(path.vertices[:, 0], return_inverse=True)
    upper, lower = np.full(len(xs), -np.inf), np.full(len(xs), np.inf)
    np.maximum.at(upper, which, path.vertices[:, 1])
    np.minimum.at(lower, which, path.vertices[:, 1])
    np.testing.assert_allclose(xs, z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(upper, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(lower, 0.0)
    # The caption says "dashed, shaded": the shade is seen (alpha 0.15 in the module; alpha 0 hides it) and the
    # line over it is dashed (checked above).
    assert shade.get_alpha() is not None and shade.get_alpha() > 0
    assert to_rgb(shade.get_facecolor()[0]) == to_rgb(COLORS[0])
    # The posterior p(x, z) / p(x) by quadrature; a posterior with σ² M⁻¹ replaced by M⁻¹ would be off by 0.2.
    _, log_px, _ = by_quadrature(0.0, 1.0)
    np.testing.assert_allclose(posterior_line.get_ydata(), np.exp(log_joint(z) - log_px), rtol=1e-6, atol=1e-9)


def test_the_default_mean_range_is_the_posterior_mean_plus_minus_2_rounded_and_the_sliders_start_on_a_step():
    explorer = elbo_gap_explorer(model(), X)
    post_mean, _ = _posterior_by_quadrature()  # 0.621
    m = explorer.controls["m"]
    # (-1.4, 2.6) here; a fixed default of (-2, 2) fails, and so does the unrounded (-1.379, 2.621).
    assert (m.min, m.max) == (round(post_mean - 2, 1), round(post_mean + 2, 1))
    # m starts at the posterior mean + 1 rounded to the step, 1.62, 302 steps from -1.4; s at 1, 95 steps from
    # 0.05. A start at the unrounded 1.621 is 302.1 steps from the minimum, off the grid a student can set.
    for control in explorer.controls.values():
        k = (control.value - control.min) / control.step
        assert control.min <= control.value <= control.max and abs(k - round(k)) < 1e-6
    assert m.value == pytest.approx(round(post_mean + 1, 2), abs=1e-12)


def test_the_sliders_can_be_set_to_the_chapter_s_settings():
    """Chapter 4's stand-in shows m = 0.3, −0.77 and s = 0.22, 0.44, 0.88, 1: a student can drag the sliders there."""
    explorer = elbo_gap_explorer(model(), X, m_range=(-2.5, 1.5), s_range=(0.02, 2.0))
    for name, values in (("m", (-0.77, 0.3)), ("s", (0.22, 0.44, 0.88, 1.0))):
        control = explorer.controls[name]
        # A linear slider takes the values min + k step. A log slider (FloatLogSlider, steps of 0.01 in log10
        # from 0.02) takes 0.4375 and 0.4477 but not 0.44.
        assert type(control) is widgets.FloatSlider and control.step == 0.01
        for value in values:
            k = (value - control.min) / control.step
            assert control.min <= value <= control.max and abs(k - round(k)) < 1e-6


def test_bad_arguments_are_refused_with_their_names():
    with pytest.raises(ValueError, match="model"):
        elbo_gap_explorer(lvm.LinearGaussian(torch.randn(3, 2, dtype=torch.float64), torch.zeros(3), 0.5), X)
    with pytest.raises(ValueError, match="model"):
        elbo_gap_explorer(lvm.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]), X)
    with pytest.raises(ValueError, match="x must be one data point"):
        elbo_gap_explorer(model(), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x must be one data point"):
        elbo_gap_explorer(model(), np.zeros(3))
    with pytest.raises(ValueError, match="m_range"):
        elbo_gap_explorer(model(), X, m_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="s_range"):
        elbo_gap_explorer(model(), X, s_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="s_range"):
        elbo_gap_explorer(model(), X, s_range="wide")


def _posterior_by_quadrature() -> tuple[float, float]:
    lj = log_joint(Z)
    weights = np.exp(lj - lj.max())
    weights /= trapezoid(weights, Z)
    mean = float(trapezoid(weights * Z, Z))
    return mean, math.sqrt(float(trapezoid(weights * (Z - mean) ** 2, Z)))
