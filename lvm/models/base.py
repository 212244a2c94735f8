"""The one contract every model in the course honours: a joint density p(x, z) = p(z) p(x | z).

Densities are ``torch.distributions`` objects, so one implementation of ancestral sampling, of the ELBO and
of the importance-sampled likelihood serves the mixture, the linear-Gaussian model and the VAE alike.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.distributions import Distribution

from .._checks import check_data

__all__ = ["LatentVariableModel"]


class LatentVariableModel(nn.Module):
    """Base class, a :class:`torch.nn.Module`: subclasses define :meth:`prior` and :meth:`likelihood`;
    tractable ones add the rest."""

    def prior(self) -> Distribution:
        """p(z)."""
        raise NotImplementedError

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x | z), batched over the leading dimensions of ``z``."""
        raise NotImplementedError

    def joint_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x | z), the integrand of the marginal likelihood."""
        return self.prior().log_prob(z) + self.likelihood(z).log_prob(x)

    def _check_x(self, x) -> torch.Tensor:
        """x as the bounds hand it to the model: real and finite (read where it is), then on the model's
        device. Models with more to check (shapes, ranges) override this."""
        device = self._device()
        return check_data(x, "x", device=device)

    def _device(self) -> torch.device | None:
        """Where the model's parameters and buffers live; ``None`` for a model that registers none."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return None

    def posterior(self, x: torch.Tensor) -> Distribution:
        """The exact p(z | x), for models where it is tractable."""
        raise NotImplementedError(
            f"{type(self).__name__} has no tractable posterior p(z|x); use an approximate q(z|x) instead")

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x), for models where the integral over z is tractable."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form log p(x); estimate it with lvm.iwae_bound")
