"""Is the latent space used, and how? Numbers for a trained VAE (chapter 8: posterior collapse, disentanglement).

- :func:`kl_per_dimension` — the KL term of each latent dimension, averaged over x: an upper bound on the
  nats the dimension carries about x (the information plus the mismatch between the dimension's aggregate
  posterior and the prior, eq. ``elbo-surgery`` for one dimension). A dimension with KL ≈ 0 has
  q(z_j | x) = p(z_j) for every x, so it carries nothing and the decoder cannot learn anything from it.
- :func:`active_units` — Burda et al. (2016)'s count of the dimensions whose posterior mean moves with x.
- :func:`mutual_information_gap` — Chen et al. (2018)'s disentanglement score, for data whose factors of
  variation are known (:func:`lvm.data.shapes`), estimated from binned codes and factors (Locatello et al.
  2019's estimator, with equally filled bins), not by Chen et al.'s Monte Carlo over q(z_j | x).

The first two take x, or ``(x, y)`` for a :class:`lvm.ConditionalVAE`, and run the encoder in eval mode,
without gradients, on the whole of x at once; the gap takes codes and factors that are already computed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from numbers import Real
from typing import Any

import numpy as np
import torch

from ._checks import as_scalar, check_positive_int
from .bounds import check_x, dimensionwise_kl
from .objectives import Batch, unpack

__all__ = ["active_units", "kl_per_dimension", "mutual_information", "mutual_information_gap"]


@torch.no_grad()
def kl_per_dimension(model: Any, x: Batch, n_samples: int = 100) -> torch.Tensor:
    """The mean over the data of KL(q(z_j | x) ‖ p(z_j)) for each latent dimension j, shape ``[z_dim]``
    (eq. ``kl-per-dim``):

        KL_j = (1/n) Σ_i KL(q(z_j | x_i) ‖ p(z_j))

    in nats; Σ_j KL_j is the mean KL term of the ELBO. KL_j is an upper bound on the mutual information
    between the example's index and z_j (eq. ``elbo-surgery`` applied to one dimension adds the mismatch
    KL(q_agg(z_j) ‖ p(z_j)) ≥ 0), equal to it only when z_j's aggregate posterior is the prior; KL_j ≈ 0
    means the dimension carries nothing. Closed form for diagonal Gaussians (eq. ``gauss-kl``, per
    dimension), otherwise a Monte Carlo average over ``n_samples`` draws per example.

    Args:
        model: a VAE (anything with ``encode(x)`` and ``prior()`` that factorise over z's dimensions).
        x: data ``[n, x_dim]``, or ``(x, y)`` with labels y ``[n]`` for a conditional VAE.
    """
    model_x, x = unpack(model, x)
    x = check_x(model_x, x)
    with _evaluating(model):
        return dimensionwise_kl(model_x.encode(x), model_x.prior(), n_samples).mean(0)


@torch.no_grad()
def active_units(model: Any, x: Batch, threshold: float = 0.01) -> int:
    """The number of active latent dimensions (Burda et al. 2016, eq. ``active-units``): with

        A_j = Var_x(E_{q(z | x)}[z_j]),

    the variance over the data of the posterior mean of z_j, dimension j is active when A_j > ``threshold``
    (Burda et al. use 0.01). The variance is the data set's own (divided by n), so x needs at least two
    examples. For a diagonal Gaussian q and the standard normal prior, KL_j ≥ A_j / 2 (:func:`kl_per_dimension`),
    so an active dimension has KL_j > threshold / 2, but one carrying a few hundredths of a nat can be active.

    Args:
        model: a VAE (anything whose ``encode(x)`` has a ``mean``).
        x: data ``[n, x_dim]`` with n >= 2, or ``(x, y)`` for a conditional VAE.
        threshold: a number >= 0.
    """
    threshold = as_scalar(threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    model_x, x = unpack(model, x)
    x = check_x(model_x, x)
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least two examples to measure a variance over them, got {x.shape[0]}")
    with _evaluating(model):
        posterior = model_x.encode(x)
        try:
            means = posterior.mean  # [n, z_dim]
        except NotImplementedError:  # e.g. TwoLevelVAE's chain q(z1 | x) q(z2 | z1): its mean needs sampling
            raise ValueError(f"active_units needs the mean of q(z | x) in closed form, and "
                             f"{type(model_x).__name__}.encode gives a {type(posterior).__name__}, which has none"
                             ) from None
    return int((means.var(dim=0, correction=0) > threshold).sum())


def mutual_information(codes: torch.Tensor, factors: torch.Tensor, bins: int = 20
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The mutual information between each code dimension and each factor, and each factor's entropy, in nats.

    Both are estimated from the empirical joint distribution after discretising: a code dimension into
    ``bins`` equally filled bins (by quantiles), a factor the same way unless it takes at most ``bins``
    distinct values (a category such as a shape), which are then kept as they are. scikit-learn's
    ``mutual_info_score`` computes each entry. Two consequences: H is the entropy of the *binned* factor
    (log ``bins`` for a continuous one, whatever its distribution), so both numbers depend on ``bins``; and
    the plug-in I is biased upwards, by about (b_z − 1)(b_v − 1) / (2n) nats for variables of b_z and b_v
    bins and n examples (0.09 nats for 20 bins each and n = 2000), so an independent pair does not score 0;
    a warning says when that bias exceeds a tenth of a factor's entropy (too few examples for the bins).

    Args:
        codes: ``[n, d_z]``, e.g. the encoder means of n examples.
        factors: ``[n, K]``, the known factors of variation of the same examples.
        bins: bins per continuous variable, >= 2.

    Returns:
        ``(I, H)``: I ``[d_z, K]`` with I[j, k] = I(z_j; v_k), and H ``[K]`` with H[k] = H(v_k).
    """
    bins = check_positive_int(bins, "bins")
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    code_table = _as_table(codes, "codes")
    factor_table = _as_table(factors, "factors")
    if code_table.shape[0] != factor_table.shape[0]:
        raise ValueError(f"codes and factors must describe the same examples: codes has {code_table.shape[0]} "
                         f"rows, factors {factor_table.shape[0]}")
    from sklearn.metrics import mutual_info_score  # imported here: only this function needs scikit-learn

    code_bins = [_discretise(column, bins) for column in code_table.T]
    factor_bins = [_discretise(column, bins) for column in factor_table.T]
    info = torch.tensor([[mutual_info_score(v, c) for v in factor_bins] for c in code_bins], dtype=torch.float64)
    entropy = torch.tensor([mutual_info_score(v, v) for v in factor_bins], dtype=torch.float64)
    _warn_if_biased(code_bins, factor_bins, entropy, bins)
    return info, entropy


def _warn_if_biased(code_bins: list[np.ndarray], factor_bins: list[np.ndarray], entropy: torch.Tensor,
                    bins: int) -> None:
    """Warn when the plug-in estimate's upward bias, about (b_z − 1)(b_v − 1) / (2n) nats, exceeds a tenth of a
    factor's entropy: every I then looks alike and the gaps shrink towards 0 (exactly 0 once n <= bins, where
    each example is its own bin), however disentangled the codes."""
    n = len(code_bins[0])
    levels_z = max(len(np.unique(c)) for c in code_bins)
    levels_v = np.array([len(np.unique(v)) for v in factor_bins])
    bias = (levels_z - 1) * (levels_v - 1) / (2 * n)
    worst = int(np.argmax(bias / np.maximum(entropy.numpy(), 1e-12)))
    if bias[worst] > 0.1 * float(entropy[worst]):
        warnings.warn(f"with n = {n} examples and bins = {bins}, the mutual informations are biased upwards by "
                      f"about {bias[worst]:.2g} nats, against a factor entropy of {float(entropy[worst]):.2g}: "
                      "gaps computed from them shrink towards 0. Use more examples or fewer bins.", stacklevel=3)


def mutual_information_gap(codes: torch.Tensor, factors: torch.Tensor, bins: int = 20) -> torch.Tensor:
    """The mutual-information gap of each factor (Chen et al. 2018, eq. ``mig``), shape ``[K]``:

        MIG_k = (I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k)

    where z_(1) and z_(2) are the code dimensions with the largest and second-largest mutual information with
    factor v_k. It is near 1 when one dimension alone describes the factor, near 0 when none does or when
    the factor is spread over several; its mean over the factors is the usual single score. Estimated as in
    :func:`mutual_information`, from binned codes (the estimator of Locatello et al. 2019, with equally
    filled bins instead of their equal-width ones), not by Chen et al.'s Monte Carlo over q(z_j | x); so it
    inherits that function's dependence on ``bins`` and its upward bias. Needs at least two code dimensions.
    """
    info, entropy = mutual_information(codes, factors, bins)
    if info.shape[0] < 2:
        raise ValueError(f"codes must have at least two dimensions for a gap, got {info.shape[0]}")
    if (entropy <= 0).any():
        raise ValueError("every factor must vary over the examples (a constant factor has no entropy)")
    top_two = info.topk(2, dim=0).values  # [2, K]
    return (top_two[0] - top_two[1]) / entropy


def _as_table(values: object, name: str) -> np.ndarray:
    if not isinstance(values, torch.Tensor) or values.dim() != 2 or values.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D tensor [n, columns] with n >= 2, got "
                         f"{tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__}")
    if values.is_complex() or not torch.isfinite(values).all():
        raise ValueError(f"{name} must hold finite real numbers")
    return values.detach().cpu().double().numpy()


def _discretise(column: np.ndarray, bins: int) -> np.ndarray:
    """Integer labels: a column's own values if it has at most ``bins`` of them, else quantile bins."""
    distinct = np.unique(column)
    if len(distinct) <= bins:
        return np.searchsorted(distinct, column)
    edges = np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1])
    labels: np.ndarray = np.digitize(column, edges)
    return labels


@contextlib.contextmanager
def _evaluating(model: object) -> Iterator[None]:
    """Eval mode inside the block (no dropout, batch norm from its running statistics), then as it was."""
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        yield
    finally:
        if isinstance(model, torch.nn.Module):
            model.train(was_training)
