"""Progress bars that suit where the code runs, chosen by one switch, ``LVM_PROGRESS``.

- ``auto`` (the default): ``tqdm.auto``, a live widget in Jupyter and Colab, text in a terminal;
- ``plain``: a text bar that is printed when it starts and when it ends, for logs;
- ``off``: no bar.

A book build wants ``plain`` or ``off``: a widget bar saved into a notebook makes the static page load
require.js and the widget manager from a CDN, and shows nothing without a kernel.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

__all__ = ["MODES", "progress_bar", "progress_mode"]

MODES = ("auto", "plain", "off")


def progress_mode() -> str:
    """The mode ``LVM_PROGRESS`` names (``auto`` when unset); read at every call, so it can be changed."""
    mode = os.environ.get("LVM_PROGRESS", "").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"LVM_PROGRESS must be one of {list(MODES)}, got {mode!r}")
    return mode


def progress_bar(*, total: int, initial: int = 0, desc: str, unit: str, enabled: bool = True) -> Any:
    """A ``tqdm`` bar over ``total`` steps, of the kind ``LVM_PROGRESS`` asks for (none if not ``enabled``).

    Typed ``Any``: tqdm carries no type information of its own (its stubs are the separate types-tqdm).
    """
    mode = progress_mode()
    if not enabled or mode == "off":
        return text_tqdm(total=total, initial=initial, disable=True)
    if mode == "plain":
        # An infinite refresh interval: one line when the bar opens, one when it closes, no \r storms in logs.
        return text_tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stdout, ascii=True,
                         mininterval=math.inf, maxinterval=math.inf, dynamic_ncols=False, ncols=100)
    return auto_tqdm(total=total, initial=initial, desc=desc, unit=unit)
