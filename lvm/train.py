"""Training (chapter 6): ``fit`` maximises an objective with Adam, by default the ELBO.

The loss of a batch is minus the mean of the objective's per-example values: by default
the VAE loss of eq. ``vae-loss``, −(1/B) Σ_i ELBO(x_i), each ELBO computed by
:func:`lvm.bounds.elbo` with q = ``model.encode(x)`` (eq. ``elbo-recon-kl``). Other
objectives (a β-weighted ELBO with free bits and KL warm-up, the IWAE bound) are named
objects of :mod:`lvm.objectives`, passed as ``objective=``; ``fit`` is only the loop. It
reads top to bottom: check the arguments (:mod:`lvm._fit_checks`), set up (resuming from
a checkpoint: :mod:`lvm.resume`), then per epoch train, validate (:mod:`lvm.epoch`),
record, save.

Why the loop looks the way it does (it is written for speed, and that speed is
benchmarked):

- The whole training set is moved to the device **once**; a batch is an index into it,
  taken from a permutation drawn *on the device* by a seeded ``torch.Generator``. No
  DataLoader, no per-batch copies from the host, no per-sample Python.
- The loss is accumulated in a device tensor; the host waits for the device (a "sync")
  **once per epoch**, to read that sum. A ``.item()`` per batch would stall a GPU on
  every step.
- ``transform`` (e.g. :func:`lvm.data.dynamic_binarize`) runs on the whole device-side
  training tensor once per epoch, not per batch.
- Fused Adam (one kernel for all parameters); optional ``torch.compile`` of the loss and
  bf16 autocast (CUDA only).

Safety: a NaN or infinite loss restores the weights of the last good epoch and raises
:class:`NonFiniteLossError`; checkpoints are atomic and ``fit`` resumes from one
bit-for-bit (on the CPU).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from . import objectives
from ._checks import values_checked
from ._fit_checks import FitArguments, check_fit_arguments, check_scheduled_lr, checked_schedule
from .epoch import LossFunction, loss_function, read_back, train_epoch, validate
from .history import History
from .models.base import LatentVariableModel
from .objectives import Batch, Objective, ObjectiveFunction
from .progress import progress_bar
from .resume import Parts, RunCheckpoint

__all__ = ["History", "NonFiniteLossError", "fit"]

class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite. The model holds the weights of the last
    good epoch.

    Attributes:
        history: the :class:`History` of the epochs that finished with a finite loss.
        epoch: the epoch in which the loss stopped being finite.
    """

    def __init__(self, message: str, history: History, epoch: int):
        super().__init__(message)
        self.history = history
        self.epoch = epoch


def fit(model: LatentVariableModel, data: Batch, *, epochs: int,
        objective: Objective | ObjectiveFunction | None = None, batch_size: int = 128,
        lr: float = 1e-3,
        scheduler: Callable[[torch.optim.Optimizer], LRScheduler] | None = None,
        x_val: Batch | None = None, device: str | torch.device | None = None,
        seed: int | None = None, progress: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        compile: bool | str = False, amp: bool = False, n_samples: int = 1,
        new_objective_ok: bool = False) -> History:
    """Train ``model`` by maximising ``objective`` with Adam (by default the ELBO, eq.
    ``vae-loss``); returns the :class:`History`. The model is moved to ``device`` and
    trained in place.

    Args:
        model: a latent variable model with an encoder, ``model.encode(x)`` → q(z | x),
            such as :class:`lvm.VAE`; it must have ``x_dim``. With data ``(x, y)``: a
            model with ``given(y)``, such as :class:`lvm.ConditionalVAE`.
        data: the training data: x ``[n, x_dim]`` (finite), or a tuple ``(x, y)`` with
            one label per row of x (y ``[n]``), batched together.
        epochs: the total number of epochs. With a ``checkpoint`` that already holds
            ``e`` epochs, training continues from epoch ``e + 1`` up to ``epochs``.
        objective: what to maximise: an objective of :mod:`lvm.objectives`
            (``elbo(beta, free_bits, warmup_epochs)``, ``iwae(k)``), or any function
            ``(model, batch, epoch) -> [B]`` of per-example values, which is then named
            after its ``__qualname__``. ``batch`` is x ``[B, x_dim]``, or ``(x, y)`` for
            data ``(x, y)``; ``epoch`` counts from 1. ``None``: the ELBO,
            ``lvm.objectives.elbo(n_samples=n_samples)``, which is
            :func:`lvm.elbo <lvm.bounds.elbo>` with q = ``model.encode(x)``
            (``model.given(y)`` for data ``(x, y)``). Its name and settings are recorded
            in the history and the checkpoint.
        batch_size: examples per gradient step (the last batch of an epoch may be
            smaller).
        lr: Adam's learning rate (with a ``scheduler``, the schedule's starting value).
        scheduler: ``None``, or a function that takes the optimizer and returns a
            ``torch.optim.lr_scheduler.LRScheduler`` of it, e.g.
            ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=30)``.
            Stepped once at the end of every epoch (``scheduler.step()``, so not
            ``ReduceLROnPlateau``), and saved in checkpoints.
        x_val: optional validation data, ``[m, x_dim]`` or ``(x, y)``: its **plain
            ELBO** (:func:`lvm.elbo <lvm.bounds.elbo>`, ``n_samples`` draws) is recorded
            after every epoch, whatever the objective, so that runs with different
            objectives can be compared.
        device: ``None`` picks CUDA, then MPS, then the CPU; or ``"cpu"``, ``"cuda"``, a
            ``torch.device``...
        seed: seeds torch's global random state (the rsample noise of the objective, and
            ``transform``) and the generator that shuffles the batches. Same seed, same
            device → the same run (bit-for-bit on the CPU). Note that this re-seeds the
            global state, as ``torch.manual_seed`` would.
        progress: show a ``tqdm`` bar over the epochs with the training objective and
            the validation ELBO, of the kind ``LVM_PROGRESS`` asks for
            (:mod:`lvm.progress`).
        checkpoint: a file path. After every epoch the model, the optimizer, the
            schedule, the random states, the history, the objective's name and settings
            and a fingerprint of the training data are written there atomically; if the
            file exists when ``fit`` starts, training resumes from it and says so, with
            the epoch. Without a ``scheduler`` it resumes with the ``lr`` given to this
            call (so a run can be resumed with a smaller one); with one, the schedule
            and its learning rate continue from the checkpoint. A checkpoint refuses
            training data other than those it was trained on, and an objective other
            than its own unless ``new_objective_ok``. Its directory must be writable;
            that is checked before training.
        transform: applied once per epoch to the whole (device-side) training x, e.g.
            :func:`lvm.data.dynamic_binarize` for a fresh binarisation every epoch. Must
            keep the shape.
        compile: ``torch.compile`` the loss (``True``, or a ``torch.compile`` mode
            string such as ``"max-autotune"``). Pays a compilation cost in the first
            epoch (and again in each epoch of a KL warm-up, whose weight changes with
            the epoch).
        amp: bf16 autocast for the networks (CUDA only; densities stay in float32).
            Ignored with a warning elsewhere.
        n_samples: draws of z per example in the ELBO's Monte Carlo reconstruction term,
            for the default objective and for validation.
        new_objective_ok: resume a ``checkpoint`` with an objective (or settings) other
            than the one it was trained with, e.g. a second phase of training under the
            IWAE bound. ``False`` refuses that with a ``ValueError`` that names both, so
            that a run does not change what it maximises by mistake. The history records
            the objective of each epoch.

    Returns:
        The :class:`History` (including the epochs of a checkpoint it resumed from).

    Raises:
        ValueError: a bad argument (the message names it), or a checkpoint of another
            run.
        NonFiniteLossError: the loss became NaN/inf; the model then holds the last good
            epoch's weights.
    """
    run = check_fit_arguments(
        model, data, epochs=epochs, objective=objective, batch_size=batch_size, lr=lr,
        scheduler=scheduler, x_val=x_val, device=device, seed=seed, progress=progress,
        checkpoint=checkpoint, transform=transform, compile=compile, amp=amp,
        n_samples=n_samples, new_objective_ok=new_objective_ok)

    # Set up: the model on the device, the random states, Adam, and a checkpoint's run.
    model.to(run.device)
    if run.seed is not None:
        torch.manual_seed(run.seed)  # seeds the CPU and every CUDA device
    optimizer = _adam(model, run.lr)
    parts = Parts(model, optimizer, checked_schedule(scheduler, optimizer),
                  _batch_order(run.device, run.seed), run.device)
    saved = None if run.checkpoint is None \
        else RunCheckpoint(run.checkpoint, run.train, run.objective)
    start, history = 0, History(device=str(run.device))
    if saved is not None and saved.path.exists():
        start, history = saved.resume(parts, run.lr, run.epochs, run.new_objective_ok)
    loss_fn = loss_function(model, run.objective, run.compile)
    validation = objectives.elbo(n_samples=run.n_samples)  # whatever the objective
    recorded = objectives.record(run.objective)

    good_state, was_training = _copy_state(model), model.training
    try:
        # values_checked: the data were checked, so no step waits for the device.
        with values_checked(), progress_bar(total=run.epochs, initial=start, desc="fit",
                                            unit="epoch", enabled=progress) as bar:
            for epoch in range(start + 1, run.epochs + 1):
                check_scheduled_lr(optimizer, epoch)
                t0 = time.perf_counter()
                total = train_epoch(model, loss_fn, optimizer, run, epoch,
                                     parts.generator, first=epoch == start + 1)
                val_total = validate(model, validation, run)
                train_sum, val_sum, finite = read_back(model, total, val_total)
                seconds = time.perf_counter() - t0
                if not finite:
                    model.load_state_dict(good_state)
                    raise _non_finite(loss_fn, run, epoch, train_sum, optimizer,
                                      history)
                good_state = _copy_state(model)
                history.append(epoch, train_sum / len(run.train[0]),
                               None if run.val is None else val_sum / len(run.val[0]),
                               seconds, optimizer.param_groups[0]["lr"], recorded)
                if parts.schedule is not None:
                    parts.schedule.step()
                if saved is not None:
                    saved.save(epoch, parts, history)
                bar.update(1)
                bar.set_postfix(_postfix(history), refresh=False)  # shown by the next
    finally:
        model.train(was_training)
    return history


def _non_finite(loss_fn: LossFunction, run: FitArguments, epoch: int, train_sum: float,
                optimizer: torch.optim.Optimizer, history: History
                ) -> NonFiniteLossError:
    """The error for a non-finite epoch, raised with the last good weights restored: the
    loss at those weights, before any step, says whether the learning rate is to
    blame."""
    rows = slice(0, run.batch_size)
    batch = run.train[0][rows] if len(run.train) == 1 \
        else (run.train[0][rows], run.train[1][rows])
    with torch.no_grad(), run.autocast():
        at_start = float(loss_fn(batch, epoch)[0])
    last = f"the end of epoch {epoch - 1}" if epoch > 1 else "initialisation"
    if not math.isfinite(at_start):  # not the learning rate's doing: no step was taken
        return NonFiniteLossError(
            f"the training loss became {train_sum:g} in epoch {epoch}, and the "
            f"objective is already {at_start:g} at the weights from {last}, before any "
            "step: the objective (or the data it is given) produces it, not the "
            "learning rate. The model holds those weights.", history, epoch)
    lr = optimizer.param_groups[0]["lr"]
    return NonFiniteLossError(
        f"the training loss became {train_sum:g} (or the weights non-finite) in epoch "
        f"{epoch}; the model holds the weights from {last}. Try a smaller learning "
        f"rate than lr={lr:g} (e.g. 10 times smaller), and check the data for extreme "
        "values.",
        history, epoch)


# --- small helpers -----------------------------------------------------------------


def _adam(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch and device support it.

    The fused implementation updates every parameter in one kernel: on a GPU many fewer
    launches per step, on a CPU about 3x less time in the optimizer (a quarter of a step
    of the MLP VAE). Same algorithm.
    """
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):  # older torch, or a device without the kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


def _batch_order(device: torch.device, seed: int | None) -> torch.Generator:
    """The generator of the batch order, on the data's device, so that the permutation
    never leaves it."""
    generator = torch.Generator(device=device)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    generator.manual_seed(seed)
    return generator


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # The last good weights stay on the device: a copy is cheap next to an epoch.
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _postfix(history: History) -> dict[str, Any]:
    """The bar's numbers: the objective under its name (``train_elbo``,
    ``train_iwae``)."""
    name = (history.objective[-1] or {}).get("name", "objective")
    shown = {f"train_{name if name.isidentifier() else 'objective'}":
             f"{history.train_objective[-1]:.2f}"}
    if history.val_elbo:
        shown["val_elbo"] = f"{history.val_elbo[-1]:.2f}"
    return shown
