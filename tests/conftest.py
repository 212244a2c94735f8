"""Fixtures that several test files share: small models and data sets, each built one way, here.

Factories (``linear_gaussian``, ``binary_data``, ``small_vae``) are fixtures that return a function, so a test
asks for the model it needs (``linear_gaussian(d_x=5, seed=3)``) and every file builds it the same way.

:data:`MODELS` is the one registry of models that the contract test (``test_contract.py``) and the meta-device
test (``test_meta_device.py``) run over: every model of the package, and the two that chapters 3 and 4 write
for themselves. A new model is added there, once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

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


# --- the model registry ---------------------------------------------------------------------------------------


class DecoderModel(lvm.LatentVariableModel):
    """Chapter 3's model, as the chapter writes it: p(z) = N(0, I), p(x | z) = N(f(z; φ), σ² I), f any network;
    ``prior()`` and ``likelihood(z)`` and nothing else (no ``check_x``, no ``x_dim``, CPU tensors only)."""

    def __init__(self, decoder: nn.Module, z_dim: int, sigma: float):
        super().__init__()
        self.decoder, self.z_dim, self.sigma = decoder, z_dim, sigma

    def prior(self) -> Distribution:
        zeros = torch.zeros(self.z_dim)
        return Independent(Normal(zeros, torch.ones(self.z_dim)), 1)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        mean = self.decoder(z)  # f(z; φ), batched over z's leading dims
        return Independent(Normal(mean, self.sigma * torch.ones_like(mean)), 1)


class SquareModel(lvm.LatentVariableModel):
    """Chapter 4's model, as the chapter writes it: p(z) = N(0, 1), p(x | z) = N(z², σ²); no parameters."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def prior(self) -> Distribution:
        return Independent(Normal(torch.zeros(1), torch.ones(1)), 1)

    def likelihood(self, z: torch.Tensor) -> Distribution:
        return Independent(Normal(z**2, self.sigma), 1)


def make_decoder_model() -> DecoderModel:
    torch.manual_seed(0)
    return DecoderModel(nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 2)), z_dim=1, sigma=0.2)


def make_conditional_vae() -> lvm.ConditionalVAE:
    torch.manual_seed(0)
    return lvm.ConditionalVAE(10, 3, 2, hidden=(8,))


def make_two_level_vae() -> lvm.TwoLevelVAE:
    torch.manual_seed(0)
    return lvm.TwoLevelVAE(10, 3, 2, hidden=(8,), hidden_top=(4,))


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """One model of the registry: a name, a function that builds it afresh (seeded), and what it is."""

    name: str
    build: Callable[[], lvm.LatentVariableModel]
    chapter: bool = False  # a chapter's own model: prior() and likelihood(z) only, on the CPU

    def __str__(self) -> str:
        return self.name

    def labels(self, model: lvm.LatentVariableModel, n: int) -> torch.Tensor | None:
        """Labels ``[n]`` (0, 1, ..., C - 1, 0, ...) for a conditional model; ``None`` for any other."""
        return torch.arange(n) % model.n_classes if isinstance(model, lvm.ConditionalVAE) else None

    def model_of_x(self, model: lvm.LatentVariableModel, n: int) -> lvm.LatentVariableModel:
        """The model of x alone that sampling and the bounds take: ``model.given(y)`` for a conditional model,
        with :meth:`labels` for n points; the model itself otherwise."""
        y = self.labels(model, n)
        return model if y is None else model.given(y)

    def data(self, model: lvm.LatentVariableModel, n: int, seed: int = 0
             ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """A tiny random binary batch that ``lvm.fit`` takes: x ``[n, x_dim]``, or ``(x, y)`` for a conditional
        model."""
        assert isinstance(model.x_dim, int), f"{self.name} has no x_dim: fit cannot train it"
        x = make_binary_data(n, model.x_dim, p=0.5, seed=seed)
        y = self.labels(model, n)
        return x if y is None else (x, y)


MODELS: list[ModelCase] = [
    ModelCase("mixture 1-D", lambda: lvm.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.0])),
    ModelCase("mixture 3-D", lambda: lvm.GaussianMixture([0.5, 0.5], torch.zeros(2, 3), torch.ones(2, 3))),
    ModelCase("linear-Gaussian", lambda: make_linear_gaussian(d_x=4, d_z=2, dtype=torch.float32)),
    ModelCase("VAE bernoulli mlp", lambda: make_small_vae(hidden=(8,))),
    ModelCase("VAE gaussian mlp", lambda: make_small_vae(hidden=(8,), likelihood="gaussian")),
    ModelCase("VAE gaussian linear", lambda: make_small_vae(hidden=(), likelihood="gaussian", sigma=0.5)),
    ModelCase("VAE bernoulli conv", lambda: make_small_vae(x_dim=784, hidden=(8,), architecture="conv")),
    ModelCase("conditional VAE", make_conditional_vae),
    ModelCase("two-level VAE", make_two_level_vae),
    ModelCase("chapter 3 decoder model", make_decoder_model, chapter=True),
    ModelCase("chapter 4 square model", lambda: SquareModel(sigma=0.5), chapter=True),
]
"""Every model, by name: ``pytest.mark.parametrize("case", MODELS, ids=str)``."""

TRAINABLE: list[ModelCase] = [case for case in MODELS if case.build().has_encoder]
"""The models that :func:`lvm.fit` trains: those with an encoder."""
