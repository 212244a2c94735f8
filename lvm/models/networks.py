"""The neural networks inside a VAE: the encoder g(x; θ) and the decoder f(z; φ).

Two families, both plain ``nn.Module`` stacks a reader can print and read:

- :func:`mlp`: fully connected layers with ReLU between them. With no hidden layers it is a single affine
  map, which is what makes a VAE's decoder *linear* (and so comparable with the exact linear-Gaussian model).
- :class:`ConvEncoder` / :class:`ConvDecoder`: a small convolutional pair for 28×28 images (MNIST), two
  stride-2 convolutions down to 7×7 and two transposed convolutions back up.

Every network here maps ``[..., in_dim]`` to ``[..., out_dim]`` over any leading dimensions, so the decoder
can take z of shape ``[k, n, z_dim]`` (k importance samples for each of n images) without reshaping by the
caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_positive_int

__all__ = ["IMAGE_SIDE", "ConvDecoder", "ConvEncoder", "layer_widths", "mlp"]

IMAGE_SIDE = 28  # the conv networks are built for 28 × 28 single-channel images (x_dim = 784)
_CHANNELS = (32, 64)  # channels after the first and the second stride-2 convolution
_GRID = IMAGE_SIDE // 4  # two stride-2 convolutions: 28 -> 14 -> 7


def layer_widths(hidden: Any, name: str = "hidden") -> tuple[int, ...]:
    """``hidden`` as a tuple of positive layer widths (``()`` for none), or a ``ValueError`` naming ``name``."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise ValueError(f"{name} must be a sequence of layer widths such as (400,) or () for none, got {hidden!r}")
    try:
        return tuple(check_positive_int(width, name) for width in hidden)
    except ValueError:
        raise ValueError(f"{name} must hold positive integers (layer widths), got {tuple(hidden)!r}") from None


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear → ReLU → … → Linear, with the widths in ``hidden``; ``hidden=()`` gives one affine map.

    No activation after the last layer: its output is a mean, a logit or a raw scale, each unconstrained.
    """
    widths = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """``[..., 784]`` images → ``[..., out_dim]``: two stride-2 convolutions, then an MLP head.

    Args:
        out_dim: output width (``2 * z_dim`` for a VAE: a mean and a raw scale per latent dimension).
        hidden: widths of the fully connected layers between the convolutions and the output.
    """

    def __init__(self, out_dim: int, hidden: Sequence[int] = (400,)):
        super().__init__()
        c1, c2 = _CHANNELS
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=4, stride=2, padding=1), nn.ReLU(),   # 28 -> 14
            nn.Conv2d(c1, c2, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Flatten(),
        )
        self.head = mlp(c2 * _GRID * _GRID, hidden, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        images = x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        out: torch.Tensor = self.head(self.features(images))
        return out.reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """``[..., z_dim]`` → ``[..., 784]``: an MLP up to a 64 × 7 × 7 grid, then two transposed convolutions.

    Args:
        z_dim: latent dimension.
        hidden: widths of the fully connected layers between z and the 7 × 7 grid.
    """

    def __init__(self, z_dim: int, hidden: Sequence[int] = (400,)):
        super().__init__()
        c1, c2 = _CHANNELS
        self.head = nn.Sequential(mlp(z_dim, hidden, c2 * _GRID * _GRID), nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c1, 1, kernel_size=4, stride=2, padding=1),              # 14 -> 28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        grid = self.head(z.reshape(-1, z.shape[-1])).reshape(-1, _CHANNELS[1], _GRID, _GRID)
        out: torch.Tensor = self.upsample(grid)
        return out.reshape(*lead, IMAGE_SIDE * IMAGE_SIDE)
