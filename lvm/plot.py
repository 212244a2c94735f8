"""The course's one plotting style, and the figures the chapters draw more than once.

:func:`use_course_style` is called by every chapter's set-up cell. It sets one look for every figure (sizes that
fit the site's column, text that stays readable there, colour-blind-safe colours) and has each figure rendered
at twice its size, for sharp HiDPI screens, with a record of its smallest text and every string it draws in the
PNG itself: the site's browser test reads that record to check that no text shows below 9 px and that no
legend prints a tensor.

Each plotting function takes an optional ``ax`` and returns it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.text import Text

from .models.mixture import GaussianMixture

if TYPE_CHECKING:  # not in every matplotlib that requirements.txt allows; the annotation is never evaluated
    from matplotlib.typing import RcKeyType

__all__ = ["COLORS", "DIGIT_COLORS", "DIGIT_MARKERS", "FIGURE_SVG_VARIABLE", "MIN_TEXT_PT", "component_colors",
           "figure_record", "plot_digit_scatter", "plot_history", "plot_image_grid", "plot_mixture",
           "plot_responsibilities", "plot_samples_vs_density", "render_png", "render_svg", "spread_apart",
           "use_course_style", "write_digit_labels"]

# Okabe & Ito's palette, the usual colour-blind-safe choice for up to eight series (black is the eighth).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
# Ten digits cannot be told apart by colour alone under every colour-vision deficiency: each digit also has a
# marker of its own, and plot_digit_scatter writes the digit itself at the middle of its cloud.
DIGIT_COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#882255", "#000000",
                "#999933", "#AA4499"]
DIGIT_MARKERS = ["o", "s", "^", "D", "P", "X", "*", "h", "p", "v"]  # one triangle pair, the rest distinct

# The site's text column is about 670 CSS px wide at a 1280 px window. A figure one column wide (6.7 in at
# 100 dpi) is shown at its own size, so 7 pt there is 9.7 px; wider figures are shrunk, and their text with them.
MIN_TEXT_PT = 7.0
# Keyed by matplotlib's rcParams names (RcKeyType, a Literal of them all): mypy refuses a misspelt one.
STYLE: dict[RcKeyType, Any] = {
    "figure.figsize": (6.4, 3.4),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=COLORS),
    "image.cmap": "viridis",
    "lines.linewidth": 1.6,
}


def component_colors(k: int) -> list:
    """One colour per mixture component, stable across the figures of a chapter (colour-blind safe)."""
    return [COLORS[i % len(COLORS)] for i in range(k)]


def figure_record(fig: Figure) -> dict:
    """What a reader will have to read in ``fig``: its smallest font size (pt) and every string it draws.

    Call it after the figure is drawn (saving draws it): tick labels exist only then.
    """
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return {"smallest_text_pt": min((float(t.get_fontsize()) for t in texts), default=None),
            "texts": [t.get_text() for t in texts]}


def render_png(fig: Figure, scale: float = 2.0) -> tuple[bytes, dict]:
    """``fig`` as a PNG at ``scale`` × its dpi, shown at 1×: the bytes and IPython's size metadata.

    The PNG carries ``figure_record``'s findings and the dpi it was rendered at as text chunks.
    """
    if not scale >= 1:
        raise ValueError(f"scale must be at least 1, got {scale!r}")
    dpi = fig.dpi * scale
    buffer = io.BytesIO()
    fig.draw_without_rendering()  # lays out the figure and makes its tick labels: the record sees them
    record = figure_record(fig)
    metadata = {"lvm-dpi": f"{dpi:g}", "lvm-smallest-text-pt": json.dumps(record["smallest_text_pt"]),
                "lvm-texts": json.dumps(record["texts"])[:20_000]}
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata=metadata,
                facecolor=fig.get_facecolor())
    data = buffer.getvalue()
    width, height = _png_size(data)
    return data, {"width": round(width / scale), "height": round(height / scale)}


def _png_size(data: bytes) -> tuple[int, int]:
    # Width and height are the first two fields of the IHDR chunk, which every PNG starts with.
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# Set (to anything but 0) to have every figure rendered as SVG beside its PNG: a release's figure pack
# (tools/figure_pack.py) takes both from the executed notebooks. The site keeps showing the PNG
# (nb_mime_priority_overrides in _config.yml).
FIGURE_SVG_VARIABLE = "LVM_FIGURE_SVG"


def render_svg(fig: Figure) -> str:
    """``fig`` as SVG text, for slides and print, cut to its drawn area as :func:`render_png` cuts the PNG."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", facecolor=fig.get_facecolor())
    return buffer.getvalue()


def use_course_style() -> None:
    """Set the course's plotting style, and in Jupyter render every figure with :func:`render_png` (and with
    :func:`render_svg` too when ``LVM_FIGURE_SVG`` is set)."""
    matplotlib.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: the style is all there is to set
        return
    shell = get_ipython()
    if shell is None:
        return
    # The inline backend installs its own PNG formatter when it is first loaded, replacing any set before
    # it: load it now, so that ours comes last and stays.
    plt.close(plt.figure())  # the first figure loads the backend
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, render_png)
    if os.environ.get(FIGURE_SVG_VARIABLE, "0") != "0":
        svg = shell.display_formatter.formatters["image/svg+xml"]
        svg.for_type(Figure, render_svg)
        svg.enabled = True


def plot_digit_scatter(z, labels, ax=None, s: float = 16.0, alpha: float = 0.5, label_digits: bool = True):
    """Codes ``z`` ([n, 2]) coloured and marked by their digit ``labels`` ([n]), each digit written near the
    median of its cloud (:func:`write_digit_labels`): readable without telling ten colours apart.

    The markers' shapes can be told apart from about ``s = 10`` (points²) on the site; smaller, the clouds differ
    by colour alone. Set the axes' limits before calling if they are not to be the data's.
    """
    ax = ax or plt.gca()
    z = torch.as_tensor(z).detach().cpu().float().numpy()
    labels = torch.as_tensor(labels).detach().cpu().numpy()
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape [n, 2], got {tuple(z.shape)}")
    if labels.shape != (z.shape[0],):
        raise ValueError(f"labels must have shape [{z.shape[0]}], got {tuple(labels.shape)}")
    digits = [int(d) for d in np.unique(labels)]
    for digit in digits:
        points = z[labels == digit]
        ax.scatter(points[:, 0], points[:, 1], s=s, alpha=alpha, color=DIGIT_COLORS[digit % 10],
                   marker=DIGIT_MARKERS[digit % 10], linewidths=0, label=str(digit))
    if label_digits and digits:
        write_digit_labels(ax, digits, np.array([np.median(z[labels == d], axis=0) for d in digits]))
    return ax


def write_digit_labels(ax, digits: Sequence[int], medians: np.ndarray, gap: float = 0.22) -> np.ndarray:
    """Each digit written near its median (``medians[k]`` for ``digits[k]``), in its colour, on ``ax``.

    Measured on the page, at the axes' limits and size when called: numerals stay ``gap`` inches apart and
    half that from every other digit's median, so that no numeral hides another or marks the wrong cloud.
    A numeral moved further than its own half-height is joined to its median, marked by a dot, by a thin
    line. Returns where they were written, in data units.
    """
    import matplotlib.patheffects as effects

    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    box = ax.get_window_extent()
    inches_per_unit = np.array([box.width / (x_hi - x_lo), box.height / (y_hi - y_lo)]) / ax.figure.dpi
    origin = np.array([x_lo, y_lo])
    medians = np.asarray(medians, dtype=float)
    on_page = (medians - origin) * inches_per_unit
    placed = spread_apart(on_page, min_distance=gap, fixed=on_page, fixed_distance=gap / 2)
    for digit, median, spot, start in zip(digits, medians, placed / inches_per_unit + origin, on_page):
        if np.hypot(*((spot - origin) * inches_per_unit - start)) > gap / 2:  # past its own halo: show the way
            ax.plot([median[0], spot[0]], [median[1], spot[1]], color="0.2", lw=0.9, zorder=4)
            ax.plot([median[0]], [median[1]], marker="o", ms=3.5, color=DIGIT_COLORS[digit % 10], mec="0.2",
                    mew=0.8, zorder=4)
        ax.text(spot[0], spot[1], str(digit), fontsize=12, fontweight="bold", ha="center", va="center",
                color=DIGIT_COLORS[digit % 10], zorder=5,
                path_effects=[effects.withStroke(linewidth=3, foreground="white")])
    return placed / inches_per_unit + origin


def spread_apart(points: np.ndarray, min_distance: float, steps: int = 300, fixed: np.ndarray | None = None,
                 fixed_distance: float = 0.0) -> np.ndarray:
    """``points`` ([k, 2]) moved as little as needed for every pair to be at least ``min_distance`` apart.

    With ``fixed`` ([k, 2], e.g. the points' own starting places), point i also keeps ``fixed_distance`` from
    every ``fixed[j]`` with j ≠ i, which does not move.
    """
    placed = np.array(points, dtype=float)
    rng = np.random.default_rng(0)  # only to separate points that start at the same place

    def direction_of(gap: np.ndarray) -> np.ndarray:
        length = np.hypot(*gap)
        unit = gap / length if length > 0 else rng.normal(size=2)
        return unit / np.hypot(*unit)

    for _ in range(steps):
        moved = False
        for i in range(len(placed)):
            for j in range(i + 1, len(placed)):
                gap = placed[j] - placed[i]
                distance = np.hypot(*gap)
                if distance >= min_distance:
                    continue
                push = (min_distance - distance) / 2 + 1e-6
                unit = direction_of(gap)
                placed[i] -= push * unit
                placed[j] += push * unit
                moved = True
            if fixed is None:
                continue
            for j in range(len(fixed)):
                if j == i:
                    continue
                gap = placed[i] - fixed[j]
                distance = np.hypot(*gap)
                if distance < fixed_distance:
                    # A little sideways noise: a point caught between two fixed points on a line can only
                    # escape off that line.
                    away = direction_of(gap) + rng.normal(scale=0.05, size=2)
                    placed[i] += (fixed_distance - distance + 1e-6) * away / np.hypot(*away)
                    moved = True
        if not moved:
            break
    return placed


def _grid_for(model: GaussianMixture, x_range: tuple[float, float] | None, n: int = 600) -> torch.Tensor:
    if x_range is None:
        lo = float((model.means - 4 * model.stds).min())
        hi = float((model.means + 4 * model.stds).max())
        x_range = (lo, hi)
    return torch.linspace(x_range[0], x_range[1], n, dtype=model.weights.dtype)


def plot_mixture(model: GaussianMixture, ax=None, x_range=None, show_components: bool = True,
                 label: str = "$p(x)$"):
    """The 1-D marginal density and, dashed, each weighted component λ_n N(x | μ_n, σ_n²)."""
    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [N]) to be drawn as a curve")
    ax = ax or plt.gca()
    grid = _grid_for(model, x_range)
    with torch.no_grad():
        if show_components:
            weighted = model.weights * model.components().log_prob(grid[:, None]).exp()
            for n, color in enumerate(component_colors(model.n_components)):
                # Above p(x), which covers each component near its peak; numbered from 1, as in the text.
                ax.plot(grid, weighted[:, n], "--", color=color, lw=1.4, zorder=3,
                        label=rf"$\lambda_{n + 1}\,\mathcal{{N}}(x\mid\mu_{n + 1},\sigma_{n + 1}^2)$")
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
    """p(z = n | x) along x as stacked areas: at every x the columns sum to one."""
    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [N])")
    ax = ax or plt.gca()
    grid = _grid_for(model, x_range)
    with torch.no_grad():
        r = model.responsibilities(grid).T.numpy()
    colors = component_colors(model.n_components)
    ax.stackplot(grid.numpy(), r, colors=colors, alpha=0.75,
                 labels=[f"$p(z={n + 1}\\mid x)$" for n in range(model.n_components)])
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
