"""Explorers (lvm.widgets) are driven as a student drives them: set a control, and what is drawn must change."""

from __future__ import annotations

import io
import json
import math

import ipywidgets as widgets
import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle
from PIL import Image

import lvm
from lvm.widgets import Explorer

matplotlib.use("Agg")


def pixels(figure: Figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def assert_control_changes_drawing(explorer: Explorer, name: str, value) -> None:
    """Setting ``explorer.controls[name]`` to ``value`` redraws, and the new figure differs from the old."""
    before = explorer.figure
    old = pixels(before)
    explorer.controls[name].value = value
    assert explorer.figure is not before, f"setting {name} did not redraw"
    new = pixels(explorer.figure)
    assert old.shape != new.shape or (old != new).any(), f"setting {name} = {value!r} drew the same figure"


def test_an_explorer_redraws_when_a_control_moves_and_its_stand_in_titles_each_setting():
    def draw(fig, slope):
        ax = fig.subplots()
        ax.plot([0, 1], [0, slope])
        ax.set_ylim(-3, 3)

    explorer = Explorer(draw, {"slope": widgets.FloatSlider(value=1.0, min=-2, max=2, description="slope")})
    assert_control_changes_drawing(explorer, "slope", -2.0)
    assert explorer.figure.axes[0].lines[0].get_ydata()[1] == -2.0
    stand_in = explorer.stand_in([{"slope": -1.0}, {"slope": 0.5}, {"slope": 2.0}])
    titles = [sub._suptitle.get_text() for sub in stand_in.subfigs if sub.get_visible()]
    assert titles == ["slope = \u22121", "slope = 0.5", "slope = 2"]  # a true minus, as on the ticks
    assert [sub.axes[0].lines[0].get_ydata()[1] for sub in stand_in.subfigs[:3]] == [-1.0, 0.5, 2.0]


def test_an_explorer_refuses_tex_in_a_control_label_which_colab_would_show_raw():
    with pytest.raises(ValueError, match=r"controls\['a'\].description '\$\\\\mu\$' holds TeX"):
        Explorer(lambda fig, a: fig.subplots(), {"a": widgets.FloatSlider(description="$\\mu$")})
    explorer = Explorer(lambda fig, a: fig.subplots(), {"a": widgets.FloatSlider(value=1.0, description="μ")},
                        titles={"a": "$\\mu$"})
    assert explorer.stand_in([{"a": 2.0}]).subfigs[0]._suptitle.get_text() == "$\\mu$ = 2"
    with pytest.raises(ValueError, match="titles"):
        Explorer(lambda fig, a: fig.subplots(), {"a": widgets.FloatSlider()}, titles={"b": "$b$"})


def test_an_explorer_refuses_controls_it_cannot_drive():
    with pytest.raises(TypeError, match=r"controls\['a'\]"):
        Explorer(lambda fig, a: None, {"a": 3})
    with pytest.raises(ValueError, match="controls"):
        Explorer(lambda fig: None, {})
    explorer = Explorer(lambda fig, a: fig.subplots(), {"a": widgets.IntSlider(value=1)})
    with pytest.raises(ValueError, match=r"\['b'\]"):
        explorer.stand_in([{"b": 1}])


def test_mixture_explorer_normalises_the_weights_and_redraws_on_every_slider():
    model = lvm.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.0])
    explorer = lvm.widgets.mixture_explorer(model)
    assert len(explorer.controls) == 6
    # Every slider opens at the model's own value (one mean slider opening at mu_1 would pass a check of one
    # component).
    assert explorer.values() == pytest.approx({"w0": 0.3, "m0": -1.0, "s0": 0.5, "w1": 0.7, "m1": 2.0, "s1": 1.0})
    # Numbered from 1, as in the text (a count from 0 would say λ₀, μ₀, σ₀), in the order w, m, s per component.
    descriptions = [control.description for control in explorer.controls.values()]
    assert descriptions == ["λ₁ (raw)", "μ₁", "σ₁", "λ₂ (raw)", "μ₂", "σ₂"]
    # The means' sliders span x_range, the default (-6, 6): a slider up to 4 could not reach a mean at 5.
    for name in ("m0", "m1"):
        assert (explorer.controls[name].min, explorer.controls[name].max) == (-6.0, 6.0)
    # Both panels name the components from 1, as the sliders do (λ0, μ0 or p(z=0|x) would start from 0).
    top, bottom = explorer.figure.axes
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        r"$\lambda_1\,\mathcal{N}(x\mid\mu_1,\sigma_1^2)$", r"$\lambda_2\,\mathcal{N}(x\mid\mu_2,\sigma_2^2)$",
        "$p(x)$"]
    assert bottom.get_legend_handles_labels()[1] == [r"$p(z=1\mid x)$", r"$p(z=2\mid x)$"]
    assert [explorer.controls[k].value for k in ("w0", "m0", "s0")] == pytest.approx([0.3, -1.0, 0.5])
    for name, value in [("w0", 0.9), ("m1", -3.0), ("s0", 2.0)]:
        assert_control_changes_drawing(explorer, name, value)
    # What is drawn is the slider's mixture, in both panels.
    explorer.controls["s1"].value = 3.0
    mixture = lvm.widgets.mixture_from_sliders([0.9, 0.7], [-1.0, -3.0], [2.0, 3.0])
    top, bottom = explorer.figure.axes
    dashed = [line for line in top.lines if line.get_linestyle() == "--"]
    peak = float(mixture.weights[1]) / (3.0 * math.sqrt(2 * math.pi))
    # sigma_2 read from sigma_1's slider (2.0) would peak at 0.087, not 0.058
    assert max(dashed[1].get_ydata()) == pytest.approx(peak, rel=1e-3)
    band = bottom.collections[0].get_paths()[0].vertices
    grid = torch.linspace(-6.0, 6.0, 600)
    expected = mixture.responsibilities(grid)[:, 0].numpy()
    at_x = np.isclose(band[:, 0][None, :], grid.numpy()[:, None])
    upper = np.where(at_x, band[:, 1][None, :], -np.inf).max(axis=1)  # the area's top edge at each x
    assert np.allclose(upper, expected, atol=1e-5)  # a bottom panel left at the first mixture is up to 0.74 off
    # One colour per component in both panels: its dashed curve above and its area below (one legend serves both).
    colours = [matplotlib.colors.to_rgb(c) for c in lvm.plot.component_colors(2)]
    assert [matplotlib.colors.to_rgb(line.get_color()) for line in dashed] == colours
    assert np.allclose([area.get_facecolor()[0][:3] for area in bottom.collections], colours)
    # The stand-in draws each setting alone, on top of the controls' values, and leaves the controls as they were.
    live = explorer.values()
    stand_in = explorer.stand_in([{"m0": 1.5}, {"w0": 0.2}, {"s1": 3.0}])
    assert explorer.values() == live  # writing the settings into the sliders would stack them up
    # Only what a reader can set live: a value beyond a slider's range is refused (one between two steps is
    # let through: the reader sets the nearest). The chapter's settings sit on the sliders' steps.
    assert [explorer.controls[name].step for name in ("w0", "m0", "s0")] == [0.01, 0.05, 0.05]
    with pytest.raises(ValueError, match=r"s1 = 5 is beyond its slider \(0.05 to 3\)"):
        explorer.stand_in([{"s1": 5.0}])
    with pytest.raises(ValueError, match=r"m0 = -7 is beyond its slider \(-6 to 6\)"):
        explorer.stand_in([{"m0": -7.0}])
    titles = [panel._suptitle.get_text() for panel in stand_in.subfigs[:3]]
    # One-based, as in the text: sigma_2 for the second component's spread, not sigma_1.
    assert titles == ["$\\mu_{1}$ = 1.5", "$\\lambda_{1}$ (raw) = 0.2", "$\\sigma_{2}$ = 3"]
    for panel, setting in zip(stand_in.subfigs, [{"m0": 1.5}, {"w0": 0.2}, {"s1": 3.0}]):
        values = {**live, **setting}
        drawn = lvm.widgets.mixture_from_sliders([values["w0"], values["w1"]], [values["m0"], values["m1"]],
                                                 [values["s0"], values["s1"]])
        density = next(line for line in panel.axes[0].lines if line.get_label() == "$p(x)$")
        assert np.allclose(density.get_xdata()[[0, -1]], [-6.0, 6.0])  # over the whole x_range, as the panel below
        expected = drawn.log_marginal(torch.as_tensor(density.get_xdata())).exp().numpy()
        assert np.allclose(density.get_ydata(), expected, atol=1e-6)  # the other setting's mixture is off
    # A model the sliders cannot show is refused, not clamped into another mixture.
    with pytest.raises(ValueError, match=r"x_range .* \u03bc1 = -8"):
        lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [-8.0, 1.0], [0.5, 4.0]))
    with pytest.raises(ValueError, match=r"x_range .* \u03bc2 = 8"):  # above the range, not only below it
        lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [1.0, 8.0], [0.5, 4.0]))
    with pytest.raises(ValueError, match="sigma of model must be at least 0.05.*0.02"):
        lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.02, 1.0]))
    wide = lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.5, 4.0]))
    assert wide.values()["s1"] == 4.0  # the spread's slider reaches the model's sigma, 4, not 3
    # Off the slider's 0.05 steps: rounded up (3.05), the slider reaches 3.02; rounded down it would open at 3.0.
    between = lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.5, 3.02]))
    assert between.values()["s1"] == pytest.approx(3.02)
    # Another x_range reaches the sliders and both panels: the means' sliders, the density and the band all
    # span (-3, 9), where a panel or slider fixed at the default would span (-6, 6).
    shifted = lvm.widgets.mixture_explorer(lvm.GaussianMixture([0.5, 0.5], [0.0, 6.0], [1.0, 1.0]), x_range=(-3, 9))
    for name in ("m0", "m1"):
        assert (shifted.controls[name].min, shifted.controls[name].max) == (-3.0, 9.0)
    top, bottom = shifted.figure.axes
    density = next(line for line in top.lines if line.get_label() == "$p(x)$")
    assert np.allclose(density.get_xdata()[[0, -1]], [-3.0, 9.0])
    band = bottom.collections[0].get_paths()[0].vertices
    assert np.allclose([band[:, 0].min(), band[:, 0].max()], [-3.0, 9.0])
    # Every weight at 0 has no mixture: the figure says so instead of a traceback from the slider's callback.
    for name in ("w0", "w1"):
        wide.controls[name].value = 0.0
    assert [t.get_text() for t in wide.figure.axes[0].texts] == ["At least one weight must be positive."]
    mixed = lvm.widgets.mixture_from_sliders([2.0, 6.0], [0.0, 1.0], [1.0, 1.0])
    assert torch.allclose(mixed.weights, torch.tensor([0.25, 0.75]))
    with pytest.raises(ValueError, match="raw_weights"):
        lvm.widgets.mixture_from_sliders([0.0, 0.0], [0.0, 1.0], [1.0, 1.0])


def test_course_style_renders_at_twice_the_size_with_a_record_of_the_smallest_text():
    lvm.plot.use_course_style()
    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.subplots()
    ax.plot([0, 1], label=f"{torch.tensor([1.5])}")  # the kind of label the site's test must catch
    ax.legend(fontsize=6)
    data, size = lvm.plot.render_png(fig)
    image = Image.open(io.BytesIO(data))
    assert abs(image.size[0] - 2 * size["width"]) <= 1 and abs(image.size[1] - 2 * size["height"]) <= 1
    assert float(image.text["lvm-dpi"]) == 200
    assert json.loads(image.text["lvm-smallest-text-pt"]) == 6
    assert "tensor([1.5000])" in json.loads(image.text["lvm-texts"])
    with pytest.raises(ValueError, match="scale"):
        lvm.plot.render_png(fig, scale=0.5)


def test_digit_labels_never_hide_each_other_and_stay_near_their_clouds():
    # Medians in a row (inches): pulling the close pair apart alone would put a numeral 0.015 in from the third
    # digit's median, marking the wrong cloud; each numeral must keep half the gap from every other median.
    row = np.array([[0.0, 0.0], [0.02, 0.0], [0.24, 0.0], [0.12, 0.0]])
    placed = lvm.plot.spread_apart(row, min_distance=0.22, fixed=row, fixed_distance=0.11)
    to_medians = np.hypot(*(placed[:, None, :] - row[None, :, :]).transpose(2, 0, 1))
    assert to_medians[~np.eye(4, dtype=bool)].min() >= 0.11 - 1e-5
    # The same through write_digit_labels, on a page: three medians in a row, 0.05 and 0.16 in from the first.
    fig = Figure(figsize=(4, 2), dpi=100)
    ax = fig.subplots()
    ax.set_xlim(0, 2)
    ax.set_ylim(-1, 1)
    inches = ax.get_window_extent().width / fig.dpi / 2  # inches per data unit along x
    medians = np.array([[0.5, 0.0], [0.5 + 0.05 / inches, 0.0], [0.5 + 0.16 / inches, 0.0]])
    written = lvm.plot.write_digit_labels(ax, [1, 2, 3], medians)
    page = lambda points: ax.transData.transform(points) / fig.dpi  # noqa: E731
    distances = np.hypot(*(page(written)[:, None, :] - page(medians)[None, :, :]).transpose(2, 0, 1))
    assert distances[~np.eye(3, dtype=bool)].min() >= 0.11 - 1e-3  # no numeral on another digit's median
    centres = np.array([[0.0, 0.0], [0.01, 0.0], [0.0, 0.02], [1.0, 1.0]])
    placed = lvm.plot.spread_apart(centres, min_distance=0.07)
    gaps = np.hypot(*(placed[:, None, :] - placed[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(4, 1)].min() >= 0.07 - 1e-9  # before: 0.01 apart
    assert np.allclose(placed[3], centres[3])  # a label with room is not moved
    assert np.abs(placed[:3] - centres[:3]).max() < 0.07  # the others move only as far as needed
    fig = Figure(figsize=(3, 3))
    ax = fig.subplots()
    cloud = torch.randn(50, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    z = torch.cat([cloud, cloud, cloud + torch.tensor([3.0, 0.0])])  # 7 and 9 share a median; 4 is far off
    labels = torch.tensor([7] * 50 + [9] * 50 + [4] * 50)
    lvm.plot.plot_digit_scatter(z, labels, ax=ax)
    written = {t.get_text(): ax.transData.transform(t.get_position()) / fig.dpi for t in ax.texts}
    assert sorted(written) == ["4", "7", "9"]
    assert np.hypot(*(written["7"] - written["9"])) >= 0.21  # inches apart; unspread, on top of each other
    assert len(ax.lines) == 4  # a line and a dot for each of the moved 7 and 9; none for the 4, left in place
    four_median = ax.transData.transform(np.median(z[100:].numpy(), axis=0)) / fig.dpi
    shared_median = ax.transData.transform(np.median(cloud.numpy(), axis=0)) / fig.dpi
    for digit in "79":  # neither sits on the median it shares with the other (it would mark both clouds)
        assert np.hypot(*(written[digit] - shared_median)) >= 0.105
    assert np.hypot(*(written["4"] - four_median)) < 0.02  # each numeral at its own cloud, not another's
    # Each digit's cloud has its own colour and its own marker, so it reads without colour vision.
    # Each digit's cloud and numeral in that digit's own colour, and its cloud in its own marker, whichever
    # digits a plot holds (colours chosen by position among 4, 7, 9 would give the 4 the 0's blue).
    clouds = {c.get_label(): c for c in ax.collections}
    texts = {t.get_text(): t for t in ax.texts}
    for d in "479":
        colour = matplotlib.colors.to_rgb(lvm.plot.DIGIT_COLORS[int(d)])
        assert clouds[d].get_facecolor()[0][:3] == pytest.approx(colour)
        assert matplotlib.colors.to_rgb(texts[d].get_color()) == pytest.approx(colour)
        marker = MarkerStyle(lvm.plot.DIGIT_MARKERS[int(d)])
        shape = marker.get_path().transformed(marker.get_transform()).vertices
        assert np.allclose(clouds[d].get_paths()[0].vertices, shape)
    with pytest.raises(ValueError, match="labels"):
        lvm.plot.plot_digit_scatter(z, torch.zeros(3), ax=ax)
