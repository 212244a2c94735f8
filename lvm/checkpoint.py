"""Checkpoints that survive a crash and load safely.

Writing: the state goes to a temporary file in the *same directory* and is then renamed
over the target with ``os.replace``, which is atomic on POSIX and Windows. A run killed
half-way through a save (a Colab session timing out, say) leaves the previous checkpoint
intact instead of a truncated file.

Reading: ``torch.load(..., weights_only=True)``, which unpickles only tensors and plain
containers, so opening a checkpoint downloaded from somewhere cannot run arbitrary code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) to ``path``
    atomically.

    The parent directory is created if needed. On any failure the temporary file is
    removed and an existing checkpoint at ``path`` is left as it was. Returns the path
    written.
    """
    path = checked_path(path, "path")
    if not isinstance(state, Mapping):
        raise ValueError("state must be a mapping (e.g. a dict), got "
                         f"{type(state).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target: os.replace is only atomic within one file system.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            # The bytes are on disk before the rename makes them "the" checkpoint.
            os.fsync(f.fileno())
        _readable_back(tmp, state)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _readable_back(tmp: str, state: Mapping[str, Any]) -> None:
    """Read the written file as :func:`load_checkpoint` will (``weights_only=True``),
    before it takes the final name: a state holding other objects (a NumPy array, a
    model, a function) was written, then refused on
    loading as "not written by lvm"."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.load(tmp, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        plain = (torch.Tensor, int, float, bool, str, type(None), list, dict)
        kinds = sorted({f"{key!r}: {type(value).__name__}"
                        for key, value in state.items()
                        if not isinstance(value, plain)})
        where = f" ({', '.join(kinds)})" if kinds else " inside its lists or dicts"
        raise ValueError("state must hold only tensors, numbers, strings, lists and "
                         "dicts of them (what load_checkpoint can read safely); it "
                         f"holds other objects{where}: convert them, e.g. "
                         "torch.as_tensor(array) or model.state_dict()") from None


def load_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``:
    tensors and containers only).

    Tensors are loaded onto ``map_location`` (the CPU by default; ``fit`` moves them
    where they belong). A missing file raises ``FileNotFoundError``; a truncated or
    foreign file, or one that does not hold a dict, raises ``ValueError`` saying so.
    """
    return read_checkpoint(checked_path(path, "path"), "path", map_location)


def read_checkpoint(path: Path, name: str,
                    map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """:func:`load_checkpoint` for a checked ``path``; errors name the caller's argument
    ``name`` (``fit`` reads its ``checkpoint`` with it)."""
    if not path.exists():
        raise FileNotFoundError(f"{name}: there is no checkpoint file at {str(path)!r}")
    shown = str(path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it did not write; the error
            # below says more.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False, which would let the file run
        # code: never repeat it.
        if "global" not in str(exc).lower():  # not a refused class: no pickle at all
            raise _damaged(name, shown, "not a pickle") from None
        raise ValueError(
            f"{name} {shown!r} holds Python objects other than tensors, numbers, "
            "strings, lists and dicts, so it was not written by lvm.save_checkpoint or "
            "lvm.fit, and lvm will not load it (unpickling arbitrary objects can run "
            "code). Use a checkpoint written by lvm, or pass a new path.") from None
    except OSError:
        raise  # permissions and the like: the operating system's message is right
    except Exception as exc:
        reason = str(exc).split(". ")[0] or type(exc).__name__
        raise _damaged(name, shown, reason) from None
    if not isinstance(state, dict):
        raise ValueError(f"{name} {shown!r} holds a {type(state).__name__}, not the "
                         "dict that lvm.save_checkpoint writes; pass the path of a "
                         "checkpoint written by lvm.")
    return state


def _damaged(name: str, shown: str, reason: str) -> ValueError:
    if "weights_only" in reason:  # torch's advice to turn it off is never passed on
        reason = "unreadable"
    return ValueError(f"{name} {shown!r} is not a readable checkpoint: it is truncated "
                      f"or damaged, or not a file written by torch.save ({reason}). "
                      "Delete it (or pass a new path) and train again.")


def checked_path(path: object, name: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` to a file (existing or not), or a
    ``ValueError`` naming ``name``."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file path (str or os.PathLike), got "
                         f"{type(path).__name__}")
    if os.fspath(path) == "":
        raise ValueError(f"{name} must be a file path such as 'runs/vae.pt', got an "
                         "empty string")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a directory; give a file inside it, "
                         f"e.g. {str(path / 'checkpoint.pt')!r}")
    return path


def check_writable(path: Path, name: str) -> None:
    """Make ``path``'s directory and check that a file can be created there, or a
    ``ValueError`` naming ``name``.

    ``fit`` calls this before training, so a read-only location is found before an
    epoch's work, not after.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write a checkpoint in {str(path.parent)!r} "
                         f"({exc.strerror or exc}); choose a directory you can write "
                         "to, or checkpoint=None") from None
