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
    ring = explorer.figure.axes[0].lines[-1]
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
        codes = encode(x[:50]).mean
    plane = explorer.figure.axes[0]
    drawn = np.concatenate([c.get_offsets() for c in plane.collections])
    assert drawn.shape == (50, 2)
    assert np.allclose(np.sort(drawn, axis=0), np.sort(codes.numpy(), axis=0), atol=1e-6)


def test_the_stand_in_draws_each_setting(small):
    model, x, labels = small
    explorer = latent_space.latent_space_explorer(model, x, labels, z_range=(-4, 4))
    settings = [{"z1": -1.0, "z2": 0.5}, {"z1": 2.5, "z2": -2.0}]
    figure = explorer.stand_in(settings)
    titles = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert titles == ["z1 = -1, z2 = 0.5", "z1 = 2.5, z2 = -2"]
    for sub, setting in zip(figure.subfigs, settings):
        expected = latent_space.decoded_mean(model, setting["z1"], setting["z2"]).reshape(28, 28).numpy()
        assert np.allclose(np.asarray(sub.axes[1].images[0].get_array()), expected, atol=1e-6)
    matplotlib.pyplot.close(figure)


def test_without_z_range_the_plane_spans_the_codes_rounded_up(small):
    model, x, labels = small
    for scale, expected in [(1.0, 1.0), (10.0, 7.0)]:  # codes up to 0.66, then (scaled) up to 6.6
        with torch.no_grad():
            model.encoder[-1].weight.mul_(scale)
            model.encoder[-1].bias.mul_(scale)
            edge = model.encode(x).mean.abs().max().item()
        assert max(1, np.ceil(edge)) == expected
        explorer = latent_space.latent_space_explorer(model, x, labels)
        slider = explorer.controls["z1"]
        assert (slider.min, slider.max) == (-expected, expected)
        assert explorer.figure.axes[0].get_xlim() == pytest.approx((-expected, expected))


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
