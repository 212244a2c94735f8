"""Bounds on and estimates of log p(x), written once for every model (chapters 3, 4 and 7).

All of them only call ``model.prior()``, ``model.likelihood(z)`` and ``model.joint_log_prob(x, z)``, so they
serve the mixture, the linear-Gaussian model and the VAE alike. Everything stays in log space: at d = 784 a
log-likelihood of −500 nats is normal, and exp(−500) is 0 in float32.

- :func:`elbo` — E_q[log p(x | z)] − KL(q ‖ p(z)) (eq. ``elbo-recon-kl``), differentiable through ``rsample``.
- :func:`elbo_joint_entropy` — E_q[log p(x, z)] + H[q], the same number written the other way.
- :func:`elbo_via_posterior` — log p(x) − KL(q ‖ p(z | x)), the form that shows the gap, for tractable models only
  (together: eq. ``elbo-three-forms``).
- :func:`log_importance_weights`, :func:`iwae_bound`, :func:`importance_log_marginal`,
  :func:`naive_log_marginal` — importance sampling of p(x) (eqs. ``naive-mc``, ``iwae``), streamed in chunks.
- :func:`gaussian_kl` — the closed-form KL between diagonal Gaussians (eq. ``gauss-kl``).
- :func:`check_x`, :func:`draw_z`, :func:`dimensionwise_kl` — the steps these are made of, for the objectives
  and diagnostics built on them (:mod:`lvm.objectives`, :mod:`lvm.diagnostics`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributions import Categorical, Distribution, Independent, MultivariateNormal, Normal, kl_divergence

from ._checks import (
    as_tensor,
    check_data,
    check_finite,
    check_positive,
    check_positive_int,
    check_same_device,
    validation,
)
from .models.base import LatentVariableModel

__all__ = [
    "elbo",
    "elbo_joint_entropy",
    "elbo_via_posterior",
    "gaussian_kl",
    "importance_log_marginal",
    "iwae_bound",
    "log_importance_weights",
    "naive_log_marginal",
    # the building blocks of the bounds, for objectives and diagnostics built on them
    "check_x",
    "draw_z",
    "dimensionwise_kl",
]

# Default chunk size: about this many numbers per chunk of importance samples — chunk × n × (the larger of
# d_x and the model's layer outputs for one evaluation), i.e. 64 MB in float32. A 5000 × 500 × 784 evaluation
# becomes ~40 chunks instead of 7.8 GB at once, and a wide decoder on one point gets small chunks too.
_CHUNK_ELEMENTS = 2**24


def elbo(model: Any, x: torch.Tensor, q: Distribution, n_samples: int = 1) -> torch.Tensor:
    """The evidence lower bound E_q[log p(x | z)] − KL(q ‖ p(z)) for each data point (eq. ``elbo-recon-kl``).

    The reconstruction term is a Monte Carlo average over ``n_samples`` draws ``q.rsample()``, so the result
    is differentiable with respect to q's parameters (the reparameterisation trick) and the model's. The KL
    term is analytic when torch knows KL(q ‖ p(z)) (e.g. diagonal Gaussians), otherwise the Monte Carlo
    average of log q(z) − log p(z) over the same draws. A q with enumerable support (a ``Categorical``, e.g.
    the mixture's posterior) is summed over exactly: no sampling, and ``n_samples`` is ignored.

    Args:
        model: a latent variable model.
        x: data, shape ``[n, ...]`` (``[n]`` for a 1-D mixture, ``[n, d_x]`` otherwise).
        q: the approximate posterior, a distribution over z with batch shape ``[n]`` (one q(z | x_i) per row).
        n_samples: draws of z per data point, a positive integer.

    Returns:
        The ELBO of each data point, shape ``[n]``; never above log p(x) in expectation.
    """
    x = check_x(model, x)
    check_positive_int(n_samples, "n_samples")
    _check_q(q, x, "q")
    prior: Distribution = model.prior()
    if q.has_enumerate_support:
        z = q.enumerate_support(expand=True)  # [K, n]
        recon = _expect_enumerated(q, z, model.likelihood(z).log_prob(x))
        kl = _analytic_kl(q, prior)
        if kl is None:
            kl = _expect_enumerated(q, z, q.log_prob(z) - prior.log_prob(z))
        return recon - kl
    z = draw_z(q, n_samples)  # [S, n, *event]
    likelihood: Distribution = model.likelihood(z)
    recon = likelihood.log_prob(x).mean(0)
    kl = _analytic_kl(q, prior)
    if kl is None:
        kl = (q.log_prob(z) - prior.log_prob(z)).mean(0)
    return recon - kl


def elbo_joint_entropy(model: Any, x: torch.Tensor, q: Distribution, n_samples: int = 1) -> torch.Tensor:
    """The same ELBO written as E_q[log p(x, z)] + H[q], shape ``[n]`` (eq. ``elbo-three-forms``).

    The entropy is analytic when torch has it (Gaussians, categoricals), otherwise estimated by −log q(z) on
    the same draws. Enumerable q are summed over exactly. Arguments as in :func:`elbo`.
    """
    x = check_x(model, x)
    check_positive_int(n_samples, "n_samples")
    _check_q(q, x, "q")
    if q.has_enumerate_support:
        z = q.enumerate_support(expand=True)
        return _expect_enumerated(q, z, model.joint_log_prob(x, z)) + q.entropy()
    z = draw_z(q, n_samples)
    expected_joint: torch.Tensor = model.joint_log_prob(x, z).mean(0)
    try:
        entropy = q.entropy()
    except NotImplementedError:
        entropy = -q.log_prob(z).mean(0)
    return expected_joint + entropy


def elbo_via_posterior(model: Any, x: torch.Tensor, q: Distribution) -> torch.Tensor:
    """The ELBO written as log p(x) − KL(q ‖ p(z | x)), shape ``[n]`` (eq. ``elbo-three-forms``).

    Exact (no sampling), but only for models with a tractable ``posterior`` and ``log_marginal`` — the
    mixture and the linear-Gaussian model. It shows why the ELBO is a lower bound (KL ≥ 0) and when it is
    tight (q = p(z | x)). Arguments as in :func:`elbo`.
    """
    x = check_x(model, x)
    _check_q(q, x, "q")
    posterior: Distribution = model.posterior(x)
    kl = _analytic_kl(q, posterior)
    if kl is None:
        raise ValueError(f"q: no closed-form KL between {type(q).__name__} and the model's "
                         f"{type(posterior).__name__} posterior")
    log_marginal: torch.Tensor = model.log_marginal(x)
    return log_marginal - kl


def log_importance_weights(model: Any, x: torch.Tensor, q: Distribution, k: int,
                           chunk_size: int | None = None) -> torch.Tensor:
    """log w_j = log p(x, z_j) − log q(z_j | x) for k draws z_j ~ q, shape ``[k, n]`` (eq. ``iwae``).

    The draws are made ``chunk_size`` at a time so that the likelihood of only ``chunk_size × n`` points is
    ever evaluated at once. An evaluation tool: no gradients are tracked.

    Args:
        model: a latent variable model.
        x: data, shape ``[n, ...]``.
        q: the proposal, a distribution over z with batch shape ``[n]``.
        k: the number of importance samples per data point, a positive integer.
        chunk_size: draws per chunk; ``None`` picks one that keeps a chunk near 2**24 numbers, counting per
            draw the larger of x and the outputs of the model's layers (measured once, on one draw).
    """
    x = check_x(model, x)
    check_positive_int(k, "k")
    _check_q(q, x, "q")
    return torch.cat(list(_log_weight_chunks(model, x, q, k, chunk_size)), dim=0)


def iwae_bound(model: Any, x: torch.Tensor, q: Distribution, k: int, chunk_size: int | None = None) -> torch.Tensor:
    """The importance-weighted bound log (1/k) Σ_j p(x, z_j) / q(z_j | x), z_j ~ q, shape ``[n]`` (eq. ``iwae``).

    Its expectation is a lower bound on log p(x) that never decreases in k (k = 1 gives the ELBO) and tends
    to log p(x) as k → ∞; it is also the log of the importance-sampling estimate of p(x), the standard test
    log-likelihood of a VAE. Computed with a running log-sum-exp over chunks: the weights themselves
    (e^{−500} at d = 784) are never exponentiated, and memory does not grow with k. No gradients are tracked.
    Arguments as in :func:`log_importance_weights`.
    """
    x = check_x(model, x)
    check_positive_int(k, "k")
    _check_q(q, x, "q")
    return _streaming_log_mean_exp(model, x, q, k, chunk_size)


def importance_log_marginal(model: Any, x: torch.Tensor, proposal: Distribution, n_samples: int,
                            chunk_size: int | None = None) -> torch.Tensor:
    """log p̂(x) = log (1/S) Σ_s p(x, z_s) / r(z_s), z_s ~ r, with any proposal r; shape ``[n]``.

    The importance-sampling estimate of chapter 3. ``proposal`` has batch shape ``[n]`` (one proposal per
    data point) or ``[]`` (shared by all points, drawn independently for each). Same number as
    :func:`iwae_bound` with q = r.
    """
    x = check_x(model, x)
    check_positive_int(n_samples, "n_samples")
    proposal = _per_point(proposal, x, "proposal")
    return _streaming_log_mean_exp(model, x, proposal, n_samples, chunk_size)


def naive_log_marginal(model: Any, x: torch.Tensor, n_samples: int, chunk_size: int | None = None) -> torch.Tensor:
    """log (1/S) Σ_s p(x | z_s) with z_s ~ p(z): Monte Carlo over the prior (eq. ``naive-mc``), shape ``[n]``.

    Unbiased for p(x) but useless in high dimensions: almost no prior draw explains a given x, so the
    estimate is dominated by the rare draw that does. Each data point gets its own draws.
    """
    x = check_x(model, x)
    check_positive_int(n_samples, "n_samples")
    proposal = _per_point(model.prior(), x, "prior")
    return _streaming_log_mean_exp(model, x, proposal, n_samples, chunk_size)


def gaussian_kl(mu_q: torch.Tensor, std_q: torch.Tensor, mu_p: torch.Tensor | float = 0.0,
                std_p: torch.Tensor | float = 1.0) -> torch.Tensor:
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) for diagonal Gaussians, summed over the last dimension (eq. ``gauss-kl``).

    Per dimension: log(σ_p / σ_q) + (σ_q² + (μ_q − μ_p)²) / (2 σ_p²) − ½. The defaults give the VAE's KL to
    the standard normal prior, ½ Σ (μ² + σ² − 1 − log σ²).

    Args:
        mu_q, std_q: q's means and standard deviations (> 0), shape ``[..., d]``.
        mu_p, std_p: p's, broadcastable against ``mu_q``; scalars by default.

    Returns:
        Shape ``[...]``: the input shape without its last dimension.
    """
    mu_q = check_finite(as_tensor(mu_q, "mu_q"), "mu_q")
    std_q = check_positive(_like(std_q, "std_q", mu_q), "std_q")
    mu_p = check_finite(_like(mu_p, "mu_p", mu_q), "mu_p")
    std_p = check_positive(_like(std_p, "std_p", mu_q), "std_p")
    try:
        # torch.broadcast_shapes is not annotated in torch's own code (it returns a torch.Size).
        shape = torch.broadcast_shapes(mu_q.shape, std_q.shape, mu_p.shape, std_p.shape)  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        raise ValueError(f"mu_q, std_q, mu_p and std_p must broadcast together, got shapes {list(mu_q.shape)}, "
                         f"{list(std_q.shape)}, {list(mu_p.shape)}, {list(std_p.shape)}") from exc
    if len(shape) == 0:
        raise ValueError("mu_q and std_q must have a last dimension to sum over (shape [..., d]), got scalars")
    var_ratio = (std_q / std_p) ** 2
    per_dim = 0.5 * (var_ratio + ((mu_q - mu_p) / std_p) ** 2 - 1 - var_ratio.log())
    return per_dim.expand(shape).sum(-1)


# --- building blocks, public for the objectives and diagnostics built on them ------------------------------


def check_x(model: Any, x: object) -> torch.Tensor:
    """x as data for ``model``: ``[n, ...]`` with n >= 1, real and finite, checked and placed by the model.

    What every bound here does first, and what an objective or a diagnostic written outside this module
    should do too. A :class:`lvm.LatentVariableModel` checks what it knows (its shapes, a Bernoulli likelihood's
    [0, 1]) and moves x to its own device; any other object gets the checks every model needs.

    Args:
        model: a latent variable model (or any object with the methods the bounds call).
        x: data, a tensor or array of shape ``[n, ...]``.

    Returns:
        x as a floating tensor ``[n, ...]`` on the model's device.
    """
    x = as_tensor(x, "x")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"x must have shape [n, ...] with n >= 1 data points, got {list(x.shape)}")
    if isinstance(model, LatentVariableModel):
        return model.check_x(x)
    return check_data(x, "x")


def draw_z(q: Distribution, n_samples: int) -> torch.Tensor:
    """``n_samples`` draws z ~ q, ``[S, n, *event]``, differentiable in q's parameters (``rsample``).

    The draws every Monte Carlo ELBO here is made of. A q without ``rsample`` gives the right value but no
    gradient through z, so its parameters (an encoder's weights) would silently stop learning: refused
    whenever a gradient could be asked for (under ``torch.no_grad()`` it is drawn with ``sample``).

    Args:
        q: a distribution over z with batch shape ``[n]``.
        n_samples: S, the draws per data point.
    """
    if q.has_rsample:
        return q.rsample((n_samples,))
    if torch.is_grad_enabled() and _requires_grad(q):
        raise ValueError(f"q cannot be reparameterised ({type(q).__name__} has no rsample): its samples would "
                         "carry no gradient to q's parameters, so an encoder trained on this ELBO would not "
                         "learn. Use a reparameterisable q (e.g. Normal) or an enumerable one (Categorical), "
                         "or lvm.score_function_gradients; to evaluate the ELBO only, call it under "
                         "torch.no_grad().")
    return q.sample((n_samples,))


def dimensionwise_kl(q: Distribution, p: Distribution, n_samples: int = 1) -> torch.Tensor:
    """KL(q_j ‖ p_j) for each latent dimension j, ``[n, d_z]``, for q and p that factorise over z's dimensions.

    Both must be ``Independent`` over one dimension (as a VAE's encoder and prior are): KL(q ‖ p) = Σ_j KL_j.
    Closed form where torch has it for the base distributions (diagonal Gaussians: eq. ``gauss-kl`` per
    dimension); otherwise the Monte Carlo average of log q_j(z_j) − log p_j(z_j) over ``n_samples`` draws.
    """
    if not (isinstance(q, Independent) and q.reinterpreted_batch_ndims == 1
            and isinstance(p, Independent) and p.reinterpreted_batch_ndims == 1):
        raise ValueError(f"a KL per latent dimension needs q and the prior to factorise over z's dimensions "
                         f"(Independent distributions, like a VAE's diagonal Gaussians); got q a "
                         f"{type(q).__name__} and the prior a {type(p).__name__}")
    q_j: Distribution = q.base_dist  # batch [n, d_z]
    p_j: Distribution = p.base_dist
    try:
        return kl_divergence(q_j, p_j)
    except NotImplementedError:
        z = draw_z(q, n_samples)  # [S, n, d_z]
        return (q_j.log_prob(z) - p_j.log_prob(z)).mean(0)


# --- the one streaming core ---------------------------------------------------------------------------------


@torch.no_grad()
def _log_weight_chunks(model: Any, x: torch.Tensor, q: Distribution, k: int,
                       chunk_size: int | None) -> Iterator[torch.Tensor]:
    """Yield log p(x, z) − log q(z) for successive chunks of draws z ~ q, each ``[chunk, n]``."""
    if chunk_size is None:
        chunk_size = _default_chunk_size(model, x, q)
    else:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    done = 0
    while done < k:
        c = min(chunk_size, k - done)
        z = q.sample((c,))  # [c, n, *event]
        yield model.joint_log_prob(x, z) - q.log_prob(z)
        done += c


def _default_chunk_size(model: Any, x: torch.Tensor, q: Distribution) -> int:
    """Draws per chunk such that one chunk holds about ``_CHUNK_ELEMENTS`` numbers.

    One draw for all n points costs n × (the larger of x's size per point and the numbers the model's layers
    output for one evaluation of log p(x, z)). Sizing by x alone would give a wide decoder on one point
    2**24 / d_x draws at once, gigabytes of activations.
    """
    per_point = max(x[0].numel(), _layer_outputs_per_evaluation(model, x, q), 1)
    return max(1, _CHUNK_ELEMENTS // (x.shape[0] * per_point))


@torch.no_grad()
def _layer_outputs_per_evaluation(model: Any, x: torch.Tensor, q: Distribution) -> int:
    """How many numbers the model's layers (its leaf modules) output to evaluate log p(x, z) for one point and
    one draw, measured once with forward hooks (on one draw for all n points, divided by n); 0 for a model
    without layers."""
    # A name of its own for the module view: narrowing ``model`` to nn.Module would type model.joint_log_prob as
    # nn.Module's dynamic attributes (a Tensor or a Module) instead of the model's method.
    network = model if isinstance(model, torch.nn.Module) else None
    if network is None:
        return 0
    layers = [m for m in network.modules() if m is not network and next(m.children(), None) is None]
    if not layers:
        return 0
    count = 0

    def add(module: torch.nn.Module, inputs: tuple[Any, ...], output: object) -> None:
        nonlocal count
        count += output.numel() if isinstance(output, torch.Tensor) else 0

    handles = [layer.register_forward_hook(add) for layer in layers]
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):  # the probe's draw leaves the caller's random state alone
            # One draw for every point rather than for the first one alone: a model may tie each row of x to
            # inputs of its own (a conditional VAE's labels), so x[:1] alone is not always a valid input.
            model.joint_log_prob(x, q.sample((1,)))
    finally:
        for handle in handles:
            handle.remove()
    return -(-count // x.shape[0])  # per point, rounded up


def _streaming_log_mean_exp(model: Any, x: torch.Tensor, q: Distribution, k: int,
                            chunk_size: int | None) -> torch.Tensor:
    """log (1/k) Σ_j w_j over all k draws, combining chunks with a running log-sum-exp."""
    total: torch.Tensor | None = None
    for log_w in _log_weight_chunks(model, x, q, k, chunk_size):
        chunk_lse = torch.logsumexp(log_w, dim=0)
        total = chunk_lse if total is None else torch.logaddexp(total, chunk_lse)
    assert total is not None  # k >= 1 (checked by every caller): at least one chunk
    return total - math.log(k)


# --- helpers ------------------------------------------------------------------------------------------------


def _requires_grad(d: Distribution) -> bool:
    """Whether any tensor that defines ``d`` (including those of the distributions inside it) needs a gradient."""
    for value in vars(d).values():
        if isinstance(value, torch.Tensor) and value.requires_grad:
            return True
        if isinstance(value, Distribution) and _requires_grad(value):
            return True
    return False


def _expect_enumerated(q: Distribution, z: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Σ_k q(z_k) values_k over the enumerated support (axis 0), treating 0 · (±inf) as 0."""
    probs = q.log_prob(z).exp()
    return torch.where(probs > 0, probs * values, torch.zeros_like(values)).sum(0)


def _analytic_kl(q: Distribution, p: Distribution) -> torch.Tensor | None:
    """KL(q ‖ p) from torch's registry, or ``None`` when there is no closed form.

    torch has no rule for a full-covariance Gaussian against a diagonal one (the linear-Gaussian posterior
    against the prior, or a diagonal q against that posterior), so those are recast as two
    ``MultivariateNormal`` s first.
    """
    if type(q) is Categorical and type(p) is Categorical:
        # torch's rule tests p.probs == 0, which is also true where p(z) merely underflows (a responsibility of
        # e^-200 for a far-away point); logits stay finite there, so sum q (log q − log p) on logits instead.
        terms = q.probs * (q.logits - p.logits)
        return torch.where(q.probs > 0, terms, torch.zeros_like(terms)).sum(-1)
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        pass
    if isinstance(q, MultivariateNormal) or isinstance(p, MultivariateNormal):
        q_mvn, p_mvn = _as_mvn(q), _as_mvn(p)
        if q_mvn is not None and p_mvn is not None:
            return kl_divergence(q_mvn, p_mvn)
    return None


def _as_mvn(d: Distribution) -> MultivariateNormal | None:
    if isinstance(d, MultivariateNormal):
        return d
    if isinstance(d, Independent) and isinstance(d.base_dist, Normal) and d.reinterpreted_batch_ndims == 1:
        loc = d.base_dist.loc
        return MultivariateNormal(loc, scale_tril=torch.diag_embed(d.base_dist.scale), validate_args=validation(loc))
    return None


def _check_q(q: object, x: torch.Tensor, name: str) -> None:
    """q has batch shape [n] and lives on x's device (the model's, where it has one: see :func:`check_x`)."""
    if not isinstance(q, Distribution):
        raise ValueError(f"{name} must be a torch.distributions.Distribution over z, got {type(q).__name__}")
    if tuple(q.batch_shape) != (x.shape[0],):
        raise ValueError(f"{name} must have batch shape [{x.shape[0]}] (one distribution per row of x), "
                         f"got {list(q.batch_shape)}")
    check_same_device(q, x.device, name, "the model (and x)")


def _per_point(d: Distribution, x: torch.Tensor, name: str) -> Distribution:
    """``d`` with batch shape ``[n]``: a shared distribution (batch ``[]``) is expanded, one draw per point."""
    if isinstance(d, Distribution) and tuple(d.batch_shape) == ():
        d = d.expand((x.shape[0],))
    _check_q(d, x, name)
    return d


def _like(value: object, name: str, ref: torch.Tensor) -> torch.Tensor:
    return as_tensor(value, name, dtype=ref.dtype).to(ref.device)
