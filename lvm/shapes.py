"""A procedural data set whose factors of variation are known (chapter 8, disentanglement).

Each image holds one white shape on black: a square, an ellipse or a triangle, at a position (x, y), with a
scale and a rotation, all drawn uniformly at random from a seed. Because every image is made from its five
factors, a model's latent code can be compared with them: this is what a disentanglement score such as the
mutual-information gap (:func:`lvm.diagnostics.mutual_information_gap`) needs, and what MNIST lacks.

The images are rendered in one vectorised pass: every pixel is split into ``supersample`` × ``supersample``
sub-pixels, each sub-pixel is tested for lying inside the shape, and a pixel's grey level is the fraction
that does (anti-aliasing). Use it as ``lvm.data.shapes(n)``.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ._checks import check_int, check_positive_int

__all__ = ["FACTOR_NAMES", "KINDS", "ROTATION_RANGE", "SCALE_RANGE", "Shapes", "shapes"]

#: The shapes, in the order of the factor ``shape`` (0, 1, 2).
KINDS: tuple[str, ...] = ("square", "ellipse", "triangle")
#: The columns of :attr:`lvm.shapes.Shapes.factors`.
FACTOR_NAMES: tuple[str, ...] = ("shape", "x", "y", "scale", "rotation")
#: Half-size of a shape as a fraction of the image side (the square's half side, the ellipse's long semi-axis,
#: the distance from the triangle's centre to a corner).
SCALE_RANGE: tuple[float, float] = (0.12, 0.25)
#: Rotation in radians, within ±30°, so that every angle looks different for all three shapes (a square looks
#: the same after 90°, a triangle after 120°, an ellipse after 180°, and the range spans only 60°).
ROTATION_RANGE: tuple[float, float] = (-math.pi / 6, math.pi / 6)
_ELLIPSE_ASPECT = 0.5  # short semi-axis / long semi-axis
# Sub-pixels rendered at once: 2,048 images of the default 20 x 20 pixels at 4 x 4 sub-pixels. The number of
# images per chunk follows from it (a fixed 2,048 images of 512 x 512 pixels asked the allocator for 30 GB).
_BUDGET = 2048 * 80 * 80


def _chunk_size(side: int, supersample: int) -> int:
    return max(1, _BUDGET // (side * supersample) ** 2)


@dataclasses.dataclass
class Shapes:
    """Images of shapes and the factors that made them.

    Attributes:
        images: ``float32 [n, side * side]`` in [0, 1], rows of the image one after the other (row = y).
        factors: ``float32 [n, 5]``, the columns of :data:`~lvm.shapes.FACTOR_NAMES`: ``shape`` (0, 1, 2 for
            :data:`~lvm.shapes.KINDS`), the centre ``x`` and ``y`` as fractions of the side (in [0.25, 0.75]), ``scale``
            (in :data:`~lvm.shapes.SCALE_RANGE`) and ``rotation`` in radians (in :data:`~lvm.shapes.ROTATION_RANGE`).
        names: :data:`~lvm.shapes.FACTOR_NAMES`.
        side: the image side in pixels.
    """

    images: torch.Tensor
    factors: torch.Tensor
    names: tuple[str, ...]
    side: int

    def __len__(self) -> int:
        return self.images.shape[0]


def shapes(n: int, side: int = 20, seed: int = 0, supersample: int = 2) -> Shapes:
    """``n`` images of one shape each, with their factors drawn uniformly from ``seed`` (same seed, same data).

    Args:
        n: number of images, >= 1.
        side: image side in pixels, >= 8 (the images have ``side * side`` pixels).
        seed: seed of the factors' draws.
        supersample: sub-pixels per pixel along each axis for anti-aliasing (1: hard edges, pixels in {0, 1}).

    Returns:
        A :class:`~lvm.shapes.Shapes` with ``images [n, side * side]`` in [0, 1] and ``factors [n, 5]``.
    """
    n = check_positive_int(n, "n")
    side = check_int(side, "side", minimum=8)
    seed = check_int(seed, "seed")
    supersample = check_positive_int(supersample, "supersample")
    gen = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, len(KINDS), (n,), generator=gen)
    x, y = (0.25 + 0.5 * torch.rand(n, generator=gen, dtype=torch.float64) for _ in range(2))
    scale = _uniform(n, SCALE_RANGE, gen)
    rotation = _uniform(n, ROTATION_RANGE, gen)
    chunk = _chunk_size(side, supersample)
    images = torch.cat([_render(kind[i:i + chunk], x[i:i + chunk], y[i:i + chunk], scale[i:i + chunk],
                                rotation[i:i + chunk], side, supersample) for i in range(0, n, chunk)])
    factors = torch.stack([kind.to(torch.float64), x, y, scale, rotation], dim=1).to(torch.float32)
    return Shapes(images, factors, FACTOR_NAMES, side)


def _uniform(n: int, bounds: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64)


def _render(kind: torch.Tensor, x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor, rotation: torch.Tensor,
            side: int, supersample: int) -> torch.Tensor:
    """Grey levels ``float32 [m, side * side]``: the fraction of each pixel's sub-pixels inside the shape."""
    fine = side * supersample
    centres = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine  # sub-pixel centres in (0, 1)
    kind, x, y, scale, rotation = kind, x.float(), y.float(), scale.float(), rotation.float()
    dx = centres[None, None, :] - x[:, None, None]  # [m, 1, fine]: columns
    dy = centres[None, :, None] - y[:, None, None]  # [m, fine, 1]: rows
    cos, sin = torch.cos(rotation)[:, None, None], torch.sin(rotation)[:, None, None]
    s = scale[:, None, None]
    a = (cos * dx + sin * dy) / s  # [m, fine, fine], coordinates in the shape's own frame
    b = (-sin * dx + cos * dy) / s
    square = torch.maximum(a.abs(), b.abs()) <= 1
    ellipse = a ** 2 + (b / _ELLIPSE_ASPECT) ** 2 <= 1
    triangle = (b >= -0.5) & (b <= 1 - math.sqrt(3) * a.abs())  # corners at radius 1, one pointing along +b
    k = kind[:, None, None]
    inside = torch.where(k == 0, square, torch.where(k == 1, ellipse, triangle))
    grey = inside.to(torch.float32).reshape(-1, side, supersample, side, supersample).mean(dim=(2, 4))
    return grey.reshape(-1, side * side)
