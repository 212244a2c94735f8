"""The mixture of Gaussians: the simplest latent variable model (chapter 1).

z is categorical, p(z = n) = λ_n, and p(x | z = n) = N(x | μ_n, σ_n²). Its marginal
p(x) = Σ_n λ_n N(x | μ_n, σ_n²) (eq. ``gmm-marginal``) and its posterior (the responsibilities,
eq. ``responsibilities``) are both exact, which makes it the first model to check every identity on.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from .._checks import (
    as_tensor,
    check_data,
    check_finite,
    check_nonempty,
    check_overflow,
    check_positive,
    check_probability_vector,
    check_shape,
    readable,
    validation,
)
from .base import LatentVariableModel

__all__ = ["GaussianMixture"]


class GaussianMixture(LatentVariableModel):
    """A mixture of N Gaussians, on the real line or in D dimensions (diagonal covariances).

    Args:
        weights: mixing proportions λ, shape ``[N]``, non-negative and summing to one.
        means: component means μ, shape ``[N]`` (1-D data, x is ``[I]``) or ``[N, D]`` (x is ``[I, D]``).
        stds: component standard deviations σ > 0, the same shape as ``means``.
    """

    likelihood_name = "gaussian"  # p(x | z) is a Gaussian
    weights: torch.Tensor  # buffers: λ [N], μ and σ [N] or [N, D]
    means: torch.Tensor
    stds: torch.Tensor

    def __init__(self, weights: Any, means: Any, stds: Any) -> None:
        super().__init__()
        weights = check_probability_vector(as_tensor(weights, "weights"), "weights")
        means = check_finite(as_tensor(means, "means"), "means")
        stds = check_positive(as_tensor(stds, "stds"), "stds")
        # Keep the most precise dtype given: float64 parameters must not be silently rounded to float32.
        dtype = torch.promote_types(torch.promote_types(weights.dtype, means.dtype), stds.dtype)
        weights, means, stds = weights.to(dtype), means.to(dtype), stds.to(dtype)
        k = weights.shape[0]
        if means.dim() not in (1, 2) or means.shape[0] != k:
            raise ValueError(f"means must have shape [{k}] or [{k}, d] (one row per component of weights), "
                             f"got {list(means.shape)}")
        check_shape(stds, "stds", list(means.shape), "the same shape as means")
        self.register_buffer("weights", weights)
        self.register_buffer("means", means)
        self.register_buffer("stds", stds)

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def x_dim(self) -> int | None:  # type: ignore[override]  # read from the means (the base declares an attribute)
        """D for a D-dimensional mixture, ``None`` for a mixture on the real line."""
        return None if self.means.dim() == 1 else self.means.shape[1]

    def prior(self) -> Categorical:
        """p(z = n) = λ_n."""
        return Categorical(probs=self.weights, validate_args=validation(self.weights))

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x | z) = N(μ_z, σ_z²), batched over the shape of the integer tensor ``z``."""
        z = torch.as_tensor(z)
        if z.is_floating_point() or z.is_complex():
            raise ValueError(f"z must hold integer component indices, got dtype {z.dtype}")
        if readable(z) and ((z < 0) | (z >= self.n_components)).any():  # read where z is, before the move
            raise ValueError(f"z must index a component in 0..{self.n_components - 1}")
        z = z.to(self.weights.device)
        return self._component(self.means[z], self.stds[z])

    def components(self) -> Distribution:
        """All N component densities as one batched distribution (batch shape ``[N]``)."""
        return self._component(self.means, self.stds)

    def marginal(self) -> MixtureSameFamily:
        """p(x) = Σ_n λ_n N(x | μ_n, σ_n²) as a distribution (eq. ``gmm-marginal``)."""
        return MixtureSameFamily(self.prior(), self.components(), validate_args=validation(self.weights))

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), shape ``[I]``; computed with log-sum-exp, so far-out points do not underflow."""
        x = self.check_x(x)
        return check_overflow(self.marginal().log_prob(x), x, "log p(x)")

    def posterior(self, x: torch.Tensor) -> Categorical:
        """p(z | x) by Bayes' rule: λ_n N(x | μ_n, σ_n²) / p(x) (eq. ``responsibilities``), batch ``[I]``."""
        x = self.check_x(x)
        # log p(x | z=n) for every point and every component: x broadcast against the N components.
        x_per_component = x.unsqueeze(-1) if self.x_dim is None else x.unsqueeze(-2)
        log_joint = self.components().log_prob(x_per_component) + self.weights.log()
        check_overflow(torch.logsumexp(log_joint, dim=-1), x, "log p(x)")  # every component at -inf: no posterior
        return Categorical(logits=log_joint, validate_args=validation(log_joint))

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """p(z = n | x) as a matrix of shape ``[I, N]`` whose rows sum to one."""
        return self.posterior(x).probs

    def _component(self, means: torch.Tensor, stds: torch.Tensor) -> Distribution:
        normal = Normal(means, stds, validate_args=validation(means))
        return normal if self.x_dim is None else Independent(normal, 1)

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[I]`` or ``[I, D]`` with I >= 1, finite in the model's dtype, on its device."""
        x = check_data(x, "x", dtype=self.weights.dtype, device=self.weights.device)
        if self.x_dim is None:
            check_shape(x, "x", [None], "a 1-D mixture takes a vector of n points")
        else:
            check_shape(x, "x", [None, self.x_dim], f"n points in {self.x_dim} dimensions")
        return check_nonempty(x, "x")

    def extra_repr(self) -> str:
        dims = "1-D" if self.x_dim is None else f"{self.x_dim}-D"
        return f"N={self.n_components}, {dims}"
