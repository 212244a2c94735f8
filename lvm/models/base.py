"""The one contract every model in the course honours: a joint density p(x, z) = p(z) p(x | z).

Densities are ``torch.distributions`` objects, so one implementation of ancestral sampling, of the ELBO and
of the importance-sampled likelihood serves the mixture, the linear-Gaussian model and the VAE alike.

Like :class:`torch.distributions.Distribution`, the base class declares every member that the package's
functions use, with its shapes, and a default for each: a chapter's own model defines ``prior()`` and
``likelihood(z)`` and may leave the rest. What uses what:

- :func:`lvm.ancestral_sample`: ``prior()``, ``likelihood(z)``.
- the bounds (:func:`lvm.elbo <lvm.bounds.elbo>`, :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>`, ...):
  ``prior()``, ``likelihood(z)``, ``check_x(x)``.
- :func:`lvm.fit`, the objectives and the diagnostics: also ``encode(x)`` (``has_encoder``), ``x_dim``,
  ``likelihood_name``, and ``given(y)`` (``is_conditional``) for data ``(x, y)``.
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
    tractable ones add :meth:`posterior` and :meth:`log_marginal`, amortised ones :meth:`encode`.

    Shapes: z is ``[..., *prior().event_shape]`` and x is ``[..., *likelihood(z).event_shape]``, batched over
    the leading dimensions (the bounds pass z ``[k, n, z_dim]`` and x ``[n, x_dim]``).
    """

    x_dim: int | None = None
    """The data dimension d_x, the event shape ``[x_dim]`` of p(x | z): x is ``[n, x_dim]``. ``None`` where x has
    no event dimension (a 1-D mixture's x is ``[n]``) or the model does not say; :func:`lvm.fit` needs an int.
    Where it is an int, :meth:`check_x` checks x's last dimension against it."""

    z_dim: int | None = None
    """The latent dimension d_z, the event shape ``[z_dim]`` of p(z); ``None`` where z is not a vector (a
    mixture's component index) or the model does not say."""

    likelihood_name: str | None = None
    """Names the family of p(x | z), ``"bernoulli"`` (x in [0, 1], ideally binary; :func:`lvm.fit` checks the
    range and warns on grey data) or ``"gaussian"``, and is ``None`` where the model does not say."""

    # --- the generative model: every model defines these ----------------------------------------------------
    def prior(self) -> Distribution:
        """p(z), batch shape ``[]``, event shape ``[z_dim]`` (``[]`` for a categorical z)."""
        raise NotImplementedError

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x | z), batched over the leading dimensions of ``z``: batch shape ``z.shape[:-1]`` for z
        ``[..., z_dim]`` (``z.shape`` for a categorical z), event shape ``[x_dim]``."""
        raise NotImplementedError

    def joint_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x | z), the integrand of the marginal likelihood, shape ``z``'s batch
        shape (x broadcasts against it)."""
        return self.prior().log_prob(z) + self.likelihood(z).log_prob(x)

    # --- what the bounds, fit and the diagnostics call ------------------------------------------------------
    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x as the bounds hand it to the model, checked and placed: real and finite (read where it is, before
        any move), with last dimension ``x_dim`` where the model declares one, then on the model's device.

        Args:
            x (~torch.Tensor): data ``[n, x_dim]`` (or ``[n]`` for a model with no event dimension); arrays
                and lists are converted.

        Returns:
            x as a floating tensor on the model's device, the same shape.

        Models with more to check (dtype, ranges such as a Bernoulli's [0, 1]) override this; the bounds
        call it on every x they are given."""
        x = check_data(x, "x", device=self._device())
        if isinstance(self.x_dim, int) and (x.dim() == 0 or x.shape[-1] != self.x_dim):
            raise ValueError(f"x must have shape [..., {self.x_dim}] (the model's x_dim), got {list(x.shape)}")
        return x

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        """The old name of :meth:`check_x`, kept for code written before it was public."""
        return self.check_x(x)

    def encode(self, x: torch.Tensor) -> Distribution:
        """The amortised approximate posterior q(z | x): batch shape ``x.shape[:-1]`` (``[n]`` for x
        ``[n, x_dim]``), event shape ``[z_dim]``. :func:`lvm.fit`, its objectives and the diagnostics train and
        read the model through it. Models without an encoder raise ``NotImplementedError``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no encoder q(z|x): pass the bounds a q of your own (or the exact "
            "posterior, where the model has one)")

    @property
    def has_encoder(self) -> bool:
        """Whether the model defines :meth:`encode`, as :func:`lvm.fit` needs (like a distribution's
        ``has_rsample``, but read from the class, so a subclass need not set it)."""
        return type(self).encode is not LatentVariableModel.encode

    def given(self, y: torch.Tensor) -> LatentVariableModel:
        """A conditional model p(x, z | y) with the labels y ``[n]`` fixed: a model of x alone, whose
        ``encode(x)`` takes x ``[n, x_dim]``, one row per label. :func:`lvm.fit` and the objectives call it for
        data ``(x, y)``. Models that take no labels raise ``ValueError``."""
        raise ValueError(f"a batch (x, y) needs a model with given(y), such as lvm.ConditionalVAE; "
                         f"{type(self).__name__} takes no labels. Pass the data as a tensor x instead.")

    @property
    def is_conditional(self) -> bool:
        """Whether the model defines :meth:`given`, and so takes labels y with x."""
        return type(self).given is not LatentVariableModel.given

    # --- tractable models add these -------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> Distribution:
        """The exact p(z | x), batch shape ``[n]`` for x ``[n, x_dim]``, for models where it is tractable."""
        raise NotImplementedError(
            f"{type(self).__name__} has no tractable posterior p(z|x); use an approximate q(z|x) instead")

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x), shape ``[n]`` for x ``[n, x_dim]``, for models where the integral over z is
        tractable."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form log p(x); estimate it with lvm.iwae_bound")

    def _device(self) -> torch.device | None:
        """Where the model's parameters and buffers live; ``None`` for a model that registers none."""
        for tensor in itertools.chain(self.parameters(), self.buffers()):
            return tensor.device
        return None
