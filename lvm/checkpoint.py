"""Checkpoints that survive a crash and load safely.

Writing: the state goes to a temporary file in the *same directory* and is then renamed over the target with
``os.replace``, which is atomic on POSIX and Windows. A run killed half-way through a save (a Colab session
timing out, say) leaves the previous checkpoint intact instead of a truncated file.

Reading: ``torch.load(..., weights_only=True)``, which unpickles only tensors and plain containers, so
opening a checkpoint downloaded from somewhere cannot run arbitrary code.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) to ``path`` atomically.

    The parent directory is created if needed. On any failure the temporary file is removed and an existing
    checkpoint at ``path`` is left as it was. Returns the path written.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not isinstance(state, Mapping):
        raise ValueError(f"state must be a mapping (e.g. a dict), got {type(state).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target: os.replace is only atomic within one file system.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them "the" checkpoint
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: tensors and containers only).

    Tensors are loaded onto ``map_location`` (the CPU by default; ``fit`` moves them where they belong).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return torch.load(path, map_location=map_location, weights_only=True)
