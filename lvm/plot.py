"""Figures the chapters draw more than once. Each function takes an optional ``ax`` and returns it."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from .models.mixture import GaussianMixture

__all__ = ["component_colors", "plot_history", "plot_image_grid", "plot_mixture", "plot_responsibilities",
           "plot_samples_vs_density"]


def component_colors(k: int) -> list:
    """One colour per mixture component, stable across the figures of a chapter."""
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(k)]


def _grid_for(model: GaussianMixture, x_range: tuple[float, float] | None, n: int = 600) -> torch.Tensor:
    if x_range is None:
        lo = float((model.means - 4 * model.stds).min())
        hi = float((model.means + 4 * model.stds).max())
        x_range = (lo, hi)
    return torch.linspace(x_range[0], x_range[1], n, dtype=model.weights.dtype)


def plot_mixture(model: GaussianMixture, ax=None, x_range=None, show_components: bool = True,
                 label: str = "p(x)"):
    """The 1-D marginal density and, dashed, each weighted component λ_n N(x | μ_n, σ_n²)."""
    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [N]) to be drawn as a curve")
    ax = ax or plt.gca()
    grid = _grid_for(model, x_range)
    with torch.no_grad():
        if show_components:
            weighted = model.weights * model.components().log_prob(grid[:, None]).exp()
            for k, color in enumerate(component_colors(model.n_components)):
                ax.plot(grid, weighted[:, k], "--", color=color, lw=1.2,
                        label=rf"$\lambda_{k + 1}\,\mathcal{{N}}(x\mid\mu_{k + 1},\sigma_{k + 1}^2)$")
        ax.plot(grid, model.log_marginal(grid).exp(), color="black", lw=2, label=label)
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    return ax


def plot_samples_vs_density(model: GaussianMixture, x: torch.Tensor, ax=None, bins: int = 60,
                            label: str = "exact $p(x)$"):
    """A normalised histogram of samples ``x`` ([n]) over the model's density ``label``."""
    ax = ax or plt.gca()
    ax.hist(x.detach().cpu().numpy(), bins=bins, density=True, color="0.8", edgecolor="white",
            label=f"{x.shape[0]:,} ancestral samples")
    lo, hi = float(x.min()), float(x.max())
    plot_mixture(model, ax=ax, x_range=(lo, hi), show_components=False, label=label)
    ax.legend(loc="upper right")
    return ax


def plot_responsibilities(model: GaussianMixture, ax=None, x_range=None):
    """p(z = k | x) along x as stacked areas: at every x the columns sum to one."""
    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [N])")
    ax = ax or plt.gca()
    grid = _grid_for(model, x_range)
    with torch.no_grad():
        r = model.responsibilities(grid).T.numpy()
    colors = component_colors(model.n_components)
    ax.stackplot(grid.numpy(), r, colors=colors, alpha=0.75,
                 labels=[f"$p(z={k + 1}\\mid x)$" for k in range(model.n_components)])
    ax.set_ylim(0, 1)
    ax.set_xlabel("$x$")
    ax.set_ylabel("posterior probability")
    return ax


def plot_history(history, ax=None, metric: str = "ELBO (nats per example)"):
    """Training (and validation) ELBO per epoch, from the ``History`` that :func:`lvm.fit` returns."""
    ax = ax or plt.gca()
    ax.plot(history.epoch, history.train_elbo, marker="o", ms=3, label="train")
    if history.val_elbo:
        ax.plot(history.epoch, history.val_elbo, marker="o", ms=3, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend()
    return ax


def plot_image_grid(images: torch.Tensor, nrow: int = 8, shape: Sequence[int] = (28, 28), ax=None,
                    title: str | None = None):
    """Tile ``images`` ([n, h*w], values in [0, 1]) into one grey-level picture."""
    ax = ax or plt.gca()
    images = images.detach().float().cpu().reshape(-1, *shape)
    n = images.shape[0]
    ncol = -(-n // nrow)
    h, w = shape
    canvas = torch.zeros(ncol * (h + 1) + 1, nrow * (w + 1) + 1)  # 0 is white in gray_r: thin white gaps
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = images[i]
    ax.imshow(canvas.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
