"""Interactive explorers. They need a live kernel (Jupyter, Colab); the static site shows a figure instead."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .models.mixture import GaussianMixture
from .plot import plot_mixture, plot_responsibilities

__all__ = ["mixture_explorer", "mixture_from_sliders"]


def mixture_from_sliders(raw_weights, means, stds) -> GaussianMixture:
    """The mixture the sliders describe. Weights are normalised, so the student can move one freely."""
    raw = torch.as_tensor(raw_weights, dtype=torch.float32)
    if (raw < 0).any() or raw.sum() <= 0:
        raise ValueError("raw_weights must be non-negative with a positive sum")
    return GaussianMixture(raw / raw.sum(), means, stds)


def mixture_explorer(model: GaussianMixture, x_range=(-6.0, 6.0)):
    """Sliders for λ_k, μ_k, σ_k of a 1-D mixture; redraws p(x), its components and p(z | x).

    Returns the ipywidgets box: display it as the last expression of a cell.
    """
    import ipywidgets as widgets  # only the interactive path needs ipywidgets

    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [K])")
    k = model.n_components
    sliders = {}
    rows = []
    for i in range(k):
        w = widgets.FloatSlider(value=float(model.weights[i]), min=0.0, max=1.0, step=0.01,
                                description=f"λ{i + 1} (raw)")
        m = widgets.FloatSlider(value=float(model.means[i]), min=x_range[0], max=x_range[1], step=0.05,
                                description=f"μ{i + 1}")
        s = widgets.FloatSlider(value=float(model.stds[i]), min=0.05, max=3.0, step=0.05,
                                description=f"σ{i + 1}")
        sliders.update({f"w{i}": w, f"m{i}": m, f"s{i}": s})
        rows.append(widgets.HBox([w, m, s]))

    def redraw(**values):
        raw = [values[f"w{i}"] for i in range(k)]
        if sum(raw) <= 0:
            print("At least one weight must be positive.")
            return
        mixture = mixture_from_sliders(raw, [values[f"m{i}"] for i in range(k)],
                                       [values[f"s{i}"] for i in range(k)])
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=(2, 1))
        plot_mixture(mixture, ax=top, x_range=x_range)
        top.legend(fontsize=8, loc="upper right")
        plot_responsibilities(mixture, ax=bottom, x_range=x_range)
        plt.show()

    output = widgets.interactive_output(redraw, sliders)
    return widgets.VBox([*rows, output])
