"""Chapter 6's latent-space explorer, driven as a student drives it, on a small untrained VAE."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

import lvm
from lvm.explorers import latent_space
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")


@pytest.fixture
def small():
    """An untrained lvm.VAE with a 2-D latent space and tiny hidden layers, and 60 images with labels."""
    torch.manual_seed(0)
    model = lvm.VAE(784, 2, hidden=(16,), likelihood="bernoulli")
    x = (torch.rand(60, 784) < 0.3).float()
    labels = torch.arange(60) % 10
    return model, x, labels


def shown_image(explorer) -> np.ndarray:
    picture = explorer.figure.axes[1]
    return np.asarray(picture.images[0].get_array())


def test_the_shown_image_is_the_decoders_mean_at_the_sliders_point(small):
    model, x, labels = small
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4), start=(0.5, -1.0))
    # The sliders start at `start` and the first drawing is the image there (ignoring start gives (0, 0)).
    assert (explorer.controls["z1"].value, explorer.controls["z2"].value) == pytest.approx((0.5, -1.0))
    first = latent_space.decoded_mean(model, 0.5, -1.0).reshape(28, 28).numpy()
    assert np.allclose(shown_image(explorer), first, atol=1e-6)
    # Grey levels from 0 (white) to 1 (black): cmap "gray" would draw ink white, and without vmin and vmax
    # the scale would be the image's own range (0.28 to 0.73 here, untrained).
    picture = explorer.figure.axes[1]
    assert picture.images[0].get_cmap().name == "gray_r"
    assert picture.images[0].get_clim() == (0, 1)
    assert_control_changes_drawing(explorer, "z1", 2.0)
    assert_control_changes_drawing(explorer, "z2", 1.5)
    z1, z2 = explorer.controls["z1"].value, explorer.controls["z2"].value
    assert (z1, z2) == pytest.approx((2.0, 1.5))
    with torch.no_grad():  # independently: the decoder's sigmoid of its logits at (z1, z2)
        expected = torch.sigmoid(model.decoder(torch.tensor([[z1, z2]]))).reshape(28, 28).numpy()
    # An image decoded at the start point (0.5, -1), not the slider's, differs by up to 0.33 here.
    assert np.allclose(shown_image(explorer), expected, atol=1e-6)
    stale = latent_space.decoded_mean(model, 0.5, -1.0).reshape(28, 28).numpy()
    assert np.abs(stale - expected).max() > 1e-3
    # The ring marks the chosen point.
    ring = next(line for line in explorer.figure.axes[0].lines if line.get_label() == "chosen point")
    assert (ring.get_xdata()[0], ring.get_ydata()[0]) == pytest.approx((z1, z2))


def test_the_plane_shows_the_codes_computed_once_and_each_redraw_decodes_one_point(small):
    model, x, labels = small
    encoded, decoded = [], []
    encode, decode = model.encode, model.decode
    model.encode = lambda images: (encoded.append(images.shape), encode(images))[1]
    model.decode = lambda z: (decoded.append(tuple(z.shape)), decode(z))[1]
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4), max_codes=50)
    for value in (1.0, -2.0, 3.0):
        explorer.controls["z1"].value = value
    assert len(encoded) == 1 and encoded[0] == (50, 784)  # the first 50 images, encoded once
    assert decoded == [(1, 2)] * 4  # the first drawing and three redraws, one point each
    with torch.no_grad():
        codes = encode(x[:50]).mean.numpy()
    plane = explorer.figure.axes[0]
    drawn = np.concatenate([c.get_offsets() for c in plane.collections])
    assert drawn.shape == (50, 2)
    # Each digit written once (the scatter's own numerals as well would make 20).
    assert sorted(int(t.get_text()) for t in plane.texts) == list(range(10))
    # Each digit's scatter holds exactly the codes of the images with that label, in its colour and marker;
    # labels rolled by one image would put the codes of 1s under "0", etc.
    for collection in plane.collections:
        digit = int(collection.get_label())
        assert np.allclose(collection.get_offsets(), codes[labels[:50].numpy() == digit], atol=1e-6)
        expected = matplotlib.colors.to_rgb(lvm.plot.DIGIT_COLORS[digit])
        assert collection.get_facecolor()[0][:3] == pytest.approx(expected)


def test_the_stand_in_draws_each_setting(small):
    model, x, labels = small
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4))
    settings = [{"z1": -1.0, "z2": 0.5}, {"z1": 2.5, "z2": -2.0}]
    figure = explorer.stand_in(settings)
    titles = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert titles == ["$z_1$ = \u22121, $z_2$ = 0.5", "$z_1$ = 2.5, $z_2$ = \u22122"]
    for sub, setting in zip(figure.subfigs, settings):
        expected = latent_space.decoded_mean(model, setting["z1"], setting["z2"]).reshape(28, 28).numpy()
        assert np.allclose(np.asarray(sub.axes[1].images[0].get_array()), expected, atol=1e-6)
    matplotlib.pyplot.close(figure)


def test_without_z_range_each_axis_spans_its_codes_rounded_outwards(small):
    model, x, labels = small
    # An untrained encoder puts every code within 1 of the origin: each axis is widened to (-1, 1).
    with torch.no_grad():
        assert model.encode(x).mean.abs().max() < 1
    explorer = latent_space.latent_space_explorer(model, x, labels)
    assert [(s.min, s.max) for s in explorer.controls.values()] == [(-1, 1), (-1, 1)]
    # An encoder whose means are known: z1 is -2.26 or 5.26 and z2 is -0.4 or 0.5, by the first pixel.
    encoder = torch.nn.Linear(784, 4)
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.bias.copy_(torch.tensor([-2.26, -0.4, 0.0, 0.0]))
        encoder.weight[:2, 0] = torch.tensor([7.52, 0.9])
    model.encoder = encoder
    x[0, 0], x[1, 0] = 0.0, 1.0
    codes = model.encode(x).mean.detach()
    assert codes[:, 0].unique().tolist() == pytest.approx([-2.26, 5.26])
    explorer = latent_space.latent_space_explorer(model, x, labels)
    # Floor and ceiling give (-3, 6); rounding to the nearest integer would give (-2, 5); a symmetric range from
    # the largest |coordinate| would give (-6, 6) on both axes.
    assert (explorer.controls["z1"].min, explorer.controls["z1"].max) == (-3, 6)
    assert (explorer.controls["z2"].min, explorer.controls["z2"].max) == (-1, 1)
    # The plane covers both ranges, and only one axis is widened (to keep one scale): here z2, whose range is
    # the smaller for its length on the page.
    plane = explorer.figure.axes[0]
    assert plane.get_xlim() == pytest.approx((-3, 6))
    (y_lo, y_hi) = plane.get_ylim()
    assert y_lo < -1 and y_hi > 1 and (y_lo + y_hi) / 2 == pytest.approx(0)


def test_the_plane_has_one_scale_on_both_axes(small):
    model, x, labels = small
    # Codes whose ranges are 6 wide in z1 and 10 in z2, as in the chapter: z1 = -3.5 + 5 x_0, z2 = -4.5 + 9 x_1.
    encoder = torch.nn.Linear(784, 4)
    with torch.no_grad():
        encoder.weight.zero_()
        encoder.bias.copy_(torch.tensor([-3.5, -4.5, 0.0, 0.0]))
        encoder.weight[0, 0], encoder.weight[1, 1] = 5.0, 9.0
    model.encoder = encoder
    x[:, :2] = torch.linspace(0, 1, len(x))[:, None]
    explorer = latent_space.latent_space_explorer(model, x, labels)
    assert [(s.min, s.max) for s in explorer.controls.values()] == [(-4, 2), (-5, 5)]
    stand_in = explorer.stand_in([{"z1": 0.0}, {"z1": 1.0}])
    # Limits left at the ranges give z2 0.51 times the inches per unit of z1 on the explorer's own figure and
    # 0.76 on the stand-in's plane; limits matched without fixing the aspect, 0.98 after the last layout.
    for figure, plane in [(explorer.figure, explorer.figure.axes[0]), (stand_in, stand_in.subfigs[0].axes[0])]:
        figure.canvas.draw()  # measured as drawn, after the final layout
        box = plane.get_window_extent()
        (x_lo, x_hi), (y_lo, y_hi) = plane.get_xlim(), plane.get_ylim()
        scale_ratio = (box.height / (y_hi - y_lo)) / (box.width / (x_hi - x_lo))
        assert scale_ratio == pytest.approx(1, abs=1e-3)
        # Both ranges shown, one of them exactly.
        assert x_lo <= -4 and x_hi >= 2 and y_lo <= -5 and y_hi >= 5
        assert (x_lo, x_hi) == pytest.approx((-4, 2)) or (y_lo, y_hi) == pytest.approx((-5, 5))
    matplotlib.pyplot.close(stand_in)


def test_both_axes_of_the_plane_are_ticked_at_the_same_step(small):
    model, x, labels = small
    # The step is 1, 2 or 5 times a power of ten, at most five steps across the wider range: 2 for a range 8 or
    # 10 wide. Ticking one axis alone at that step leaves the other to matplotlib's default: on the explorer's
    # own figure for (-4, 4), every 1 on the y axis, or every 2.5 on the x axis.
    for z_range in [(-4, 4), (-5, 5)]:
        explorer = latent_space.latent_space_explorer(model, x, labels, z_range=z_range)
        stand_in = explorer.stand_in([{"z1": 0.0}], panel_size=(3.3, 2.1))
        for figure, plane in [(explorer.figure, explorer.figure.axes[0]), (stand_in, stand_in.subfigs[0].axes[0])]:
            figure.canvas.draw()  # the ticks as drawn, after the final layout
            steps = [np.diff(axis.get_majorticklocs()) for axis in (plane.xaxis, plane.yaxis)]
            assert all(len(step) >= 2 for step in steps)
            assert np.allclose(np.concatenate(steps), 2.0), (z_range, steps)
        matplotlib.pyplot.close(stand_in)


def test_the_sliders_move_in_steps_of_step(small):
    model, x, labels = small
    # The chapter rounds its points to the default step, 0.1; a slider with a step of its own (ipywidgets'
    # default is also 0.1, a hard-coded one anything else) fails one of these.
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4))
    assert [s.step for s in explorer.controls.values()] == [0.1, 0.1]
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4), step=0.25)
    assert [s.step for s in explorer.controls.values()] == [0.25, 0.25]


def test_numerals_are_written_near_their_medians_and_apart_on_a_small_plane(small):
    model, x, labels = small
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4))
    figure = explorer.stand_in([{"z1": 0.0}], panel_size=(3.3, 2.1))
    plane = figure.subfigs[0].axes[0]
    texts = {int(t.get_text()): np.array(t.get_position()) for t in plane.texts}
    assert sorted(texts) == list(range(10))
    with torch.no_grad():
        codes = model.encode(x).mean.numpy()
    # Untrained, the ten medians lie within 0.25 of each other, on a plane 8 wide: written at their medians, the
    # numerals would overlap (the closest pair 0.002 inches apart). Measured on the page as drawn, after layout:
    figure.canvas.draw()
    spots = plane.transData.transform(np.array([texts[d] for d in range(10)])) / figure.dpi
    gaps = np.hypot(*(spots[:, None] - spots[None]).transpose(2, 0, 1))[np.triu_indices(10, 1)]
    height = plane.texts[0].get_window_extent().height / figure.dpi  # 0.17 inches at 12 pt
    assert gaps.min() > height
    assert gaps.min() >= 0.22 - 0.01  # the spacing write_digit_labels promises, at the plane's size as drawn
    # Each numeral belongs to its own digit's cloud: a moved one by a line from that digit's own median to it,
    # one left in place within half the gap (0.11 in) of it. A numeral paired with another digit's median, or
    # medians taken from shifted labels, fails this.
    leaders = [line for line in plane.lines if len(line.get_xdata()) == 2]
    for digit in range(10):
        median = torch.tensor(codes[labels.numpy() == digit]).median(0).values.numpy()
        ends_here = [line for line in leaders
                     if np.allclose([line.get_xdata()[1], line.get_ydata()[1]], texts[digit])]
        if ends_here:
            (line,) = ends_here
            assert np.allclose([line.get_xdata()[0], line.get_ydata()[0]], median, atol=1e-6), digit
        else:
            offset = plane.transData.transform(texts[digit]) - plane.transData.transform(median)
            assert np.hypot(*offset) / figure.dpi <= 0.11 + 1e-6, digit
    matplotlib.pyplot.close(figure)


def test_bad_arguments_are_refused_by_name(small):
    model, x, labels = small
    with pytest.raises(ValueError, match="model"):
        latent_space.latent_space_explorer(lvm.VAE(784, 3, hidden=(8,)), x, labels)
    with pytest.raises(ValueError, match="labels"):
        latent_space.latent_space_explorer(model, x, labels[:10])
    with pytest.raises(ValueError, match="x must have 784"):
        latent_space.latent_space_explorer(model, x[:, :100], labels)
    with pytest.raises(ValueError, match="z_range"):
        latent_space.latent_space_explorer(model, x, labels, z_range=(2.0, -2.0))
    with pytest.raises(ValueError, match="image_shape"):
        latent_space.latent_space_explorer(model, x, labels, image_shape=(28, 27))
    with pytest.raises(ValueError, match="max_codes"):
        latent_space.latent_space_explorer(model, x, labels, max_codes=0)
    with pytest.raises(ValueError, match="start"):
        latent_space.latent_space_explorer(model, x, labels, start=(9.0, 0.0))
