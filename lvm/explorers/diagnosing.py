"""Chapter 8's explorer: how far to move a code along an attribute vector, and what the decoder makes of it.

:func:`attribute_explorer` decodes μ(x) + η e, the code of one image moved by a step η (a slider) along an
attribute vector e, and plots the attribute of the decoded image (by default its ink, the mean pixel,
:func:`ink`) along the whole range of η. It returns an :class:`lvm.widgets.Explorer`. The codes are computed
once, by the caller; a redraw decodes one code, and each image's curve is decoded once, the first time the
image is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from matplotlib.ticker import MaxNLocator

from ..plot import COLORS
from ..widgets import Explorer

__all__ = ["attribute_explorer", "ink"]


def ink(images: torch.Tensor) -> torch.Tensor:
    """The share of pixels on, the mean over the last dimension: for pixel probabilities, the expected share."""
    return images.mean(-1)


def attribute_explorer(model, codes, vector, images=None, strengths: Sequence[float] = (-3.0, 3.0),
                       step: float = 0.25, shape: Sequence[int] = (28, 28),
                       measure: Callable[[torch.Tensor], torch.Tensor] = ink,
                       measure_name: str = "ink") -> Explorer:
    """A slider for the step η along the attribute ``vector`` e and a choice of image, redrawing the decoded
    mean x̄(μ + η e) of the chosen code μ (a row of ``codes``) beside ``measure`` of the decoded image along
    the slider's whole range, the current η marked.

    ``model`` is anything with ``decode(z)`` returning the decoder's mean (a VAE: pixel probabilities);
    ``codes`` is ``[n, z_dim]`` (the encoder means of the images to edit), ``vector`` is ``[z_dim]``, and
    ``images`` (optional, ``[n, prod(shape)]``) are the images themselves, drawn on the left, their
    ``measure`` a dotted line; a legend names the lines. ``strengths`` is the slider's range ``(lowest, highest)``.
    """
    import ipywidgets as widgets

    if not callable(getattr(model, "decode", None)):
        raise TypeError(f"model must have a decode(z) method returning the decoder's mean, "
                        f"got {type(model).__name__}")
    codes = torch.as_tensor(codes).detach().cpu()
    if codes.ndim != 2 or codes.shape[0] < 1 or not codes.is_floating_point():
        raise ValueError(f"codes must be a float tensor of shape [n, z_dim] with n >= 1, "
                         f"got shape {tuple(codes.shape)}")
    n, z_dim = codes.shape
    vector = torch.as_tensor(vector).detach().cpu().to(codes.dtype)
    if vector.shape != (z_dim,):
        raise ValueError(f"vector must have shape [z_dim] = [{z_dim}] like a row of codes, "
                         f"got {tuple(vector.shape)}")
    if len(strengths) != 2 or not all(math.isfinite(s) for s in strengths) or strengths[0] >= strengths[1]:
        raise ValueError(f"strengths must be (lowest, highest) with lowest < highest, got {tuple(strengths)}")
    lowest, highest = float(strengths[0]), float(strengths[1])
    if not (step > 0 and step <= highest - lowest):
        raise ValueError(f"step must be positive and at most highest - lowest = {highest - lowest:g}, "
                         f"got {step!r}")
    size = math.prod(shape)
    if images is not None:
        images = torch.as_tensor(images).detach().cpu().float().reshape(len(images), -1)
        if images.shape != (n, size):
            raise ValueError(f"images must have shape [n, prod(shape)] = [{n}, {size}], one per code, "
                             f"got {tuple(images.shape)}")

    def decode(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.decode(z).detach().float().cpu()

    first = decode(codes[:1])
    if first.shape[-1] != size:
        raise ValueError(f"shape {tuple(shape)} has {size} pixels, but the decoder returns "
                         f"{first.shape[-1]} values per code")

    grid = torch.linspace(lowest, highest, 1 + round((highest - lowest) / step) * 2).to(codes.dtype)
    curves: dict[int, torch.Tensor] = {}

    def curve(index: int) -> torch.Tensor:
        if index not in curves:  # decoded once per image, on the first showing
            curves[index] = measure(decode(codes[index] + grid[:, None] * vector))
        return curves[index]

    controls = {
        "strength": widgets.FloatSlider(value=min(max(0.0, lowest), highest), min=lowest, max=highest,
                                        step=step, description="η"),
        "image": widgets.Dropdown(options=list(range(n)), value=0, description="image"),
    }

    def draw(fig, strength, image):
        if not 0 <= image < n:
            raise ValueError(f"image must be an index from 0 to {n - 1}, got {image!r}")
        decoded = decode(codes[image] + strength * vector)
        value = float(measure(decoded))
        grid_spec = fig.add_gridspec(2, 2, width_ratios=(1, 1.7))
        if images is None:  # the decoded image, and the curve beside it
            shown = fig.add_subplot(grid_spec[:, 0])
            along = fig.add_subplot(grid_spec[:, 1])
        else:  # the input above the decoded image, and the curve beside both
            original = fig.add_subplot(grid_spec[0, 0])
            shown = fig.add_subplot(grid_spec[1, 0])
            along = fig.add_subplot(grid_spec[:, 1])
            original.imshow(images[image].reshape(*shape).numpy(), cmap="gray_r", vmin=0, vmax=1,
                            interpolation="nearest")
            original.set_axis_off()
            original.set_title("input")
            along.axhline(float(measure(images[image])), color="black", ls=":", lw=1, label="input")
        shown.imshow(decoded.reshape(*shape).numpy(), cmap="gray_r", vmin=0, vmax=1,
                     interpolation="nearest")
        shown.set_axis_off()
        shown.set_title("decoded")
        along.plot(grid.numpy(), curve(image).numpy(), color=COLORS[0], label="decoded")
        along.plot([strength], [value], "o", color=COLORS[3], ms=7)
        along.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        along.set_xlabel("step η")
        along.set_ylabel(measure_name)
        along.set_title(f"{measure_name} {value:.3f}")
        along.legend(loc="best")  # the style's legend size (9 pt)

    return Explorer(draw, controls, figsize=(6.4, 2.6))
