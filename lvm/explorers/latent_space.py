"""Chapter 6: walk the latent plane of a VAE with two latent dimensions and see what its decoder draws there.

:func:`latent_space_explorer` has two sliders, z_1 and z_2, that pick a point of the latent plane. Its figure
shows, on the left, the plane with the codes (the means of the encoder's q) of some images, coloured and marked by
digit, each digit written near the median of its codes, and the chosen point ringed, at one scale on both axes;
on the right, the decoder's mean image at that point. The codes are computed once, when the explorer is built;
each redraw decodes the one chosen point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.ticker import MultipleLocator

from ..plot import plot_digit_scatter, write_digit_labels
from ..widgets import Explorer

__all__ = ["decoded_mean", "latent_space_explorer"]


def decoded_mean(model, z1: float, z2: float) -> torch.Tensor:
    """The decoder's mean image at the latent point (z1, z2): ``model.decode`` of it, on the CPU, ``[x_dim]``."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    z = torch.tensor([[float(z1), float(z2)]], dtype=dtype, device=device)
    with torch.no_grad():
        return model.decode(z)[0].detach().cpu()


def latent_space_explorer(model, x: torch.Tensor, labels: torch.Tensor, *,
                          z_range: tuple[float, float] | None = None, step: float = 0.1,
                          max_codes: int = 2_000, image_shape: Sequence[int] = (28, 28),
                          start: tuple[float, float] = (0.0, 0.0)) -> Explorer:
    """Sliders z1, z2 over the latent plane of ``model``; shows the codes of ``x`` and the decoded mean at (z1, z2).

    Args:
        model: a VAE with a two-dimensional latent space (``model.z_dim == 2``), e.g. ``lvm.VAE(784, 2)``, with
            ``encode(x)`` (a distribution whose ``mean`` is the code) and ``decode(z)`` (the mean image).
        x: images ``[n, x_dim]`` whose codes are drawn (only the first ``max_codes``).
        labels: their digits ``[n]``, for the colours and markers of :func:`lvm.plot.plot_digit_scatter`.
        z_range: the range (low, high) of both sliders; ``None`` takes, for each axis, the range of the codes
            drawn, rounded outwards to integers (the smallest coordinate down, the largest up) and widened where
            needed to reach at least -1 and 1. The plane shows these ranges at one scale on both axes: the
            axis whose range is the smaller for its length on the page is widened about its middle.
        step: the sliders' step.
        max_codes: at most this many codes are drawn, and the ranges and medians are those of these codes.
        image_shape: the shape in which the decoder's ``x_dim`` outputs are shown.
        start: the sliders' first values.

    The image is drawn in grey levels from 0 (white) to 1 (black), the range of a Bernoulli decoder's means.
    """
    import ipywidgets as widgets

    z_dim = getattr(model, "z_dim", None)
    # has_encoder: the base class declares encode for every model, so its presence alone says nothing.
    if not (getattr(model, "has_encoder", hasattr(model, "encode")) and hasattr(model, "decode")):
        raise TypeError(f"model must be a VAE with encode and decode methods, got {type(model).__name__}")
    if z_dim != 2:
        raise ValueError(f"model must have a two-dimensional latent space (z_dim = 2), got z_dim = {z_dim}")
    x = torch.as_tensor(x)
    labels = torch.as_tensor(labels)
    if x.ndim != 2:
        raise ValueError(f"x must be a batch of flattened images [n, x_dim], got shape {tuple(x.shape)}")
    x_dim = getattr(model, "x_dim", None)
    x_dim = x.shape[1] if x_dim is None else x_dim
    if x.shape[1] != x_dim:
        raise ValueError(f"x must have {x_dim} columns, the model's x_dim, got shape {tuple(x.shape)}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape [{x.shape[0]}], one digit per image, got {tuple(labels.shape)}")
    image_shape = tuple(int(side) for side in image_shape)
    if math.prod(image_shape) != x_dim:
        raise ValueError(f"image_shape must hold x_dim = {x_dim} pixels, got {image_shape}")
    if z_range is not None:
        lo, hi = (float(value) for value in z_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"z_range must be two finite numbers (low, high) with low < high, got {z_range!r}")
    if isinstance(max_codes, bool) or not isinstance(max_codes, int) or max_codes < 1:
        raise ValueError(f"max_codes must be a positive integer, got {max_codes!r}")

    # The expensive part, once: the codes (the means of q) of the images shown on the plane.
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else x.dtype
    shown = x[:max_codes].to(device=device, dtype=dtype)
    with torch.no_grad():
        codes = model.encode(shown).mean.detach().cpu()
    code_labels = labels[:max_codes].cpu()
    if z_range is None:
        if not torch.isfinite(codes).all():
            raise ValueError("the model encodes x to codes that are not finite; pass z_range explicitly")
        ranges = [(float(min(-1, math.floor(axis.min()))), float(max(1, math.ceil(axis.max()))))
                  for axis in codes.T]
    else:
        ranges = [(lo, hi), (lo, hi)]
    for (lo, hi) in ranges:
        if not (isinstance(step, (int, float)) and 0 < step <= hi - lo):
            raise ValueError(f"step must be a number in (0, {hi - lo:g}], got {step!r}")
    if len(start) != 2 or not all(lo <= float(value) <= hi for value, (lo, hi) in zip(start, ranges)):
        raise ValueError(f"start must be a point (z1, z2) inside the ranges {ranges}, got {start!r}")

    controls = {name: widgets.FloatSlider(value=float(value), min=lo, max=hi, step=step,
                                          description=description, continuous_update=False)
                for name, description, value, (lo, hi) in zip(("z1", "z2"), ("z₁", "z₂"), start, ranges)}

    digits = [int(digit) for digit in torch.unique(code_labels)]
    medians = np.array([codes[code_labels == digit].median(0).values.numpy() for digit in digits])

    # One tick step for both axes: 1, 2 or 5 times a power of ten, at most five steps across the wider range.
    span = max(hi - lo for lo, hi in ranges)
    magnitude = 10.0 ** math.floor(math.log10(span / 5))
    tick_step = next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= 5)

    def draw(fig, z1, z2):
        plane, picture = fig.subplots(1, 2, width_ratios=(1.35, 1))
        plane.set_xlim(*ranges[0])
        plane.set_ylim(*ranges[1])
        for axis in (plane.xaxis, plane.yaxis):  # both ticked at the same step
            axis.set_major_locator(MultipleLocator(tick_step))
        plane.set_xlabel("$z_1$")
        plane.set_ylabel("$z_2$")
        image = decoded_mean(model, z1, z2).reshape(image_shape)
        picture.imshow(image.float().numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        picture.set_axis_off()
        picture.set_title("decoded mean")
        # Layout first: the numerals are spaced, and the scales matched, at the plane's final size.
        fig.figure.draw_without_rendering()
        # One scale on both axes, as the chapter's scatter of the codes has: the axis with fewer units per inch
        # is widened about its middle to the other's scale, so the plane keeps the box the layout gave it.
        box = plane.get_window_extent()
        units_per_pixel = max((hi - lo) / size for (lo, hi), size in zip(ranges, (box.width, box.height)))
        for set_lim, (lo, hi), size in zip((plane.set_xlim, plane.set_ylim), ranges, (box.width, box.height)):
            half = units_per_pixel * size / 2
            set_lim((lo + hi) / 2 - half, (lo + hi) / 2 + half)
        plane.set_aspect("equal", adjustable="box")  # exact, should the last layout move the box a little
        plot_digit_scatter(codes, code_labels, ax=plane, label_digits=False)
        plane.plot([z1], [z2], linestyle="none", marker="o", markersize=12, markerfacecolor="none",
                   markeredgecolor="black", markeredgewidth=2, label="chosen point")
        write_digit_labels(plane, digits, medians)

    return Explorer(draw, controls, figsize=(6.4, 3.3), titles={"z1": "$z_1$", "z2": "$z_2$"})
