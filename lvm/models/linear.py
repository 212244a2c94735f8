"""The linear-Gaussian model (probabilistic PCA): the latent variable model where everything is exact (chapter 2).

z ~ N(0, I), x = W z + b + σ ε with ε ~ N(0, I). Both the marginal p(x) = N(b, W Wᵀ + σ² I)
(eq. ``lg-marginal``) and the posterior p(z | x) (eq. ``lg-posterior``) are Gaussians in closed form, so
later chapters check every bound and estimator against this model's exact answers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from .._checks import (
    as_tensor,
    check_data,
    check_finite,
    check_int,
    check_nonempty,
    check_overflow,
    check_positive,
    check_same_device,
    check_shape,
    readable,
    validation,
)
from .base import LatentVariableModel

__all__ = ["LinearGaussian"]


class LinearGaussian(LatentVariableModel):
    """Probabilistic PCA: p(z) = N(0, I_{d_z}), p(x | z) = N(W z + b, σ² I_{d_x}).

    W, b and log σ are ``nn.Parameter`` s, so the model can be trained by gradient ascent like any other
    (log σ keeps σ positive under unconstrained updates).

    Args:
        W: the loading matrix, shape ``[d_x, d_z]``.
        b: the offset (the mean of x), shape ``[d_x]``.
        sigma: the noise standard deviation σ > 0, a scalar.
    """

    likelihood_name = "gaussian"  # p(x | z) is a Gaussian

    def __init__(self, W: Any, b: Any, sigma: Any) -> None:
        super().__init__()
        W = check_finite(as_tensor(W, "W"), "W")
        if W.dim() != 2 or W.shape[0] < 1 or W.shape[1] < 1:
            raise ValueError(f"W must be a matrix of shape [d_x, d_z], got {list(W.shape)}")
        if W.dtype not in (torch.float32, torch.float64):
            # The marginal and the posterior need Cholesky factorisations, which torch has only in these two.
            raise ValueError(f"W must be float32 or float64, got {W.dtype}; convert it with W.float()")
        b = check_finite(as_tensor(b, "b", dtype=W.dtype).to(W.device), "b")
        check_shape(b, "b", [W.shape[0]], "one offset per row of W")
        sigma = as_tensor(sigma, "sigma", dtype=W.dtype).to(W.device)
        if sigma.numel() != 1:
            raise ValueError(f"sigma must be a positive scalar, got shape {list(sigma.shape)}")
        sigma = check_positive(sigma.reshape(()), "sigma")
        _check_representable(W, sigma)
        self.W = nn.Parameter(W.detach().clone())
        self.b = nn.Parameter(b.detach().clone())
        self.log_sigma = nn.Parameter(sigma.detach().log())

    @property
    def sigma(self) -> torch.Tensor:
        """σ = exp(log σ), a 0-dim tensor."""
        return self.log_sigma.exp()

    # Read from W, so they cannot disagree with it; the base class declares them as plain attributes, which
    # a read-only property may not override in mypy's eyes.
    @property
    def x_dim(self) -> int:  # type: ignore[override]
        """d_x, W's rows."""
        return self.W.shape[0]

    @property
    def z_dim(self) -> int:  # type: ignore[override]
        """d_z, W's columns."""
        return self.W.shape[1]

    def prior(self) -> Independent:
        """p(z) = N(0, I), event shape ``[d_z]``."""
        zeros = torch.zeros(self.z_dim, dtype=self.W.dtype, device=self.W.device)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=validation(zeros)), 1)

    def _check_parameters(self) -> None:
        """Finite W, b and σ, or a sentence: a W that training turned NaN gave torch's positive-definite dump."""
        for name, value in (("W", self.W), ("b", self.b), ("sigma", self.sigma)):
            if readable(value) and not bool(torch.isfinite(value.detach()).all()):
                raise ValueError(f"the model's {name} is not finite (NaN or inf), so no density can be evaluated: "
                                 "if training put it there, train again with a smaller learning rate")
        _check_representable(self.W, self.sigma)

    def likelihood(self, z: torch.Tensor) -> Independent:
        """p(x | z) = N(W z + b, σ² I), event shape ``[d_x]``, batched over the leading dimensions of ``z``."""
        self._check_parameters()
        z = as_tensor(z, "z", dtype=self.W.dtype).to(self.W.device)
        if z.dim() < 1 or z.shape[-1] != self.z_dim:
            raise ValueError(f"z must have shape [..., {self.z_dim}] (its last dimension is d_z), "
                             f"got {list(z.shape)}")
        mean = z @ self.W.T + self.b
        return Independent(Normal(mean, self.sigma.expand_as(mean), validate_args=validation(mean)), 1)

    def marginal_covariance(self) -> torch.Tensor:
        """W Wᵀ + σ² I, shape ``[d_x, d_x]``."""
        eye = torch.eye(self.x_dim, dtype=self.W.dtype, device=self.W.device)
        return self.W @ self.W.T + self.sigma**2 * eye

    def marginal(self) -> MultivariateNormal:
        """p(x) = ∫ p(z) p(x | z) dz = N(b, W Wᵀ + σ² I) (eq. ``lg-marginal``)."""
        self._check_parameters()
        return MultivariateNormal(self.b, covariance_matrix=self.marginal_covariance(),
                                  validate_args=validation(self.b))

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x), shape ``[n]`` for x of shape ``[n, d_x]``."""
        x = self.check_x(x)
        return check_overflow(self.marginal().log_prob(x), x, "log p(x)")

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z | x) = N(M⁻¹ Wᵀ (x − b), σ² M⁻¹) with M = WᵀW + σ² I (eq. ``lg-posterior``), batch ``[n]``.

        M is only ``[d_z, d_z]``: inverting it is cheaper than inverting the ``[d_x, d_x]`` marginal covariance,
        and the posterior covariance does not depend on x.
        """
        x = self.check_x(x)
        self._check_parameters()
        m_inv = torch.cholesky_inverse(torch.linalg.cholesky(self._m_matrix()))
        mean = (x - self.b) @ self.W @ m_inv  # M⁻¹ is symmetric: row i is (M⁻¹ Wᵀ (x_i − b))ᵀ
        check_overflow(mean, x, "the posterior mean")
        cov = self.sigma**2 * m_inv
        cov = 0.5 * (cov + cov.T)  # exactly symmetric for the Cholesky inside MultivariateNormal
        return MultivariateNormal(mean, covariance_matrix=cov, validate_args=validation(mean))

    def elbo_exact(self, x: torch.Tensor, q: Distribution) -> torch.Tensor:
        """The ELBO E_q[log p(x | z)] − KL(q ‖ p(z)) in closed form for a Gaussian q, shape ``[n]``.

        With q = N(m, Σ_q): E_q‖x − W z − b‖² = ‖x − W m − b‖² + tr(Wᵀ W Σ_q), and the KL to N(0, I) is
        ½ (tr Σ_q + ‖m‖² − d_z − log det Σ_q) (eq. ``elbo-recon-kl``), so no sampling is needed.

        Args:
            x: data, shape ``[n, d_x]``.
            q: a Gaussian over z with batch shape ``[n]`` and event shape ``[d_z]``: a ``MultivariateNormal``
                or an ``Independent(Normal, 1)`` (diagonal).
        """
        x = self.check_x(x)
        check_same_device(q, self.W.device, "q", "the model")
        mean, cov = _gaussian_moments(q, self.z_dim, x.shape[0])
        d_x, d_z = self.x_dim, self.z_dim
        var = self.sigma**2
        resid = x - mean @ self.W.T - self.b
        wtw = self.W.T @ self.W
        trace_term = (wtw * cov).sum((-2, -1))  # tr(WᵀW Σ_q): both symmetric, so an elementwise product
        expected_sq = (resid**2).sum(-1) + trace_term
        recon = -0.5 * d_x * torch.log(2 * torch.pi * var) - 0.5 * expected_sq / var
        logdet = 2 * torch.linalg.cholesky(cov).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        kl = 0.5 * (cov.diagonal(dim1=-2, dim2=-1).sum(-1) + (mean**2).sum(-1) - d_z - logdet)
        return check_overflow(recon - kl, x, "the ELBO")

    @classmethod
    def fit(cls, x: Any, z_dim: int, ddof: int = 0) -> LinearGaussian:
        """The closed-form maximum-likelihood fit of Tipping & Bishop (1999).

        In the book's notation (chapter 2), with D = d_x and D_z = d_z = ``z_dim``: b is the sample mean; with
        the eigenvalues ℓ_1 ≥ … ≥ ℓ_D of the sample covariance, L_{D_z} the diagonal matrix of the largest D_z
        of them and U_{D_z} their eigenvectors, σ² is the average of the D − D_z discarded eigenvalues and
        W = U_{D_z} (L_{D_z} − σ² I)^{1/2} (W is unique only up to a rotation of z; this is the rotation with
        orthogonal columns).

        Args:
            x: data, shape ``[n, d_x]``.
            z_dim: the latent dimension D_z, ``1 <= z_dim < d_x``.
            ddof: the covariance divides by ``n - ddof``. ``0`` is the maximum-likelihood fit; ``1`` reproduces
                scikit-learn's ``PCA`` (its ``score_samples`` is this model's log p(x)).
        """
        x = check_finite(as_tensor(x, "x"), "x")
        if x.dim() != 2:
            raise ValueError(f"x must have shape [n, d_x], got {list(x.shape)}")
        n, d_x = x.shape
        z_dim = check_int(z_dim, "z_dim", minimum=1, maximum=d_x - 1)  # z_dim < d_x: some noise is left
        ddof = check_int(ddof, "ddof", minimum=0, maximum=1)
        # The centred data span at most n - 1 directions: with n <= z_dim + 1 every discarded eigenvalue is 0.
        if n < z_dim + 2:
            raise ValueError(f"x has too few points ({n}) to fit z_dim = {z_dim}: need at least {z_dim + 2}")
        b = x.mean(0)
        centred = x - b
        cov = centred.T @ centred / (n - ddof)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
        sigma2 = eigvals[z_dim:].mean()
        if not sigma2 > 1e-12 * eigvals[0].clamp_min(torch.finfo(x.dtype).tiny):
            raise ValueError(f"x has (numerically) no variance outside its leading {z_dim} directions, "
                             "so the noise variance σ² would be 0; use a smaller z_dim or add noise")
        # ℓ_j ≥ σ² for j ≤ D_z in exact arithmetic; the clamp only removes rounding below zero.
        W = eigvecs[:, :z_dim] * (eigvals[:z_dim] - sigma2).clamp_min(0).sqrt()
        return cls(W, b, sigma2.sqrt())

    @torch.no_grad()
    def em_step(self, x: Any) -> LinearGaussian:
        """One EM iteration; returns a new model (eq. ``em-lg-mstep``).

        For data points x_i, i = 1, …, n (the book's I):
        E-step: q(z_i) = p(z_i | x_i), with E[z_i] = M⁻¹ Wᵀ (x_i − b) and E[z_i z_iᵀ] = σ² M⁻¹ + E[z_i] E[z_i]ᵀ.
        M-step: maximise E_q[Σ_i log p(x_i, z_i)] over (W, b, σ²) jointly. The best (W, b) does not depend on
        σ², so it is a least-squares regression of x on the expected [z, 1], and σ² follows from its residual.
        Unlike Tipping & Bishop (1999), who fix b at the sample mean, this updates b with W. The two coincide
        when b starts at the sample mean (the mean of E[z_i] is then zero at every E-step, so the new b is the
        sample mean again); from any other start, b reaches the sample mean only at convergence. The E-step makes
        the ELBO tight and the M-step maximises it, so log p(x) never decreases (chapter 4: EM is coordinate
        ascent on the ELBO).
        """
        x = self.check_x(x)
        n = x.shape[0]
        W, b, var = self.W, self.b, self.sigma**2
        m_inv = torch.cholesky_inverse(torch.linalg.cholesky(self._m_matrix()))
        ez = check_overflow((x - b) @ W @ m_inv, x, "E[z | x]")  # [n, d_z]
        ez_mean = ez.mean(0)
        x_mean = x.mean(0)
        # Centred sufficient statistics: the intercept b is profiled out of the regression.
        ez_c = ez - ez_mean
        szz = n * var * m_inv + ez_c.T @ ez_c  # Σ_i E[(z_i − z̄)(z_i − z̄)ᵀ]
        sxz = (x - x_mean).T @ ez_c  # Σ_i (x_i − x̄) E[z_i − z̄]ᵀ
        W_new = torch.linalg.solve(szz, sxz.T).T  # sxz szz⁻¹ (szz is symmetric)
        b_new = x_mean - W_new @ ez_mean
        # σ² = (1 / (n d_x)) Σ_i E‖x_i − W z_i − b‖², in centred form (b_new makes the cross terms with z̄ vanish)
        xc = x - x_mean
        expected_sq = (xc**2).sum() - 2 * (W_new * sxz).sum() + (W_new.T @ W_new * szz).sum()
        check_overflow(expected_sq, x, "the expected squared error")
        var_new = (expected_sq / (n * self.x_dim)).clamp_min(torch.finfo(x.dtype).tiny)
        return type(self)(W_new, b_new, var_new.sqrt())

    def _m_matrix(self) -> torch.Tensor:
        """M = WᵀW + σ² I, shape ``[d_z, d_z]``."""
        eye = torch.eye(self.z_dim, dtype=self.W.dtype, device=self.W.device)
        return self.W.T @ self.W + self.sigma**2 * eye

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[n, d_x]`` with n >= 1, finite in the model's dtype, on its device."""
        x = check_data(x, "x", dtype=self.W.dtype, device=self.W.device)
        check_shape(x, "x", [None, self.x_dim], f"n points in d_x = {self.x_dim} dimensions")
        return check_nonempty(x, "x")

    def extra_repr(self) -> str:
        return f"x_dim={self.x_dim}, z_dim={self.z_dim}, sigma={float(self.sigma.detach()):.4g}"


def _check_representable(W: torch.Tensor, sigma: torch.Tensor) -> None:
    """W Wᵀ + σ² I and WᵀW + σ² I must be finite and σ² > 0 in W's dtype, or nothing can be evaluated.

    Every entry of W Wᵀ and of WᵀW is at most ‖W‖² (Cauchy–Schwarz), so a finite ‖W‖² + σ² is enough.
    """
    if not readable(W):
        return
    if not torch.isfinite(W.detach().pow(2).sum() + sigma.detach() ** 2):
        raise ValueError(f"W and sigma are too large for {W.dtype}: W Wᵀ + σ² I overflows (largest |W| "
                         f"{float(W.abs().max()):.3g}, sigma {float(sigma):.3g}). Rescale the data, or pass "
                         "float64 tensors.")
    if not sigma.detach() ** 2 > 0:
        raise ValueError(f"sigma = {float(sigma):.3g} is too small for {W.dtype}: σ² underflows to 0. Pass "
                         "float64 tensors, or a larger sigma.")


def _gaussian_moments(q: Distribution, z_dim: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[n, d_z]`` and covariance ``[n, d_z, d_z]`` of a Gaussian q over z, or a ValueError."""
    if isinstance(q, MultivariateNormal):
        mean, cov = q.mean, q.covariance_matrix
    elif isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1:
        mean, cov = q.mean, torch.diag_embed(q.variance)
    else:
        raise ValueError(f"q must be a MultivariateNormal or an Independent(Normal, 1) over z, "
                         f"got {type(q).__name__}")
    if tuple(q.event_shape) != (z_dim,) or tuple(q.batch_shape) != (n,):
        raise ValueError(f"q must have batch shape [{n}] (one q per row of x) and event shape [{z_dim}], "
                         f"got batch {list(q.batch_shape)} and event {list(q.event_shape)}")
    return mean, cov.expand(n, z_dim, z_dim)
