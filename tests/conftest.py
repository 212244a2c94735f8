"""Fixtures that several test files share: small models and data sets, each built one way, here.

Factories (``linear_gaussian``, ``binary_data``, ``small_vae``) are fixtures that return a function, so a test
asks for the model it needs (``linear_gaussian(d_x=5, seed=3)``) and every file builds it the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import lvm

DT = torch.float64  # the exact models are tested in float64, so that tolerances measure the maths, not rounding

MIXTURE_WEIGHTS, MIXTURE_MEANS, MIXTURE_STDS = [0.3, 0.5, 0.2], [-2.5, 0.5, 3.0], [0.6, 0.9, 0.5]


def make_linear_gaussian(d_x: int = 4, d_z: int = 2, sigma: float = 0.6, seed: int = 0,
                         dtype: torch.dtype = DT) -> lvm.LinearGaussian:
    """A linear-Gaussian model with W ``[d_x, d_z]`` and b ``[d_x]`` drawn N(0, 1) from ``seed`` (in float64,
    then cast to ``dtype``, so a float32 model has the same parameters, rounded)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d_x, d_z, generator=g, dtype=DT)
    b = torch.randn(d_x, generator=g, dtype=DT)
    return lvm.LinearGaussian(W.to(dtype), b.to(dtype), sigma)


def make_binary_data(n: int, d: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` float32 bits, each 1 with probability ``p``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) < p).float()


def make_small_vae(x_dim: int = 16, z_dim: int = 2, hidden=(32,), likelihood: str = "bernoulli", seed: int = 0,
                   **kw) -> lvm.VAE:
    """A small MLP VAE whose initial weights come from ``seed``."""
    torch.manual_seed(seed)
    return lvm.VAE(x_dim, z_dim, hidden, likelihood, **kw)


@pytest.fixture
def linear_gaussian() -> Callable[..., lvm.LinearGaussian]:
    """Factory: :func:`make_linear_gaussian`."""
    return make_linear_gaussian


@pytest.fixture
def binary_data() -> Callable[..., torch.Tensor]:
    """Factory: :func:`make_binary_data`."""
    return make_binary_data


@pytest.fixture
def small_vae() -> Callable[..., lvm.VAE]:
    """Factory: :func:`make_small_vae`."""
    return make_small_vae


@pytest.fixture
def mixture() -> lvm.GaussianMixture:
    """A 1-D mixture of three well-separated components, in float64."""
    return lvm.GaussianMixture(torch.tensor(MIXTURE_WEIGHTS, dtype=DT), torch.tensor(MIXTURE_MEANS, dtype=DT),
                               torch.tensor(MIXTURE_STDS, dtype=DT))
