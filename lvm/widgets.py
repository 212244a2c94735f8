"""Interactive explorers: controls, and a figure redrawn from them whenever one changes.

An explorer needs a live kernel (Jupyter, Colab). A static page has none, so each explorer can also draw its
**stand-in**: the same figure at a few settings, side by side (:meth:`Explorer.stand_in`). The chapters show the
stand-in on the site and the live explorer in a notebook.

An explorer is a drawing function ``draw(fig, **values)`` that fills a matplotlib figure (or sub-figure) for one
setting of the controls, and the ipywidgets controls that name those values::

    beta = FloatSlider(value=1.0, min=0.0, max=8.0, description="β")
    explorer = Explorer(draw, {"beta": beta})
    explorer  # the last expression of a cell: the live explorer
    explorer.stand_in([{"beta": 0.5}, {"beta": 4.0}])  # the static figure
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from .models.mixture import GaussianMixture
from .plot import plot_mixture, plot_responsibilities

__all__ = ["Explorer", "mixture_explorer", "mixture_from_sliders"]

SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


class Explorer:
    """Controls (ipywidgets, by name) and ``draw(fig, **values)``, redrawn into one output on every change.

    ``figure`` is the figure drawn for the controls' current values: tests set a control's ``value`` and read
    it, as a student's slider would.
    """

    def __init__(self, draw: Callable[..., object], controls: Mapping[str, Any],
                 figsize: tuple[float, float] = (6.4, 3.4), titles: Mapping[str, str] | None = None):
        import ipywidgets as widgets  # only explorers need ipywidgets

        if not callable(draw):
            raise TypeError(f"draw must be a function draw(fig, **values), got {type(draw).__name__}")
        if not controls:
            raise ValueError("controls must name at least one ipywidgets control")
        for name, control in controls.items():
            if not hasattr(control, "observe") or not hasattr(control, "value"):
                raise TypeError(f"controls[{name!r}] must be an ipywidgets control with a value, "
                                f"got {type(control).__name__}")
            # Colab shows a control's description as plain text, TeX and all: use Unicode (σ₁), and put
            # maths for the stand-in's titles in `titles`.
            if "$" in (getattr(control, "description", "") or ""):
                raise ValueError(f"controls[{name!r}].description {control.description!r} holds TeX, which Colab "
                                 f"shows raw: write it in Unicode and give the maths in titles[{name!r}]")
        unknown = set(titles or {}) - set(controls)
        if unknown:
            raise ValueError(f"titles name controls this explorer does not have: {sorted(unknown)}")
        self.titles = dict(titles or {})
        self.draw = draw
        self.controls = dict(controls)
        self.figsize = figsize
        self.output = widgets.Output()
        self.figure: Figure | None = None
        for control in self.controls.values():
            control.observe(self._redraw, names="value")
        self._redraw()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def _redraw(self, change=None) -> None:
        from IPython import get_ipython
        from IPython.display import clear_output, display

        # A Figure made without pyplot: pyplot would show it a second time at the end of the cell.
        figure = Figure(figsize=self.figsize, layout="constrained")
        self.draw(figure, **self.values())
        self.figure = figure
        if get_ipython() is None:  # no kernel (a test, a script): the figure is all there is
            return
        with self.output:
            clear_output(wait=True)
            display(figure)

    def widget(self):
        """The controls above the figure, as one ipywidgets box."""
        import ipywidgets as widgets

        return widgets.VBox([*self.controls.values(), self.output])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())

    def stand_in(self, settings: Sequence[Mapping[str, object]], ncols: int = 2,
                 panel_size: tuple[float, float] = (3.3, 2.6)) -> Figure:
        """The figure ``draw`` makes at each of ``settings`` (each a dict of control values), side by side.

        Values a setting leaves out keep the controls' current ones. Each panel is titled with its setting.
        """
        import matplotlib.pyplot as plt

        if not settings:
            raise ValueError("settings must hold at least one setting (a dict of control values)")
        for setting in settings:
            unknown = set(setting) - set(self.controls)
            if unknown:
                raise ValueError(f"settings name controls this explorer does not have: {sorted(unknown)}; "
                                 f"it has {sorted(self.controls)}")
            for name, value in setting.items():
                _check_reachable(self.controls[name], name, value)
        ncols = min(ncols, len(settings))
        nrows = -(-len(settings) // ncols)
        figure = plt.figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
        panels = figure.subfigures(nrows, ncols, squeeze=False).ravel()
        for panel, setting in zip(panels, settings):
            values = {**self.values(), **setting}
            # The title first: a drawing that lays itself out (to space labels on the page) then sees it.
            panel.suptitle(", ".join(f"{self._label(name)} = {_format(value)}" for name, value in setting.items()),
                           fontsize=10)
            self.draw(panel, **values)
        for panel in panels[len(settings):]:
            panel.set_visible(False)
        return figure

    def _label(self, name: str) -> str:
        if name in self.titles:
            return self.titles[name]
        description = getattr(self.controls[name], "description", "") or name
        return description.rstrip(": ")


def _check_reachable(control, name: str, value) -> None:
    """A stand-in shows only what a reader can set live: a value among a selection's options, or a number within
    a slider's range (σ = 5 on a slider that stops at 3 was drawn before). A value between two of a slider's
    steps is let through: the reader sets the nearest step, and the page says so where it matters."""
    if hasattr(control, "options"):
        allowed = [option[1] if isinstance(option, tuple) else option for option in control.options]
        if value not in allowed:
            raise ValueError(f"settings: {name} = {value!r} is not one of the control's options {allowed}")
        return
    low, high = getattr(control, "min", None), getattr(control, "max", None)
    if low is None or high is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not low - 1e-9 <= value <= high + 1e-9:
        raise ValueError(f"settings: {name} = {value:g} is beyond its slider ({low:g} to {high:g}): a reader could "
                         "not set it")


def _format(value) -> str:
    """A control's value as a panel title writes it: numbers with a true minus sign, as tick labels have."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}".replace("-", "\u2212")
    if isinstance(value, int):
        return str(value).replace("-", "\u2212")
    return str(value)


def mixture_from_sliders(raw_weights, means, stds) -> GaussianMixture:
    """The mixture the sliders describe. Weights are normalised, so the student can move one freely."""
    raw = torch.as_tensor(raw_weights, dtype=torch.float32)
    if (raw < 0).any() or raw.sum() <= 0:
        raise ValueError("raw_weights must be non-negative with a positive sum")
    return GaussianMixture(raw / raw.sum(), means, stds)


def mixture_explorer(model: GaussianMixture, x_range=(-6.0, 6.0)) -> Explorer:
    """Sliders for λ_n, μ_n, σ_n of a 1-D mixture; redraws p(x), its components and p(z = n | x).

    The sliders start at ``model``'s values, or the model is refused: each mean must lie in ``x_range`` (the
    means' sliders span it) and each σ_n be at least 0.05; the spreads' sliders reach at least 3 and the
    largest σ_n.
    """
    import ipywidgets as widgets

    if model.x_dim is not None:
        raise ValueError("model must be a 1-D GaussianMixture (means of shape [N])")
    N = model.n_components
    outside = [f"μ{n + 1} = {float(m):g}" for n, m in enumerate(model.means) if not x_range[0] <= m <= x_range[1]]
    if outside:
        # A slider clamps its start into its range: the explorer would open on another mixture, silently.
        raise ValueError(f"x_range {tuple(x_range)} must hold every mean of model; {', '.join(outside)} lies "
                         f"outside it: pass a wider x_range")
    if float(model.stds.min()) < 0.05:
        raise ValueError(f"every sigma of model must be at least 0.05, the spreads' sliders' least value; got "
                         f"{float(model.stds.min()):g}")
    s_max = max(3.0, math.ceil(float(model.stds.max()) / 0.05) * 0.05)
    controls, titles = {}, {}
    for n in range(N):
        sub = str(n + 1).translate(SUBSCRIPTS)  # one-based, as in the text: λ₁ is the slider of w0
        controls[f"w{n}"] = widgets.FloatSlider(value=float(model.weights[n]), min=0.0, max=1.0, step=0.01,
                                                description=f"λ{sub} (raw)")
        controls[f"m{n}"] = widgets.FloatSlider(value=float(model.means[n]), min=x_range[0], max=x_range[1],
                                                step=0.05, description=f"μ{sub}")
        controls[f"s{n}"] = widgets.FloatSlider(value=float(model.stds[n]), min=0.05, max=s_max, step=0.05,
                                                description=f"σ{sub}")
        titles.update({f"w{n}": f"$\\lambda_{{{n + 1}}}$ (raw)", f"m{n}": f"$\\mu_{{{n + 1}}}$",
                       f"s{n}": f"$\\sigma_{{{n + 1}}}$"})

    def draw(fig, **values):
        raw = [values[f"w{n}"] for n in range(N)]
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
        if sum(raw) <= 0:
            top.text(0.5, 0.5, "At least one weight must be positive.", ha="center", transform=top.transAxes)
            return
        mixture = mixture_from_sliders(raw, [values[f"m{n}"] for n in range(N)],
                                       [values[f"s{n}"] for n in range(N)])
        plot_mixture(mixture, ax=top, x_range=x_range)
        # Above the panel, not in it: a peak moved under a legend would hide.
        top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2)
        top.set_xlabel("")  # the panels share x: one label, under the lower one
        plot_responsibilities(mixture, ax=bottom, x_range=x_range)
        bottom.set_ylabel(r"$p(z = n \mid x)$")

    return Explorer(draw, controls, figsize=(6.4, 4.4), titles=titles)
