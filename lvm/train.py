"""Training (chapter 6): ``fit`` maximises an objective with Adam, by default the ELBO.

The loss of a batch is minus the mean of the objective's per-example values: by default the VAE loss of
eq. ``vae-loss``, −(1/B) Σ_i ELBO(x_i), each ELBO computed by :func:`lvm.bounds.elbo` with q =
``model.encode(x)`` (eq. ``elbo-recon-kl``). Other objectives (a β-weighted ELBO with free bits and KL warm-up,
the IWAE bound) are functions of :mod:`lvm.objectives`, passed as ``objective=``; ``fit`` is only the loop.

Why the loop looks the way it does (it is written for speed, and that speed is benchmarked):

- The whole training set is moved to the device **once**; a batch is an index into it, taken from a
  permutation drawn *on the device* by a seeded ``torch.Generator``. No DataLoader, no per-batch copies from
  the host, no per-sample Python.
- The loss is accumulated in a device tensor; the host waits for the device (a "sync") **once per epoch**,
  to read that sum. A ``.item()`` per batch would stall a GPU on every step.
- ``transform`` (e.g. :func:`lvm.data.dynamic_binarize`) runs on the whole device-side training tensor
  once per epoch, not per batch.
- Fused Adam (one kernel for all parameters); optional ``torch.compile`` of the loss and bf16 autocast
  (CUDA only).

Safety: a NaN or infinite loss restores the weights of the last good epoch and raises
:class:`NonFiniteLossError`; checkpoints are atomic and ``fit`` resumes from one bit-for-bit (on the CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import math
import os
import time
import warnings
from numbers import Real
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from . import objectives
from ._checks import as_scalar, check_data, check_int, check_positive_int, values_checked
from .checkpoint import _check_writable, _checked_path, _read, save_checkpoint
from .device import resolve_device
from .models.base import LatentVariableModel
from .objectives import Batch, Objective
from .progress import progress_bar, progress_mode

__all__ = ["History", "NonFiniteLossError", "fit"]

# torch.compile's documented modes: any other string failed only inside torch, at the first batch.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
NOT_BINARY = "but the likelihood is Bernoulli: the loss is then a cross-entropy, not a log-likelihood"
VAL_BATCH = 4096  # validation runs without gradients, so it can use much larger batches than training
_CHECKPOINT_FORMAT = 3  # 2 added the training data's fingerprint, 3 the schedule; formats 1 and 2 are still read
_FORMATS = (1, 2, _CHECKPOINT_FORMAT)


@dataclasses.dataclass
class History:
    """What ``fit`` measured, one entry per epoch.

    Attributes:
        epoch: epoch numbers, counted from 1 (a resumed run continues the count).
        train_elbo: the training objective's mean value per example, in nats, averaged over the epoch's
            batches (the weights change during the epoch, so this lags the end-of-epoch model a little). With
            the default objective that is the ELBO; with another one it is *that* objective's value (e.g. the
            β-weighted ELBO, or the IWAE bound), not the ELBO.
        val_elbo: the plain ELBO (:func:`lvm.elbo <lvm.bounds.elbo>`) per validation example, in nats, at the end of each epoch
            (eval mode, no gradients), whatever the objective; empty when ``fit`` got no ``x_val``.
        seconds: wall-clock time of each epoch (training, transform and validation; not checkpoint writing).
        lr: the learning rate of each epoch (it changes only with a ``scheduler``).
        device: where training ran, e.g. ``"cuda:0"`` or ``"cpu"``.
    """

    epoch: list[int] = dataclasses.field(default_factory=list)
    train_elbo: list[float] = dataclasses.field(default_factory=list)
    val_elbo: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    lr: list[float] = dataclasses.field(default_factory=list)
    device: str = ""

    def append(self, epoch: int, train: float, val: float | None, seconds: float, lr: float) -> None:
        """Record one epoch (``val`` is ``None`` without validation data)."""
        self.epoch.append(epoch)
        self.train_elbo.append(train)
        if val is not None:
            self.val_elbo.append(val)
        self.seconds.append(seconds)
        self.lr.append(float(lr))

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and a string: JSON-serialisable, and storable in a ``weights_only`` checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        # Histories written before lr was recorded have none: NaN marks "not recorded".
        lr = d.get("lr", [math.nan] * len(d["epoch"]))
        return cls(epoch=[int(e) for e in d["epoch"]], train_elbo=[float(v) for v in d["train_elbo"]],
                   val_elbo=[float(v) for v in d["val_elbo"]], seconds=[float(v) for v in d["seconds"]],
                   lr=[float(v) for v in lr], device=str(d["device"]))


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite. The model holds the weights of the last good epoch.

    Attributes:
        history: the :class:`History` of the epochs that finished with a finite loss.
        epoch: the epoch in which the loss stopped being finite.
    """

    def __init__(self, message: str, history: History, epoch: int):
        super().__init__(message)
        self.history = history
        self.epoch = epoch


def fit(model: LatentVariableModel, data: Batch, *, epochs: int, objective: Objective | None = None,
        batch_size: int = 128, lr: float = 1e-3,
        scheduler: Callable[[torch.optim.Optimizer], LRScheduler] | None = None, x_val: Batch | None = None,
        device: str | torch.device | None = None, seed: int | None = None, progress: bool = True,
        checkpoint: str | os.PathLike | None = None, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        compile: bool | str = False, amp: bool = False, n_samples: int = 1) -> History:
    """Train ``model`` by maximising ``objective`` with Adam (by default the ELBO, eq. ``vae-loss``); returns
    the :class:`History`. The model is moved to ``device`` and trained in place.

    Args:
        model: a latent variable model with an encoder, ``model.encode(x)`` → q(z | x), such as
            :class:`lvm.VAE`; it must have ``x_dim``. With data ``(x, y)``: a model with ``given(y)``, such as
            :class:`lvm.ConditionalVAE`.
        data: the training data: x ``[n, x_dim]`` (finite), or a tuple ``(x, y)`` with one label per row of x
            (y ``[n]``), batched together.
        epochs: the total number of epochs. With a ``checkpoint`` that already holds ``e`` epochs, training
            continues from epoch ``e + 1`` up to ``epochs``.
        objective: what to maximise, a function ``(model, batch, epoch) -> [B]`` of per-example values (see
            :mod:`lvm.objectives`: ``elbo(beta, free_bits, warmup_epochs)``, ``iwae(k)``). ``batch`` is x
            ``[B, x_dim]``, or ``(x, y)`` for data ``(x, y)``; ``epoch`` counts from 1. ``None``: the ELBO of
            :func:`lvm.elbo <lvm.bounds.elbo>` with q = ``model.encode(x)`` (``model.given(y)`` for data ``(x, y)``).
        batch_size: examples per gradient step (the last batch of an epoch may be smaller).
        lr: Adam's learning rate (with a ``scheduler``, the schedule's starting value).
        scheduler (Callable[[~torch.optim.Optimizer], ~torch.optim.lr_scheduler.LRScheduler] | None): ``None``,
            or a function that takes the optimizer and returns a
            ``torch.optim.lr_scheduler.LRScheduler`` of it, e.g.
            ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.3)``. Stepped once at the
            end of every epoch (``scheduler.step()``, so not ``ReduceLROnPlateau``), and saved in checkpoints.
        x_val: optional validation data, ``[m, x_dim]`` or ``(x, y)``: its **plain ELBO**
            (:func:`lvm.elbo <lvm.bounds.elbo>`, ``n_samples`` draws) is recorded after every epoch, whatever the
            objective, so that runs with different objectives can be compared.
        device: ``None`` picks CUDA, then MPS, then the CPU; or ``"cpu"``, ``"cuda"``, a ``torch.device``...
        seed: seeds torch's global random state (the rsample noise of the objective, and ``transform``) and the
            generator that shuffles the batches. Same seed, same device → the same run (bit-for-bit on the CPU).
            Note that this re-seeds the global state, as ``torch.manual_seed`` would.
        progress: show a ``tqdm`` bar over the epochs with the train and validation ELBO, of the kind
            ``LVM_PROGRESS`` asks for (:mod:`lvm.progress`).
        checkpoint: a file path. After every epoch the model, the optimizer, the schedule, the random states,
            the history and a fingerprint of the training data are written there atomically; if the file exists
            when ``fit`` starts, training resumes from it and says so, with the epoch. Without a ``scheduler``
            it resumes with the ``lr`` given to this call (so a run can be resumed with a smaller one); with
            one, the schedule and its learning rate continue from the checkpoint. A checkpoint refuses training
            data other than those it was trained on. Its directory must be writable; that is checked before
            training.
        transform: applied once per epoch to the whole (device-side) training x, e.g.
            :func:`lvm.data.dynamic_binarize` for a fresh binarisation every epoch. Must keep the shape.
        compile: ``torch.compile`` the loss (``True``, or a ``torch.compile`` mode string such as
            ``"max-autotune"``). Pays a compilation cost in the first epoch (and again in each epoch of a KL
            warm-up, whose weight changes with the epoch).
        amp: bf16 autocast for the networks (CUDA only; densities stay in float32). Ignored with a warning
            elsewhere.
        n_samples: draws of z per example in the ELBO's Monte Carlo reconstruction term, for the default
            objective and for validation.

    Returns:
        The :class:`History` (including the epochs of a checkpoint it resumed from).

    Raises:
        ValueError: a bad argument (the message names it).
        NonFiniteLossError: the loss became NaN/inf; the model then holds the last good epoch's weights.
    """
    x_dim = _check_model(model)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_samples = check_positive_int(n_samples, "n_samples")
    lr = _check_lr(lr)
    seed = None if seed is None else check_int(seed, "seed")
    for name, value in (("objective", objective), ("scheduler", scheduler), ("transform", transform)):
        if value is not None and not callable(value):
            raise ValueError(f"{name} must be a function or None, got {type(value).__name__}")
    if objective is not None:
        _check_objective(objective)
    if checkpoint is not None:
        checkpoint = _checked_path(checkpoint, "checkpoint")
        _check_writable(checkpoint, "checkpoint")  # now, not after the first epoch's work
    if not isinstance(compile, (bool, str)) or (isinstance(compile, str) and compile not in COMPILE_MODES):
        raise ValueError(f"compile must be True, False or a torch.compile mode, one of {list(COMPILE_MODES)}, "
                         f"got {compile!r}")
    if progress:
        progress_mode()  # LVM_PROGRESS checked now, not after a checkpoint has been loaded into the model
    device = _device(device)
    use_amp = bool(amp) and device.type == "cuda"
    if amp and not use_amp:
        warnings.warn(f"amp=True only applies on CUDA; training on {device} in full precision", stacklevel=2)

    model.to(device)
    train = _dataset(model, data, "data", x_dim, device)
    val = None if x_val is None else _dataset(model, x_val, "x_val", x_dim, device)
    conditional = hasattr(model, "given")
    for name, d in (("data", train), ("x_val", val)):
        if d is None:
            continue
        # x_val now, not when validation first runs after a whole epoch (data fail at the first batch, before any
        # step, with the model's own message).
        if name == "x_val" and conditional and len(d) == 1:
            raise ValueError(f"{name} must be a pair (x, y) with the class labels: a {type(model).__name__} "
                             "needs them")
        if name == "x_val" and not conditional and len(d) == 2:
            raise ValueError(f"{name} is a pair (x, y), but a {type(model).__name__} takes no labels: pass x alone")
        if conditional and len(d) == 2:
            model.given(d[1])  # checks the labels once, here, where reading them costs nothing
    if transform is None and _bernoulli(model) and not _is_binary(train[0]):
        warnings.warn(f"the training data are not binary {NOT_BINARY}. Binarise them, e.g. "
                      "transform=lvm.data.dynamic_binarize.", stacklevel=2)

    if seed is not None:
        torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    # The batch order comes from its own generator, on the data's device, so the permutation never leaves it.
    generator = torch.Generator(device=device)
    generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,))))
    optimizer = _adam(model, lr)
    schedule = _schedule(scheduler, optimizer)

    history = History(device=str(device))
    start = 0
    fingerprint = None if checkpoint is None else _fingerprint(train)
    if checkpoint is not None and checkpoint.exists():
        start, history = _resume(checkpoint, model, optimizer, schedule, generator, device, lr, fingerprint)
        _announce_resume(checkpoint, start, epochs)

    if objective is None:
        loss_fn = _loss_function(model, objectives._default(n_samples), uses_epoch=False)
    else:
        loss_fn = _loss_function(model, objective)
    if compile:
        loss_fn = torch.compile(loss_fn, dynamic=False, **({} if compile is True else {"mode": compile}))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
    validate = objectives._default(n_samples)  # the plain ELBO, whatever the objective

    # The last good weights stay on the device: a copy per epoch is cheap next to the epoch itself.
    good_state = _copy_state(model)
    was_training = model.training
    try:
        # values_checked: the data were checked above, so encode and elbo need not wait on the device per batch.
        with values_checked(), progress_bar(total=epochs, initial=start, desc="fit", unit="epoch",
                                            enabled=progress) as bar:
            for epoch in range(start + 1, epochs + 1):
                _check_scheduled_lr(optimizer, epoch)
                t0 = time.perf_counter()
                model.train()
                # A transform's output is what trains: the first epoch's must be binary too (one check).
                check_binary = transform is not None and epoch == start + 1 and _bernoulli(model)
                total = _train_epoch(loss_fn, optimizer, train, epoch, batch_size, generator, transform, autocast,
                                     check_binary)
                # A step on a finite loss can still leave non-finite weights (an inf gradient), so check both.
                weights_ok = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
                val_total = _sum(model, validate, val, autocast) if val is not None else total.new_zeros(())
                # The one synchronisation of the epoch.
                train_sum, ok, val_sum = torch.stack([total, weights_ok.to(total.dtype), val_total.to(total.dtype)]
                                                     ).tolist()
                seconds = time.perf_counter() - t0
                if not (math.isfinite(train_sum) and ok == 1.0):
                    model.load_state_dict(good_state)
                    at_start = _loss_at(loss_fn, model, train, batch_size, epoch, autocast)
                    raise _non_finite(train_sum, epoch, optimizer.param_groups[0]["lr"], history, at_start)
                good_state = _copy_state(model)
                history.append(epoch, train_sum / len(train[0]), None if val is None else val_sum / len(val[0]),
                               seconds, optimizer.param_groups[0]["lr"])
                if schedule is not None:
                    schedule.step()
                if checkpoint is not None:
                    save_checkpoint(checkpoint, _state(epoch, model, optimizer, schedule, generator, device,
                                                       history, fingerprint))
                bar.update(1)
                bar.set_postfix(_postfix(history), refresh=False)  # shown by the next update or close
    finally:
        model.train(was_training)
    return history


def _loss_at(loss_fn, model, data: tuple[torch.Tensor, ...], batch_size: int, epoch: int, autocast) -> float:
    """The loss on the first batch at the model's current weights, without a step (only after a failure)."""
    rows = slice(0, batch_size)
    batch = data[0][rows] if len(data) == 1 else (data[0][rows], data[1][rows])
    with torch.no_grad(), autocast():
        loss, _ = loss_fn(batch, epoch)
    return float(loss)


def _non_finite(train_sum: float, epoch: int, lr: float, history: History, at_start: float = 0.0
                ) -> NonFiniteLossError:
    last = f"the end of epoch {epoch - 1}" if epoch > 1 else "initialisation"
    if not math.isfinite(at_start):
        # Not the learning rate's doing: no step was taken.
        return NonFiniteLossError(
            f"the training loss became {train_sum:g} in epoch {epoch}, and the objective is already {at_start:g} "
            f"at the weights from {last}, before any step: the objective (or the data it is given) produces it, "
            "not the learning rate. The model holds those weights.", history, epoch)
    return NonFiniteLossError(
        f"the training loss became {train_sum:g} (or the weights non-finite) in epoch {epoch}; the model holds "
        f"the weights from {last}. Try a smaller learning rate than lr={lr:g} (e.g. 10 times smaller), and check "
        "the data for extreme values.", history, epoch)


# --- one epoch, and the loss ----------------------------------------------------------------------------------


def _train_epoch(loss_fn, optimizer, data: tuple[torch.Tensor, ...], epoch: int, batch_size: int,
                 generator: torch.Generator, transform, autocast, check_binary: bool = False) -> torch.Tensor:
    """One pass over the data in a fresh random order; returns the sum of the objective's values (a device
    tensor: no sync)."""
    x = data[0] if transform is None else _transformed(transform, data[0])
    if check_binary and not _is_binary(x):
        warnings.warn(f"transform returns values that are not binary {NOT_BINARY}. Binarise them, e.g. "
                      "transform=lvm.data.dynamic_binarize.", stacklevel=3)
    n = x.shape[0]
    order = torch.randperm(n, device=x.device, generator=generator)
    total = torch.zeros((), device=x.device, dtype=_sum_dtype(x.device))
    for i in range(0, n, batch_size):
        rows = order[i:i + batch_size]
        batch = x[rows] if len(data) == 1 else (x[rows], data[1][rows])
        with autocast():
            loss, value_sum = loss_fn(batch, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += value_sum
    return total


def _check_objective(objective) -> None:
    """The usual wrong callables, named before training: a recipe not called, a bound in place of an objective,
    a function that does not take (model, batch, epoch)."""
    from . import bounds

    if objective in (objectives.elbo, objectives.iwae):
        raise ValueError(f"objective: lvm.objectives.{objective.__name__} makes an objective; call it, e.g. "
                         f"objective=lvm.objectives.{objective.__name__}(" + ("beta=4)" if objective is objectives.elbo
                                                                               else "k=8)"))
    if objective in (bounds.elbo, bounds.iwae_bound):
        raise ValueError(f"objective: lvm.{objective.__name__} computes a bound for given q; fit needs a function "
                         "(model, batch, epoch) -> one value per example, such as lvm.objectives.elbo() or "
                         "lvm.objectives.iwae(k)")
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # a builtin or C function: nothing to read
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        raise ValueError(f"objective must take (model, batch, epoch) and return one value per example; "
                         f"{getattr(objective, '__name__', type(objective).__name__)}{signature} cannot") from None


def _loss_function(model, objective: Objective,
                   uses_epoch: bool = True) -> Callable[[Batch, int], tuple[torch.Tensor, torch.Tensor]]:
    # An objective that ignores the epoch is not handed it: torch.compile would guard on its value and compile
    # the loss again when it changes.
    def loss_fn(batch: Batch, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """−(mean of the objective over the batch), to minimise, and the objective's sum (detached), to report."""
        values = objective(model, batch, epoch if uses_epoch else 1)  # [B]
        size = (batch[0] if isinstance(batch, tuple) else batch).shape[0]
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (size,):
            got = list(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"objective must return one value per example of the batch, shape [{size}], got {got}")
        if not values.is_floating_point():
            raise ValueError(f"objective must return floating-point values, got {values.dtype}")
        if torch.is_grad_enabled() and not values.requires_grad:
            # backward() would fail with torch's "does not require grad", or, had it run, trained nothing
            raise ValueError("objective must return values computed from the model's parameters, with their "
                             "gradient: these have none (detached, or computed without the model)")
        return -values.mean(), values.detach().sum()
    return loss_fn


@torch.no_grad()
def _sum(model, objective: Objective, data: tuple[torch.Tensor, ...], autocast) -> torch.Tensor:
    """Σ_i objective(x_i) over a data set in eval mode, in large batches; a device tensor (no sync)."""
    model.eval()
    x = data[0]
    total = torch.zeros((), device=x.device, dtype=_sum_dtype(x.device))
    for i in range(0, x.shape[0], VAL_BATCH):
        batch = x[i:i + VAL_BATCH] if len(data) == 1 else (x[i:i + VAL_BATCH], data[1][i:i + VAL_BATCH])
        with autocast():
            total += objective(model, batch, 0).sum()  # the plain ELBO: no epoch-dependent weight
    model.train()
    return total


def _transformed(transform, x: torch.Tensor) -> torch.Tensor:
    # Handed a copy: on the CPU the training tensor is the caller's own, and an in-place transform
    # (x.bernoulli_()) overwrote it, turning dynamic binarisation static after one epoch.
    out = transform(x.clone())
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"transform must return a tensor of the training data's shape {list(x.shape)}, got {got}")
    return out.to(x.dtype)


# --- checkpoints ----------------------------------------------------------------------------------------------


def _state(epoch, model, optimizer, schedule, generator, device, history, fingerprint) -> dict[str, Any]:
    """Everything a resumed run needs to continue exactly where this one stopped."""
    return {
        "data": fingerprint,
        "format": _CHECKPOINT_FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if schedule is None else schedule.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "batch_generator": generator.get_state(),
        "device_type": device.type,
        "history": history.as_dict(),
    }


def _resume(path: Path, model, optimizer, schedule, generator, device, lr: float,
            fingerprint: dict[str, Any]) -> tuple[int, History]:
    state = _read(path, "checkpoint")
    if state.get("format") in _FORMATS:
        _check_same_data(state.get("data"), fingerprint, path)  # before any weights are loaded into model
    try:
        if state.get("format") not in _FORMATS:
            raise ValueError(f"unknown format {state.get('format')!r}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = History.from_dict(state["history"])
        epoch = int(state["epoch"])
        # Read here, inside the check: a file without them is not lvm's, and says so (a bare KeyError did).
        written_on, rng_cpu, batch_state = state["device_type"], state["rng_cpu"], state["batch_generator"]
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise ValueError(f"checkpoint {str(path)!r} does not belong to this model or was not written by "
                         f"lvm.fit: {exc}. Pass a new checkpoint path (or delete this file) to train afresh."
                         ) from exc
    fused = optimizer.defaults["fused"]  # the loaded groups carry the writer's choice; keep this machine's
    for group in optimizer.param_groups:
        group["fused"] = fused
        if schedule is None:
            group["lr"] = lr  # this call's lr: resuming with a smaller one is how to recover from a divergence
    if schedule is not None:
        if state.get("scheduler") is None:
            raise ValueError(f"checkpoint {str(path)!r} was written by a run without a scheduler, so its schedule "
                             "cannot be continued: resume it with scheduler=None, or pass a new checkpoint path")
        schedule.load_state_dict(state["scheduler"])
    if written_on == device.type:
        torch.set_rng_state(rng_cpu)
        generator.set_state(batch_state)
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
    else:
        warnings.warn(f"checkpoint {str(path)!r} was written on {written_on}, resuming on {device.type}: "
                      "random states cannot be carried over, so the run continues but not bit-for-bit",
                      stacklevel=3)
    history.device = str(device)
    return epoch, history


def _fingerprint(data: tuple[torch.Tensor, ...]) -> dict[str, Any] | list[dict[str, Any]]:
    """Shape, dtype and SHA-256 of the training tensor (a list of them for data (x, y)): what a checkpoint was
    trained on. Computed once per ``fit`` call, and only with a checkpoint (one copy to the host for a GPU
    tensor)."""
    prints = [_tensor_fingerprint(t) for t in data]
    return prints[0] if len(prints) == 1 else prints


def _tensor_fingerprint(t: torch.Tensor) -> dict[str, Any]:
    t = t.detach().contiguous().cpu()
    digest = hashlib.sha256(t.view(torch.uint8).numpy()).hexdigest()
    return {"shape": list(t.shape), "dtype": str(t.dtype), "sha256": digest}


def _check_same_data(saved, now, path: Path) -> None:
    """Refuse to resume a run on data other than the checkpoint's (a silent mix of two runs otherwise)."""
    if saved is None:
        warnings.warn(f"checkpoint {str(path)!r} was written before lvm stored a fingerprint of the training "
                      "data, so fit cannot check that they are the data it was trained on", stacklevel=4)
        return
    if saved == now:
        return

    def shapes(fingerprint):
        return fingerprint["shape"] if isinstance(fingerprint, dict) else [f["shape"] for f in fingerprint]

    if shapes(saved) != shapes(now):
        what = f"shape {shapes(saved)} there, {shapes(now)} here"
    else:
        what = "the same shape but different values"
    raise ValueError(f"data are not the training data that checkpoint {str(path)!r} was trained on ({what}). "
                     "Resuming would continue that run on other data: pass a new checkpoint path (or delete the "
                     "file) to train on these data.")


def _announce_resume(path: Path, start: int, epochs: int) -> None:
    """Say that ``fit`` resumed, so old weights are never returned silently."""
    if start >= epochs:
        print(f"fit: resumed from checkpoint {str(path)!r}, which already holds {start} epochs (epochs={epochs}): "
              "returning its weights without training. Pass a new checkpoint path to train afresh.")
    else:
        print(f"fit: resumed from checkpoint {str(path)!r} after epoch {start}; training epochs {start + 1} to "
              f"{epochs}.")


# --- small helpers --------------------------------------------------------------------------------------------


def _check_model(model) -> int:
    """The model's x_dim, after checking that ``fit`` can train it."""
    if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "encode", None)):
        raise ValueError("model must be a latent variable model with an encoder, model.encode(x) -> q(z|x), "
                         f"such as lvm.VAE; got {type(model).__name__}")
    x_dim = getattr(model, "x_dim", None)
    if not isinstance(x_dim, int):
        raise ValueError(f"model must have an integer x_dim (the data dimension); got {x_dim!r}")
    return x_dim


def _check_lr(lr) -> float:
    lr = as_scalar(lr)
    if isinstance(lr, bool) or not isinstance(lr, Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    return float(lr)


def _check_scheduled_lr(optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """The learning rate a schedule set for this epoch: a negative or non-finite one climbs the loss (trains
    backwards) and is refused; zero trains nothing, which is said."""
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"scheduler set the learning rate to {lr:g} for epoch {epoch}: it must stay positive "
                             "(a negative one climbs the loss). The weights are those of the epoch before.")
        if lr == 0:
            warnings.warn(f"scheduler set the learning rate to 0 for epoch {epoch}: that epoch trains nothing",
                          stacklevel=3)


def _schedule(scheduler, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
    """The schedule that ``scheduler(optimizer)`` builds, checked: an ``LRScheduler`` of that optimizer."""
    if scheduler is None:
        return None
    schedule = scheduler(optimizer)
    if not isinstance(schedule, LRScheduler) or schedule.optimizer is not optimizer:
        raise ValueError("scheduler must be a function that takes the optimizer and returns a "
                         "torch.optim.lr_scheduler.LRScheduler of it, e.g. lambda opt: "
                         f"torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.3); got {schedule!r}")
    if isinstance(schedule, ReduceLROnPlateau):
        raise ValueError("scheduler: ReduceLROnPlateau needs a metric at every step, and fit steps the schedule "
                         "with scheduler.step() alone; use a schedule that follows the epoch count (StepLR, "
                         "MultiStepLR, CosineAnnealingLR, LambdaLR, ...)")
    return schedule


def _adam(model, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch and device support it.

    The fused implementation updates every parameter in one kernel: on a GPU many fewer launches per step,
    on a CPU about 3x less time in the optimizer (a quarter of a step of the MLP VAE). Same algorithm.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):  # older torch, or a device without the fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


def _sum_dtype(device: torch.device) -> torch.dtype:
    # Sums of a whole epoch's ELBOs (~10⁷ nats) in float64, except on Apple's MPS, which has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def _copy_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _postfix(history: History) -> dict[str, str]:
    shown = {"train_elbo": f"{history.train_elbo[-1]:.2f}"}
    if history.val_elbo:
        shown["val_elbo"] = f"{history.val_elbo[-1]:.2f}"
    return shown


def _device(device) -> torch.device:
    device = resolve_device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but CUDA is not available on this machine; use device=None or 'cpu'")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError("device='mps' but Apple's MPS is not available on this machine; use device=None or 'cpu'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be None, 'cpu', 'cuda' or 'mps', got {str(device)!r}")
    return device


def _parameter_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    raise ValueError("model must have floating-point parameters to train")


def _dataset(model, data, name: str, x_dim: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(x,)`` or ``(x, y)`` on the device: the one copy of the data that training makes."""
    if isinstance(data, list) and len(data) == 2 and all(isinstance(d, torch.Tensor) for d in data) \
            and data[0].dim() >= 2:
        data = tuple(data)  # [x, y]: a pair written as a list (x is [n, x_dim], so it is not two examples)
    if not isinstance(data, tuple):
        return (_data(model, data, name, x_dim, device),)
    if len(data) != 2:
        raise ValueError(f"{name} must be a tensor x or a pair (x, y), got a tuple of {len(data)} items")
    x = _data(model, data[0], f"{name}[0]", x_dim, device)
    try:
        y = data[1] if isinstance(data[1], torch.Tensor) else torch.as_tensor(np.asarray(data[1]))
    except (TypeError, ValueError, RuntimeError):  # strings, None, ragged lists: torch's own error named none
        raise ValueError(f"{name}[1] must be the labels, one integer per example of {name}[0], got "
                         f"{type(data[1]).__name__} {data[1]!r:.40}") from None
    if y.dim() < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}[1] must hold one label per example of {name}[0] ({x.shape[0]}), "
                         f"got shape {list(y.shape)}")
    return x, y.to(device)


def _data(model, x, name: str, x_dim: int, device: torch.device) -> torch.Tensor:
    """The data set ``[n, x_dim]``, its values checked once (finite; in [0, 1] for a Bernoulli likelihood), then
    copied to the device."""
    # read where it is (on the CPU, usually)
    x = check_data(x, name, dtype=_parameter_dtype(model), unit_interval=_bernoulli(model))
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(f"{name} must have shape [n, {x_dim}] (n examples of the model's x_dim), "
                         f"got {list(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one example, got shape {list(x.shape)}")
    return x.to(device)


def _bernoulli(model) -> bool:
    return getattr(model, "likelihood_name", None) == "bernoulli"


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())
