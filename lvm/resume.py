"""A run of :func:`lvm.fit`, saved after every epoch and resumed where it stopped.

:mod:`lvm.checkpoint` writes a file atomically and reads it safely; this module says
what ``fit`` puts in it, and what it checks before any of it is loaded into a model:

- that the file is one ``fit`` wrote (its format, and every part present);
- that the training data are those the run was trained on (a fingerprint: shape, dtype
  and SHA-256 of each tensor), since resuming on other data would silently mix two runs;
- that the objective is the one it was trained with (name and settings), unless the
  caller says that a new one is meant (``new_objective_ok``, e.g. a second phase).

The random states (torch's global one and the batch order's generator) travel with the
weights, so a resumed run continues bit-for-bit on the CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from .checkpoint import read_checkpoint, save_checkpoint
from .history import History
from .objectives import Objective, describe, record

__all__ = ["FORMAT", "Parts", "RunCheckpoint", "fingerprint"]

FORMAT = 4  # 2 added the data's fingerprint, 3 the schedule, 4 the objective
READABLE = (1, 2, 3, FORMAT)  # older checkpoints still resume


@dataclasses.dataclass
class Parts:
    """What a checkpoint saves and restores of a run, besides its history."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRScheduler | None
    generator: torch.Generator  # the batch order's
    device: torch.device


class RunCheckpoint:
    """The checkpoint file of one ``fit`` call, with what that call trains on and with.

    The data's fingerprint is computed once, here (one copy to the host for a GPU
    tensor), and stored in every save.
    """

    def __init__(self, path: Path, data: tuple[torch.Tensor, ...],
                 objective: Objective):
        self.path = path
        self.fingerprint = fingerprint(data)
        self.objective = record(objective)

    def save(self, epoch: int, parts: Parts, history: History) -> None:
        """Everything a resumed run needs to continue exactly where this one stopped."""
        device, schedule = parts.device, parts.schedule
        save_checkpoint(self.path, {
            "data": self.fingerprint,
            "format": FORMAT,
            "objective": self.objective,
            "epoch": epoch,
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": None if schedule is None else schedule.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": (torch.cuda.get_rng_state(device) if device.type == "cuda"
                         else None),
            "batch_generator": parts.generator.get_state(),
            "device_type": device.type,
            "history": history.as_dict(),
        })

    def resume(self, parts: Parts, lr: float, epochs: int,
               new_objective_ok: bool) -> tuple[int, History]:
        """Load the checkpoint into ``parts``, after checking that it belongs to this
        run; returns the epochs it holds and its history, and says so (old weights are
        never returned silently)."""
        state = read_checkpoint(self.path, "checkpoint")
        if state.get("format") in READABLE:  # before any weights are loaded
            self._check_same_data(state.get("data"))
            self._check_same_objective(state.get("objective"), new_objective_ok)
        epoch, history, written_on = self._load(state, parts)
        for group in parts.optimizer.param_groups:
            # The writer's choice of fused kernel is not this machine's.
            group["fused"] = parts.optimizer.defaults["fused"]
            if parts.schedule is None:
                group["lr"] = lr  # this call's: how to recover from a divergence
        if parts.schedule is not None:
            if state.get("scheduler") is None:
                raise ValueError(f"checkpoint {str(self.path)!r} was written by a run "
                                 "without a scheduler, so its schedule cannot be "
                                 "continued: resume it with scheduler=None, or pass a "
                                 "new checkpoint path")
            parts.schedule.load_state_dict(state["scheduler"])
        self._restore_random_states(state, parts, written_on)
        history.device = str(parts.device)
        self._announce(epoch, epochs, state.get("objective"))
        return epoch, history

    def _load(self, state: dict[str, Any], parts: Parts) -> tuple[int, History, str]:
        try:
            if state.get("format") not in READABLE:
                raise ValueError(f"unknown format {state.get('format')!r}")
            parts.model.load_state_dict(state["model"])
            parts.optimizer.load_state_dict(state["optimizer"])
            history = History.from_dict(state["history"])
            for part in ("device_type", "rng_cpu", "batch_generator"):
                if part not in state:  # not lvm's: said (a bare KeyError was not)
                    raise KeyError(part)
            return int(state["epoch"]), history, state["device_type"]
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ValueError(f"checkpoint {str(self.path)!r} does not belong to this "
                             f"model or was not written by lvm.fit: {exc}. Pass a new "
                             "checkpoint path (or delete this file) to train "
                             "afresh.") from exc

    def _restore_random_states(self, state: dict[str, Any], parts: Parts,
                               written_on: str) -> None:
        device = parts.device
        if written_on != device.type:
            warnings.warn(f"checkpoint {str(self.path)!r} was written on {written_on}, "
                          f"resuming on {device.type}: random states cannot be carried "
                          "over, so the run continues but not bit-for-bit",
                          stacklevel=4)
            return
        torch.set_rng_state(state["rng_cpu"])
        parts.generator.set_state(state["batch_generator"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)

    def _check_same_data(self, saved: Any) -> None:
        """Refuse to resume a run on data other than the checkpoint's."""
        if saved is None:
            warnings.warn(f"checkpoint {str(self.path)!r} was written before lvm "
                          "stored a fingerprint of the training data, so fit cannot "
                          "check that they are the data it was trained on",
                          stacklevel=4)
            return
        if saved == self.fingerprint:
            return

        def shapes(prints: dict[str, Any] | list[dict[str, Any]]) -> object:
            if isinstance(prints, dict):
                return prints["shape"]
            return [f["shape"] for f in prints]

        if shapes(saved) != shapes(self.fingerprint):
            what = f"shape {shapes(saved)} there, {shapes(self.fingerprint)} here"
        else:
            what = "the same shape but different values"
        raise ValueError("data are not the training data that checkpoint "
                         f"{str(self.path)!r} was trained on ({what}). Resuming would "
                         "continue that run on other data: pass a new checkpoint path "
                         "(or delete the file) to train on these data.")

    def _check_same_objective(self, saved: Any, new_objective_ok: bool) -> None:
        """Refuse to resume a run with an objective other than the checkpoint's, unless
        the caller says it is meant: the history would mix two quantities without a
        word."""
        if new_objective_ok or saved == self.objective:
            return
        now = describe(self.objective)
        if saved is None:  # from before lvm recorded objectives: unknown, not different
            warnings.warn(f"checkpoint {str(self.path)!r} was written before lvm "
                          f"recorded the objective, so fit cannot check that {now} is "
                          "the objective it was trained with (pass "
                          "new_objective_ok=True to say that it need not be)",
                          stacklevel=4)
            return
        raise ValueError(f"checkpoint {str(self.path)!r} was trained with the "
                         f"objective {describe(saved)}, and this call asks for {now}: "
                         "resuming would continue that run under another objective. If "
                         "that is meant (a second phase of training), pass "
                         "new_objective_ok=True; otherwise pass the objective it was "
                         "trained with, or a new checkpoint path to train afresh.")

    def _announce(self, start: int, epochs: int, saved: Any) -> None:
        where = f"fit: resumed from checkpoint {str(self.path)!r}"
        if start >= epochs:
            print(f"{where}, which already holds {start} epochs (epochs={epochs}): "
                  "returning its weights without training. Pass a new checkpoint path "
                  "to train afresh.")
            return
        change = "" if saved == self.objective else (
            f" with the objective {describe(self.objective)} (it was trained with "
            f"{describe(saved)})")
        print(f"{where} after epoch {start}; training epochs {start + 1} to {epochs}"
              f"{change}.")


def fingerprint(data: tuple[torch.Tensor, ...]
                ) -> dict[str, Any] | list[dict[str, Any]]:
    """Shape, dtype and SHA-256 of the training tensor (a list of them for data (x, y)):
    what a checkpoint was trained on."""
    prints = [_tensor_fingerprint(t) for t in data]
    return prints[0] if len(prints) == 1 else prints


def _tensor_fingerprint(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().contiguous().cpu()
    # An ndarray has the buffer protocol; numpy's stubs declare it (__buffer__) only for Python >= 3.12.
    digest = hashlib.sha256(t.view(torch.uint8).numpy()).hexdigest()  # type: ignore[arg-type]
    return {"shape": list(t.shape), "dtype": str(t.dtype), "sha256": digest}
