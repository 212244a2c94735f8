"""The conditional VAE (chapter 8): a VAE told which class to draw.

Labels y ∈ {0, …, C − 1} enter both networks as a one-hot vector e_y concatenated to their input
(eq. ``cvae``):

    p(z) = N(0, I),    p(x | z, y) from the decoder f([z, e_y]; φ),    q(z | x, y) = N(μ([x, e_y]), diag σ([x, e_y])²)

and the conditional ELBO, E_q[log p(x | z, y)] − KL(q(z | x, y) ‖ p(z)), bounds log p(x | y).

Every bound of the package takes a model of x alone, so :meth:`ConditionalVAE.given` returns one: the model
p(x, z | y) with the labels fixed. ``lvm.elbo(model.given(y), x, model.encode(x, y))`` is the conditional ELBO,
``lvm.ancestral_sample(model.given(y), len(y))`` draws the digits asked for, and ``lvm.fit(model, (x, y))``
trains on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.distributions import Distribution, Independent
from torch.nn import functional as F

from .._checks import check_positive_int, readable
from ..sampling import ancestral_sample
from .base import LatentVariableModel
from .networks import layer_widths, mlp
from .vae import VAE

__all__ = ["ConditionalVAE", "LabelledModel"]


class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder also see a class label y (eq. ``cvae``); MLP networks.

    Args:
        x_dim: data dimension d_x.
        n_classes: the number of classes C; labels are the integers 0, …, C − 1.
        z_dim: latent dimension d_z.
        hidden: hidden-layer widths, as in :class:`lvm.VAE` (the decoder uses them in reverse order).
        likelihood: ``"bernoulli"`` or ``"gaussian"``; ``sigma`` as in :class:`lvm.VAE`.

    Shapes: y is an integer tensor of class labels. ``encode(x, y)`` takes x ``[n, x_dim]`` and y ``[n]``;
    ``likelihood(z, y)`` and ``decode(z, y)`` take z ``[..., z_dim]`` and y broadcastable against
    ``z.shape[:-1]`` (y ``[n]`` with z ``[k, n, z_dim]``: one label per data point, for all k draws).
    """

    def __init__(self, x_dim: int, n_classes: int, z_dim: int, hidden: Sequence[int] = (400,),
                 likelihood: str = "bernoulli", *, sigma: float | None = None):
        x_dim = check_positive_int(x_dim, "x_dim")
        n_classes = check_positive_int(n_classes, "n_classes")
        z_dim = check_positive_int(z_dim, "z_dim")
        hidden = layer_widths(hidden)
        # Built here, to the widened inputs: x (or z) followed by the one-hot label.
        super().__init__(x_dim, z_dim, hidden, likelihood, sigma=sigma,
                         encoder=mlp(x_dim + n_classes, hidden, 2 * z_dim),
                         decoder=mlp(z_dim + n_classes, tuple(reversed(hidden)), x_dim))
        self.n_classes = n_classes

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """q(z | x, y) = N(μ([x, e_y]), diag σ([x, e_y])²): batch shape ``x.shape[:-1]``, event ``[z_dim]``."""
        x = self.check_x(x)
        return self._posterior_from(self.encoder(torch.cat([x, self._one_hot(y, x.shape[:-1], "x")], dim=-1)))

    def likelihood(self, z: torch.Tensor, y: torch.Tensor | None = None) -> Independent:
        """p(x | z, y): event shape ``[x_dim]``, batch shape ``z.shape[:-1]``."""
        return self._likelihood_from(self._decoder_output_given(z, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x | z, y), ``[..., x_dim]``: pixel probabilities or f([z, e_y]; φ)."""
        return self._mean_from(self._decoder_output_given(z, y))

    def given(self, y: torch.Tensor) -> LabelledModel:
        """The model p(x, z | y) for the labels y ``[n]``: a latent variable model of x alone, with ``encode``,
        that :func:`lvm.elbo <lvm.bounds.elbo>`, :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>`,
        :func:`lvm.ancestral_sample` and the objectives take."""
        return LabelledModel(self, self.check_labels(y))

    def sample(self, y: torch.Tensor, generator: torch.Generator | int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ancestral sampling given labels y ``[n]``: z ~ p(z), then x ~ p(x | z, y).

        Args:
            y (~torch.Tensor): integer labels ``[n]``.
            generator (~torch.Generator | int | None): as in :func:`lvm.ancestral_sample`.

        Returns:
            ``(x, z)``, ``[n, x_dim]`` and ``[n, z_dim]``.
        """
        y = self.check_labels(y)
        if y.dim() != 1 or y.shape[0] < 1:
            raise ValueError(f"y must be a 1-D tensor of at least one label, got shape {list(y.shape)}")
        return ancestral_sample(self.given(y), y.shape[0], generator)

    @property
    def is_linear(self) -> bool:
        """Always False: the decoder sees the label too, so it is not the x = W z + b of a linear model."""
        return False

    def check_labels(self, y: Any) -> torch.Tensor:
        """y as an int64 tensor on the model's device, after checking that it holds integers in [0, C)."""
        if y is None:
            raise ValueError("y is missing: a ConditionalVAE needs the class labels, e.g. model.encode(x, y) or "
                             "model.likelihood(z, y); for lvm.elbo, lvm.iwae_bound or lvm.ancestral_sample pass "
                             "model.given(y) as the model")
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(np.asarray(y))
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class labels (e.g. torch.long), got dtype {y.dtype}")
        if readable(y) and y.numel() > 0 and not bool(((y >= 0) & (y < self.n_classes)).all()):
            raise ValueError(f"y must hold labels in [0, {self.n_classes}) for n_classes={self.n_classes}, got "
                             f"values from {int(y.min())} to {int(y.max())}")
        labels: torch.Tensor = y.to(device=self.prior_loc.device, dtype=torch.long)
        return labels

    # --- helpers -------------------------------------------------------------------------------------------
    def _decoder_output_given(self, z: Any, y: Any) -> torch.Tensor:
        z = self._check_z(z)
        return self._decoder_output(torch.cat([z, self._one_hot(y, z.shape[:-1], "z")], dim=-1))

    def _one_hot(self, y: Any, batch_shape: torch.Size, against: str) -> torch.Tensor:
        """e_y ``[*batch_shape, C]`` in the model's dtype; y must broadcast against ``batch_shape``."""
        y = self.check_labels(y)
        try:
            return F.one_hot(y, self.n_classes).to(self.prior_loc.dtype).expand(*batch_shape, self.n_classes)
        except RuntimeError:
            raise ValueError(f"y of shape {list(y.shape)} does not match {against} of batch shape "
                             f"{list(batch_shape)}: give one label per data point") from None

    def _check_networks(self, encoder: Any, decoder: Any) -> None:
        pass  # built by __init__ to the widened inputs, so there is nothing to probe

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, " + super().extra_repr()


class LabelledModel(LatentVariableModel):
    """p(x, z | y) for fixed labels y: a :class:`ConditionalVAE` seen as a model of x alone.

    ``prior()`` is the VAE's; ``likelihood(z)``, ``decode(z)`` and ``encode(x)`` pass the labels on. x must have
    one label per row (x ``[n, x_dim]`` with y ``[n]``). ``x_dim``, ``z_dim`` and ``likelihood_name`` are the
    VAE's, read from it.
    """

    def __init__(self, model: ConditionalVAE, y: torch.Tensor):
        super().__init__()
        self.model, self.y = model, y

    # Read from the VAE, not copied; the base class declares them as plain attributes, which a read-only
    # property may not override in mypy's eyes.
    @property
    def x_dim(self) -> int:  # type: ignore[override]
        return self.model.x_dim

    @property
    def z_dim(self) -> int:  # type: ignore[override]
        return self.model.z_dim

    @property
    def likelihood_name(self) -> str:  # type: ignore[override]
        return self.model.likelihood_name

    def prior(self) -> Distribution:
        return self.model.prior()

    def likelihood(self, z: torch.Tensor) -> Distribution:
        return self.model.likelihood(z, self.y)

    def encode(self, x: torch.Tensor) -> Distribution:
        return self.model.encode(self.check_x(x), self.y)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z, self.y)

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[n, x_dim]`` as the VAE checks it, with one row per label."""
        x = self.model.check_x(x)
        if tuple(x.shape[:-1]) != tuple(self.y.shape):
            raise ValueError(f"x of shape {list(x.shape)} needs one label per row, but y has shape "
                             f"{list(self.y.shape)}")
        return x
