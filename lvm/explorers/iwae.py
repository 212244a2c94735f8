"""The importance-weighted bound at K samples, on a model whose log p(x) is exact (chapter 7).

:func:`iwae_explorer` has one slider, the number of importance samples K. For one data point x it shows the
distribution, over many repeated draws, of the K-sample estimate log (1/K) Σ_k w_k of the bound L_K
(eq. ``iwae``): a histogram of the estimates, their mean (the Monte Carlo estimate of L_K), the exact log p(x)
and the ELBO (exact if given, otherwise the mean at K = 1). As K grows the mean climbs towards log p(x) from
below and the spread of the estimates shrinks. Every estimate is computed once, when the explorer is built,
so moving the slider only redraws a histogram.
"""

from __future__ import annotations

import math

import torch
from matplotlib.ticker import MaxNLocator
from torch.distributions import Distribution

from .._checks import check_int, check_real
from ..bounds import log_importance_weights
from ..plot import COLORS
from ..widgets import Explorer

__all__ = ["DEFAULT_KS", "IWAEExplorer", "bound_estimates", "iwae_explorer", "iwae_weights", "repeated", "signed"]

DEFAULT_KS = tuple(2**i for i in range(11))  # 1, 2, 4, ..., 1024


def iwae_weights(model, x, q: Distribution, k_max: int, repeats: int = 200,
                 seed: int = 0) -> torch.Tensor:
    """``k_max`` log-weights for each of ``repeats`` independent runs on one point x, shape ``[k_max, repeats]``.

    Column r holds log w_k = log p(x, z_k) − log q(z_k) for k_max fresh draws z_k ~ q, from
    :func:`lvm.bounds.log_importance_weights` called on ``repeats`` copies of x, with the CPU generator (and,
    for x on a CUDA device, that device's generator) seeded with ``seed``: the draws ``torch.manual_seed(seed)``
    would give. The caller's random state is left alone: only those generators are seeded, inside
    :func:`torch.random.fork_rng`, which restores them. The first K rows of a column give one K-sample estimate of
    L_K (:func:`bound_estimates`), independent of the other columns'.

    Args:
        model: a latent variable model.
        x: one data point, shape ``[d_x]`` (or ``[1, d_x]``), on the CPU or a CUDA device.
        q: the proposal for that point, a distribution over z with batch shape ``[]`` or ``[1]``.
        k_max: the largest number of samples K, a positive integer.
        repeats: independent runs, at least 2.
        seed: the seed of the draws, a non-negative integer.
    """
    k_max = check_int(k_max, "k_max", 1)
    repeats = check_int(repeats, "repeats", 2)
    seed = check_int(seed, "seed", 0)
    x_rep, q_rep = repeated(x, q, repeats)
    device = x_rep.device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"x must be on the CPU or a CUDA device, got {device}")
    # Only the generators forked here are seeded: torch.manual_seed would also reseed every CUDA device,
    # which fork_rng does not restore unless it forks that device too. The CPU generator seeded alone
    # gives the same CPU draws as torch.manual_seed(seed).
    index = None
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[] if index is None else [index], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        if index is not None:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)  # this device's generator, which fork_rng restores
        return log_importance_weights(model, x_rep, q_rep, k_max).cpu()


def bound_estimates(log_w: torch.Tensor, k: int) -> torch.Tensor:
    """log (1/K) Σ_{k ≤ K} w_k from the first K rows of ``[k_max, repeats]`` log-weights: ``[repeats]``."""
    k = check_int(k, "k", 1)
    if k > log_w.shape[0]:
        raise ValueError(f"k must be at most the {log_w.shape[0]} log-weights per run, got {k}")
    return torch.logsumexp(log_w[:k], dim=0) - math.log(k)


def repeated(x, q: Distribution, repeats: int) -> tuple[torch.Tensor, Distribution]:
    """x as ``repeats`` identical rows ``[repeats, d_x]``, and q expanded to batch shape ``[repeats]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor holding one data point, got {type(x).__name__}")
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1:
        raise ValueError(f"x must be one data point, shape [d_x] or [1, d_x], got {list(x.shape)}")
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch Distribution over z, got {type(q).__name__}")
    if tuple(q.batch_shape) not in ((), (1,)):
        raise ValueError(f"q must be the proposal for one point, batch shape [] or [1], "
                         f"got {list(q.batch_shape)}")
    return x.expand(repeats, -1), q.expand(torch.Size([repeats]))


class IWAEExplorer(Explorer):
    """The :class:`lvm.widgets.Explorer` of :func:`iwae_explorer`, with what it draws: ``log_weights``
    (``[max(ks), repeats]``) and ``estimates`` (``{K: [repeats]}``, with K = 1 always included)."""

    log_weights: torch.Tensor
    estimates: dict[int, torch.Tensor]


def iwae_explorer(model, x, q: Distribution, log_px, ks=DEFAULT_KS, repeats: int = 200,
                  seed: int = 0, elbo=None, bins: int = 80) -> IWAEExplorer:
    """A slider for K and, for one point x, the distribution of the K-sample bound over repeated runs.

    The histogram (``bins`` equal bins) shows ``repeats`` independent estimates log (1/K) Σ_k w_k, each from
    the first K of its run's log-weights (:func:`iwae_weights`, drawn once, up to the largest K); a dashed
    line marks their mean, the Monte Carlo estimate of L_K; a solid black line the exact log p(x); a dotted
    line the ELBO (exact if given, otherwise the mean of the estimates at K = 1). The horizontal axis is the
    same for every K, so the histogram visibly narrows and moves towards log p(x) as K grows. The title
    gives the mean minus log p(x) and the estimates' standard deviation.

    Args:
        model, x, q, repeats, seed: as in :func:`iwae_weights`.
        log_px: the exact log p(x) of the point, a finite number (e.g. from ``log_marginal`` of a
            linear-Gaussian model).
        ks: the slider's values of K, increasing positive integers.
        elbo: the exact ELBO of the point, a finite number, if known (e.g. ``elbo_exact`` of a
            linear-Gaussian model); ``None`` draws the mean of the estimates at K = 1 instead.
        bins: the number of equal bins, the same for every K, across all the estimates (at every K in
            ``ks`` and at K = 1), the ELBO and log p(x), with a margin of 5% of that range on each side;
            enough that the narrow histograms of large K still show their shape over several bars.

    Returns:
        An :class:`IWAEExplorer` (an :class:`lvm.widgets.Explorer`) with one control, ``k`` (a
        ``SelectionSlider`` over ``ks``). Its attributes ``log_weights`` (``[max(ks), repeats]``) and
        ``estimates`` (``{K: [repeats]}``, with K = 1 always included) hold what it draws.
    """
    import ipywidgets as widgets

    ks = _check_ks(ks)
    log_px = check_real(log_px, "log_px")
    bins = check_int(bins, "bins", 1)
    log_w = iwae_weights(model, x, q, ks[-1], repeats, seed)
    estimates = {k: bound_estimates(log_w, k) for k in sorted({1, *ks})}
    elbo = float(estimates[1].mean()) if elbo is None else check_real(elbo, "elbo")
    everything = torch.cat(list(estimates.values()))
    low = min(float(everything.min()), log_px, elbo)
    high = max(float(everything.max()), log_px, elbo)
    margin = 0.05 * (high - low) if high > low else 0.5
    edges = torch.linspace(low - margin, high + margin, bins + 1).tolist()

    def draw(fig, k):
        values = estimates[k]
        mean, sd = float(values.mean()), float(values.std())
        ax = fig.subplots()
        counts, _, _ = ax.hist(values.numpy(), bins=edges, color=COLORS[0], alpha=0.6)
        # The mean can sit on log p(x) (large K) or near the ELBO (K = 1): the two reference lines are
        # drawn wide and the mean thin on top of them, so that every line stays visible.
        ax.axvline(log_px, color="black", lw=2.6, label=r"exact $\log p(\mathbf{x})$")
        ax.axvline(elbo, color=COLORS[1], ls=":", lw=2.6, label="ELBO")
        ax.axvline(mean, color=COLORS[3], ls="--", lw=1.1, label="mean", zorder=3)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, 1.05 * counts.max())
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True, steps=[1, 2, 5, 10]))
        ax.set_xlabel(f"$K$-sample estimate, {len(values)} runs (nats)")
        ax.set_ylabel("runs")
        minus = "\N{MINUS SIGN}"
        difference = signed(mean - log_px)
        ax.set_title(f"mean {minus} " + r"$\log p(\mathbf{x})$" + f" = {difference}, sd {sd:.3f}",
                     fontsize=9)
        fig.legend(loc="outside lower center", ncols=3, handlelength=1.6, columnspacing=1.0)

    slider = widgets.SelectionSlider(options=ks, value=ks[0], description="K")
    explorer = IWAEExplorer(draw, {"k": slider}, figsize=(6.4, 3.4), titles={"k": "$K$"})
    explorer.log_weights = log_w
    explorer.estimates = estimates
    return explorer


def signed(value: float) -> str:
    """``value`` to 3 decimals with its sign (a true minus sign), and 0.000 unsigned where it rounds to zero.

    ``f"{-0.0001:+.3f}"`` gives "-0.000", a sign that the number shown does not have.
    """
    text = f"{value:+.3f}"
    if float(text) == 0:
        return "0.000"
    return text.replace("-", "\N{MINUS SIGN}")


def _check_ks(ks) -> list[int]:
    try:
        ks = list(ks)
    except TypeError:
        raise TypeError(f"ks must be a sequence of positive integers, got {type(ks).__name__}") from None
    if not ks:
        raise ValueError("ks must hold at least one number of samples K")
    ks = [check_int(k, "each K in ks", 1) for k in ks]
    if any(b <= a for a, b in zip(ks, ks[1:])):
        raise ValueError(f"ks must be strictly increasing, got {ks}")
    return ks


