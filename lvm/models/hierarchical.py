"""A VAE with two layers of latent variables (chapter 9): p(z2) p(z1 | z2) p(x | z1), q(z1 | x) q(z2 | z1).

The model keeps the package's contract by treating z = [z1, z2] as one latent vector: its prior and its
encoder are each a two-step chain of diagonal Gaussians (:class:`GaussianChain`), which draws by the
reparameterisation and evaluates log-densities, so :func:`lvm.elbo <lvm.bounds.elbo>`,
:func:`lvm.iwae_bound <lvm.bounds.iwae_bound>`, :func:`lvm.ancestral_sample` and :func:`lvm.fit` work on it
unchanged (the KL term has no closed form, so the ELBO estimates it by Monte Carlo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch.distributions import Bernoulli, Distribution, Independent, Normal, constraints
from torch.nn import functional as F

from .._checks import check_data, check_positive_int
from .base import LatentVariableModel
from .networks import layer_widths, mlp

_NO_SHAPE = torch.Size()  # rsample's default: one draw per batch element

__all__ = ["GaussianChain", "TwoLevelVAE"]

MIN_STD = 1e-4  # as in lvm.VAE: the scale is softplus(raw) + MIN_STD, finite for any raw output


def _diagonal_gaussian(out: torch.Tensor) -> Independent:
    """N(mean, diag σ²) from a network's output ``[..., 2 d]``: the mean, then the raw scale."""
    mean, raw = out.chunk(2, dim=-1)
    return Independent(Normal(mean, F.softplus(raw) + MIN_STD, validate_args=False), 1)


class GaussianChain(Distribution):
    """a ~ ``first``, then b ~ ``second(a)``, both diagonal Gaussians; a value is the concatenation.

    ``a_last=False`` lays a value out as [a, b] (the encoder: z1, then z2 given z1); ``a_last=True`` as [b, a]
    (the prior: z2 first, then z1 given z2, stored as [z1, z2]). ``log_prob`` is log p(a) + log p(b | a).

    Args:
        first (~torch.distributions.independent.Independent): the distribution of a, event shape ``[d_a]``.
        second (~typing.Callable): a ↦ the distribution of b given a, event shape ``[second_dim]``.
        second_dim (int): the size of b.
        a_last (bool): lay values out as [b, a] rather than [a, b].
    """

    arg_constraints: ClassVar[dict] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, first: Independent, second: Callable[[torch.Tensor], Independent], second_dim: int,
                 a_last: bool = False):
        self.first, self.second, self.a_last = first, second, a_last
        self.a_dim, self.b_dim = first.event_shape[0], second_dim
        super().__init__(first.batch_shape, torch.Size([self.a_dim + self.b_dim]), validate_args=False)

    def _split(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.a_last:
            b, a = value.split([self.b_dim, self.a_dim], dim=-1)
        else:
            a, b = value.split([self.a_dim, self.b_dim], dim=-1)
        return a, b

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([b, a] if self.a_last else [a, b], dim=-1)

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = _NO_SHAPE) -> torch.Tensor:
        a = self.first.rsample(sample_shape)
        return self._join(a, self.second(a).rsample())

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        a, b = self._split(value)
        total: torch.Tensor = self.first.log_prob(a) + self.second(a).log_prob(b)
        return total

    def expand(self, batch_shape: Sequence[int] | torch.Size, _instance: object = None) -> GaussianChain:
        """The chain with batch shape ``batch_shape``: ``first`` expanded; ``second(a)`` follows a's shape.
        :func:`lvm.naive_log_marginal` draws from the prior this way, one batch of draws per data point."""
        return GaussianChain(self.first.expand(torch.Size(batch_shape)), self.second, self.b_dim, self.a_last)


class TwoLevelVAE(LatentVariableModel):
    """p(z2) = N(0, I), p(z1 | z2) and q(z2 | z1) diagonal Gaussians from small MLPs, q(z1 | x) from an MLP,
    and a Bernoulli p(x | z1) (eq. ``hvae-elbo``). The latent vector is z = [z1, z2], ``z_dim = z1_dim + z2_dim``.

    Args:
        x_dim: data dimension (784 for MNIST), data in [0, 1].
        z1_dim, z2_dim: sizes of the lower and the upper latent layer.
        hidden: hidden widths of the networks next to x (encoder and decoder).
        hidden_top: hidden widths of the networks between z1 and z2.
    """

    x_dim: int
    z_dim: int
    likelihood_name: str
    top_loc: torch.Tensor  # buffers: p(z2) = N(top_loc, diag top_scale²)
    top_scale: torch.Tensor

    def __init__(self, x_dim: int, z1_dim: int, z2_dim: int, hidden: Sequence[int] = (400,),
                 hidden_top: Sequence[int] = (100,)):
        super().__init__()
        self.x_dim = check_positive_int(x_dim, "x_dim")
        self.z1_dim = check_positive_int(z1_dim, "z1_dim")
        self.z2_dim = check_positive_int(z2_dim, "z2_dim")
        self.z_dim = self.z1_dim + self.z2_dim
        self.likelihood_name = "bernoulli"  # as VAE's: fit then checks x in [0, 1] and warns on grey data
        hidden, hidden_top = layer_widths(hidden, "hidden"), layer_widths(hidden_top, "hidden_top")
        self.encoder_1 = mlp(self.x_dim, hidden, 2 * self.z1_dim)  # q(z1 | x)
        self.encoder_2 = mlp(self.z1_dim, hidden_top, 2 * self.z2_dim)  # q(z2 | z1)
        self.prior_1 = mlp(self.z2_dim, hidden_top, 2 * self.z1_dim)  # p(z1 | z2)
        self.decoder = mlp(self.z1_dim, tuple(reversed(hidden)), self.x_dim)  # logits of p(x | z1)
        self.register_buffer("top_loc", torch.zeros(self.z2_dim), persistent=False)
        self.register_buffer("top_scale", torch.ones(self.z2_dim), persistent=False)

    def prior(self) -> GaussianChain:
        """p(z1, z2) = p(z2) p(z1 | z2), event shape ``[z_dim]``, values laid out as [z1, z2]."""
        top = Independent(Normal(self.top_loc, self.top_scale, validate_args=False), 1)
        return GaussianChain(top, lambda z2: _diagonal_gaussian(self.prior_1(z2)), self.z1_dim, a_last=True)

    def encode(self, x: torch.Tensor) -> GaussianChain:
        """q(z1, z2 | x) = q(z1 | x) q(z2 | z1): batch shape ``x.shape[:-1]``, event ``[z_dim]``."""
        first = _diagonal_gaussian(self.encoder_1(self.check_x(x)))
        return GaussianChain(first, lambda z1: _diagonal_gaussian(self.encoder_2(z1)), self.z2_dim)

    def likelihood(self, z: torch.Tensor) -> Independent:
        """p(x | z1): Bernoulli pixels, batch shape ``z.shape[:-1]``; z2 acts only through p(z1 | z2)."""
        return Independent(Bernoulli(logits=self.decoder(self._z1(z)), validate_args=False), 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of p(x | z1), ``[..., x_dim]``."""
        return torch.sigmoid(self.decoder(self._z1(z)))

    def _z1(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.dim() == 0 or z.shape[-1] != self.z_dim:
            raise ValueError(f"z must have shape [..., {self.z_dim}] ([z1, z2]), got "
                             f"{list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
        return z[..., :self.z1_dim].to(self.top_loc.device)

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[..., x_dim]``, real and in [0, 1] (the likelihood is Bernoulli), in the model's dtype on its
        device."""
        x = check_data(x, "x", dtype=self.top_loc.dtype, device=self.top_loc.device, unit_interval=True)
        if x.dim() == 0 or x.shape[-1] != self.x_dim:
            raise ValueError(f"x must have shape [..., {self.x_dim}], got {list(x.shape)}")
        return x

    def extra_repr(self) -> str:
        return f"x_dim={self.x_dim}, z1_dim={self.z1_dim}, z2_dim={self.z2_dim}"

