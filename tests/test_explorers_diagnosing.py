"""Chapter 8's explorer: the image it shows is the decoder's mean at code + η · vector."""

from __future__ import annotations

import io
import time

import matplotlib
import pytest
import torch

import lvm
from lvm.explorers.diagnosing import attribute_explorer
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")


@pytest.fixture
def setting():
    torch.manual_seed(0)
    model = lvm.VAE(784, 4, hidden=(32,)).eval()  # untrained and small: the test is of the drawing
    codes = torch.randn(5, 4)
    vector = 2 * torch.randn(4)
    images = 0.9 * (torch.rand(5, 784) < 0.2).float()  # 0 and 0.9: not the full range of the scale
    return model, codes, vector, images


def test_the_shown_image_is_the_decoders_mean_at_the_code_plus_the_step_times_the_vector(setting):
    model, codes, vector, images = setting
    explorer = attribute_explorer(model, codes, vector, images=images)
    assert_control_changes_drawing(explorer, "strength", 2.0)
    assert_control_changes_drawing(explorer, "image", 3)
    original, shown, along = explorer.figure.axes
    # Where the panels sit, as the caption says: the input top left, the decoded image below it, the curve
    # to the right of both. Positions are read after drawing, once constrained layout has placed them;
    # swapping the input's and the decoded image's rows (creation order unchanged) fails the first line.
    explorer.figure.savefig(io.BytesIO())
    top, below, right = (ax.get_position() for ax in (original, shown, along))
    assert top.y0 > below.y1
    assert max(top.x1, below.x1) < right.x0
    # and their titles and axis labels: with "input" and "decoded" swapped the panels would still sit right
    # but say the wrong thing, which these lines catch; the curve's axes are η and the measure, ink.
    assert (original.get_title(), shown.get_title()) == ("input", "decoded")
    assert (along.get_xlabel(), along.get_ylabel()) == ("step η", "ink")
    with torch.no_grad():
        expected = model.decode(codes[3] + 2.0 * vector)
    # A step along -vector, or the code of image 0, would differ from this by more than 0.01 somewhere.
    assert torch.allclose(torch.as_tensor(shown.images[0].get_array()), expected.reshape(28, 28),
                          atol=1e-6)
    assert not torch.allclose(expected, model.decode(codes[3] - 2.0 * vector).detach(), atol=1e-2)
    assert torch.equal(torch.as_tensor(original.images[0].get_array()), images[3].reshape(28, 28))
    # Both images on one fixed scale, 0 white and 1 black: without vmin/vmax each would follow its own
    # range, (0, 0.9) for the input and (0.03, 0.94) for the decoded mean; "gray" would draw ink white.
    for image in (original.images[0], shown.images[0]):
        assert image.get_clim() == (0, 1)
        assert image.get_cmap().name == "gray_r"
    # The marked point is (η, ink of that image); the title prints the same ink, to three decimals.
    marker = along.lines[-1]
    assert marker.get_xdata()[0] == 2.0
    assert marker.get_ydata()[0] == pytest.approx(float(expected.mean()), abs=1e-6)
    assert along.get_title() == f"ink {float(expected.mean()):.3f}"
    # The curve along η is decoded in one batch; at η = 2 it passes through the marked point.
    curve = along.lines[-2]
    assert curve.get_xdata()[0] == -3.0 and curve.get_xdata()[-1] == 3.0  # the whole range, not half of it
    at_two = list(curve.get_xdata()).index(2.0)
    assert curve.get_ydata()[at_two] == pytest.approx(float(expected.mean()), abs=1e-5)
    # and everywhere else it is the ink of the decoded code + η · vector: a curve decoded at |η|, right for
    # η >= 0 and wrong on the whole half η < 0 (the chapter's stand-in draws η = -2), is off by up to 0.011
    # there and fails, which the point at η = 2 alone cannot catch.
    steps = torch.tensor(curve.get_xdata(), dtype=torch.float32)
    with torch.no_grad():
        inks = model.decode(codes[3] + steps[:, None] * vector).mean(-1)
    assert torch.allclose(torch.tensor(curve.get_ydata(), dtype=torch.float32), inks, atol=1e-5)
    # The dotted line is the input image's own ink, and the legend names both lines.
    assert along.lines[0].get_ydata()[0] == pytest.approx(float(images[3].mean()))
    assert along.lines[0].get_linestyle() == ":"  # dotted, as the caption says
    assert [text.get_text() for text in along.get_legend().get_texts()] == ["input", "decoded"]
    # A negative step, as two of the chapter's stand-in panels show: an image decoded at |η| would show the
    # η = +2 image here, which the lines above (all at η = +2) cannot catch.
    explorer.controls["strength"].value = -2.0
    original, shown, along = explorer.figure.axes
    with torch.no_grad():
        expected = model.decode(codes[3] - 2.0 * vector)
    assert torch.allclose(torch.as_tensor(shown.images[0].get_array()), expected.reshape(28, 28),
                          atol=1e-6)
    marker = along.lines[-1]
    assert marker.get_xdata()[0] == -2.0
    assert marker.get_ydata()[0] == pytest.approx(float(expected.mean()), abs=1e-6)
    # A step between whole numbers (the slider moves by 0.25): a dot drawn at round(η) would sit at 1.
    explorer.controls["strength"].value = 0.75
    original, shown, along = explorer.figure.axes
    with torch.no_grad():
        expected = model.decode(codes[3] + 0.75 * vector)
    marker = along.lines[-1]
    assert marker.get_xdata()[0] == 0.75
    assert marker.get_ydata()[0] == pytest.approx(float(expected.mean()), abs=1e-6)


def test_each_images_curve_is_decoded_once(setting):
    model, codes, vector, images = setting
    decode, calls = model.decode, []

    def counting(z):
        calls.append(tuple(z.shape))
        return decode(z)

    model.decode = counting
    explorer = attribute_explorer(model, codes, vector, images=images, strengths=(-2.0, 2.0), step=0.5)
    points = len(explorer.figure.axes[2].lines[1].get_xdata())  # the curve's points along η: 17 here
    for image, strength in [(3, 0.5), (0, 1.0), (3, -1.0), (0, 0.0)]:  # each changes both controls
        explorer.controls["image"].value = image
        explorer.controls["strength"].value = strength
    # Nine drawings (the first and eight redraws) of images 0 and 3: one curve for each image, where
    # decoding the curve on every redraw would give 9.
    assert calls.count((points, 4)) == 2
    assert calls.count((4,)) == 9  # one code per drawing
    assert calls.count((1, 4)) == 1  # the check of what the decoder returns


def test_a_redraw_is_cheap_and_the_stand_in_titles_each_setting(setting):
    model, codes, vector, _ = setting
    explorer = attribute_explorer(model, codes, vector, strengths=(-2.0, 2.0), step=0.5)
    assert len(explorer.figure.axes) == 2  # no images: the decoded image and the curve
    assert explorer.figure.axes[0].get_title() == "decoded"  # not "input": there is none
    explorer.controls["image"].value = 1  # its curve decoded now, as on its first showing
    start = time.perf_counter()
    explorer.controls["strength"].value = 1.5
    explorer.figure.savefig(io.BytesIO())  # rendered, as the notebook shows it
    assert time.perf_counter() - start < 3.0  # about 0.25 s on a shared 2-core machine; room for CI
    stand_in = explorer.stand_in([{"strength": -2.0, "image": 1}, {"strength": 2.0, "image": 1}])
    titles = [sub._suptitle.get_text() for sub in stand_in.subfigs if sub.get_visible()]
    assert titles == ["η = \u22122, image = 1", "η = 2, image = 1"]
    with torch.no_grad():
        far = model.decode(codes[1] + 2.0 * vector).reshape(28, 28)
    assert torch.allclose(torch.as_tensor(stand_in.subfigs[1].axes[0].images[0].get_array()), far,
                          atol=1e-6)


def test_the_controls_start_at_no_edit_and_offer_every_image(setting):
    model, codes, vector, images = setting
    explorer = attribute_explorer(model, codes, vector, images=images)
    slider, choice = explorer.controls["strength"], explorer.controls["image"]
    # Every one of the n = 5 images can be chosen (the chapter promises "another of the eight images");
    # range(n - 1) would leave the last out.
    assert tuple(choice.options) == tuple(range(len(codes)))
    # The slider starts at η = 0, the unedited code, and moves in the step asked for (0.25 by default):
    # starting at the lowest η, -3, or a step of 1.0 fails here.
    assert (slider.value, slider.min, slider.max, slider.step) == (0.0, -3.0, 3.0, 0.25)
    assert explorer.figure.axes[2].lines[-1].get_xdata()[0] == 0.0  # and the first drawing marks η = 0
    other = attribute_explorer(model, codes, vector, strengths=(-1.0, 2.0), step=0.5)
    assert (other.controls["strength"].value, other.controls["strength"].step) == (0.0, 0.5)
    # A range without 0 starts at its end nearest to 0.
    assert attribute_explorer(model, codes, vector, strengths=(0.5, 2.0)).controls["strength"].value == 0.5
    assert attribute_explorer(model, codes, vector, strengths=(-2.0, -0.5)).controls["strength"].value == -0.5


def test_bad_arguments_are_named(setting):
    model, codes, vector, images = setting
    with pytest.raises(TypeError, match="model"):
        attribute_explorer(object(), codes, vector)
    with pytest.raises(ValueError, match="codes"):
        attribute_explorer(model, codes[0], vector)
    with pytest.raises(ValueError, match="vector"):
        attribute_explorer(model, codes, vector[:3])
    with pytest.raises(ValueError, match="images"):
        attribute_explorer(model, codes, vector, images=images[:4])
    with pytest.raises(ValueError, match="strengths"):
        attribute_explorer(model, codes, vector, strengths=(1.0, -1.0))
    with pytest.raises(ValueError, match="step"):
        attribute_explorer(model, codes, vector, step=0.0)
    with pytest.raises(ValueError, match="shape"):
        attribute_explorer(model, codes, vector, shape=(20, 20))
