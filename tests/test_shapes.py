"""lvm.data.shapes: the procedural data set whose factors of variation are known (chapter 8)."""

import math

import pytest
import torch

import lvm
from lvm.shapes import FACTOR_NAMES, ROTATION_RANGE, SCALE_RANGE


def test_same_seed_same_data_and_factors_in_their_ranges():
    a, b = lvm.data.shapes(300, seed=4), lvm.data.shapes(300, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.factors, b.factors)
    assert not torch.equal(a.factors, lvm.data.shapes(300, seed=5).factors)
    assert a.images.shape == (300, 400) and a.factors.shape == (300, 5) and a.names == FACTOR_NAMES
    assert a.images.min() >= 0 and a.images.max() <= 1
    shape, x, y, scale, rotation = a.factors.T
    assert set(shape.unique().tolist()) == {0.0, 1.0, 2.0}
    assert x.min() >= 0.25 and x.max() <= 0.75 and y.min() >= 0.25 and y.max() <= 0.75
    assert scale.min() >= SCALE_RANGE[0] and scale.max() <= SCALE_RANGE[1]
    assert rotation.min() >= ROTATION_RANGE[0] and rotation.max() <= ROTATION_RANGE[1]


def test_hard_edges_give_binary_pixels():
    d = lvm.data.shapes(50, supersample=1)
    assert set(d.images.unique().tolist()) <= {0.0, 1.0}


def test_ink_matches_each_shapes_area_and_sits_at_its_centre():
    side = 32
    d = lvm.data.shapes(120, side=side, seed=1, supersample=8)  # fine sub-pixels: area to about 1%
    shape, x, y, s, _ = d.factors.T.double()
    area = torch.where(shape == 0, (2 * s) ** 2,  # square of half side s
                       torch.where(shape == 1, math.pi * s * (0.5 * s),  # ellipse, semi-axes s and s/2
                                   3 * math.sqrt(3) / 4 * s**2))  # equilateral triangle, circumradius s
    ink = d.images.double().mean(1)  # the fraction of the image covered
    torch.testing.assert_close(ink, area, rtol=0.06, atol=0.0)
    grid = (torch.arange(side, dtype=torch.float64) + 0.5) / side
    images = d.images.double().reshape(-1, side, side)
    centre_x = (images.sum(1) * grid).sum(1) / images.sum((1, 2))
    centre_y = (images.sum(2) * grid).sum(1) / images.sum((1, 2))
    symmetric = shape < 2  # squares and ellipses: the centroid is the centre (a triangle's is too, but
    torch.testing.assert_close(centre_x[symmetric], x[symmetric], atol=0.01, rtol=0)  # its corners
    torch.testing.assert_close(centre_y[symmetric], y[symmetric], atol=0.01, rtol=0)  # clip less evenly)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be"), (dict(n=5, side=4), "side must be"), (dict(n=5, supersample=0), "supersample"),
    (dict(n=2.5), "n must be"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lvm.data.shapes(**kwargs)


def test_the_chunk_of_images_rendered_at_once_shrinks_with_their_size():
    # A fixed 2,048 images per chunk asked the allocator for about 30 GB at 512 x 512 pixels.
    from lvm import shapes as module

    assert module._chunk_size(20, 4) == 2048  # the default size, as before
    assert module._chunk_size(512, 4) == 3
    assert module._chunk_size(4096, 4) == 1  # one image at a time, however large


def test_chunking_does_not_change_the_images(monkeypatch):
    from lvm import shapes as module

    whole = lvm.data.shapes(7, seed=3, side=12, supersample=2)
    monkeypatch.setattr(module, "_BUDGET", 2 * 24 * 24)  # two images per chunk
    assert module._chunk_size(12, 2) == 2
    chunked = lvm.data.shapes(7, seed=3, side=12, supersample=2)
    assert torch.equal(whole.images, chunked.images) and torch.equal(whole.factors, chunked.factors)
