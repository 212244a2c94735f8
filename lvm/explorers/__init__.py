"""The chapters' interactive explorers, one module per chapter's topic, each built on :mod:`lvm.widgets`.

Each module's explorer functions return an :class:`lvm.widgets.Explorer`: live sliders in Jupyter or Colab,
and a static stand-in figure for the website. Modules load on first use (``lvm.explorers.elbo``), so that
importing ``lvm`` does not import ipywidgets.
"""

from __future__ import annotations

import importlib

MODULES = ("elbo", "gradients", "latent_space", "iwae", "diagnosing", "diffusion")


def __getattr__(name: str):
    if name in MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
