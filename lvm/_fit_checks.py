"""The argument checks of :func:`lvm.fit`, in one place, made before any work.

A mistake is named (with the argument's name) before an epoch is spent, a checkpoint is
loaded into the model, or the data are copied to a GPU. :func:`check_fit_arguments`
returns the checked values; ``fit`` then only trains.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from . import objectives
from ._checks import as_scalar, check_data, check_int, check_positive_int
from .checkpoint import check_writable, checked_path
from .device import autocast, training_device
from .models.base import LatentVariableModel
from .objectives import Objective
from .progress import progress_mode

__all__ = ["COMPILE_MODES", "NOT_BINARY", "FitArguments", "check_fit_arguments",
           "check_scheduled_lr", "checked_schedule", "is_binary"]

# torch.compile's documented modes: any other string failed only inside torch, at
# the first batch.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune",
                                               "max-autotune-no-cudagraphs")
NOT_BINARY = ("but the likelihood is Bernoulli: the loss is then a cross-entropy, not "
              "a log-likelihood")

# What fit's scheduler argument is: the optimizer -> its learning-rate schedule.
Schedule = Callable[[torch.optim.Optimizer], LRScheduler]


@dataclasses.dataclass(frozen=True)
class FitArguments:
    """``fit``'s arguments, checked: counts as ints, the objective named (``None``: the
    ELBO), the data as tuples ``(x,)`` or ``(x, y)`` on the device."""

    epochs: int
    batch_size: int
    lr: float
    seed: int | None
    objective: Objective
    n_samples: int
    transform: Callable[[torch.Tensor], torch.Tensor] | None
    checkpoint: Path | None
    new_objective_ok: bool
    compile: bool | str
    device: torch.device
    autocast: Callable[[], AbstractContextManager[Any]]
    train: tuple[torch.Tensor, ...]
    val: tuple[torch.Tensor, ...] | None
    bernoulli: bool  # the likelihood: data in [0, 1], ideally binary


def check_fit_arguments(model: object, data: object, *, epochs: object,
                        objective: Objective | objectives.ObjectiveFunction | None,
                        batch_size: object, lr: object, scheduler: Schedule | None,
                        x_val: object, device: str | torch.device | None, seed: object,
                        progress: object, checkpoint: object,
                        transform: Callable[[torch.Tensor], torch.Tensor] | None,
                        compile: object, amp: object, n_samples: object,
                        new_objective_ok: object) -> FitArguments:
    """Every argument of ``fit`` checked (``ValueError`` naming it), in the order a
    reader gives them; the data checked where they are, then copied to the device
    once. The types are ``fit``'s; the checks hold for callers that ignore them."""
    model, x_dim = _check_model(model)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_samples = check_positive_int(n_samples, "n_samples")
    lr = _check_lr(lr)
    seed = None if seed is None else check_int(seed, "seed")
    for name, value in (("scheduler", scheduler), ("transform", transform)):
        if value is not None and not callable(value):
            raise ValueError(f"{name} must be a function or None, got "
                             f"{type(value).__name__}")
    # The default objective is no special case: the ELBO, named like any other.
    objective = objectives.elbo(n_samples=n_samples) if objective is None \
        else objectives.as_objective(objective)
    if not isinstance(new_objective_ok, bool):
        raise ValueError("new_objective_ok must be True or False, got "
                         f"{new_objective_ok!r}")
    if checkpoint is not None:
        checkpoint = checked_path(checkpoint, "checkpoint")
        check_writable(checkpoint, "checkpoint")  # now, not after an epoch's work
    if not isinstance(compile, (bool, str)) or (isinstance(compile, str)
                                                and compile not in COMPILE_MODES):
        raise ValueError("compile must be True, False or a torch.compile mode, one of "
                         f"{list(COMPILE_MODES)}, got {compile!r}")
    if progress:
        progress_mode()  # LVM_PROGRESS now, not after a checkpoint was loaded
    device = training_device(device)
    if amp and device.type != "cuda":
        warnings.warn(f"amp=True only applies on CUDA; training on {device} in full "
                      "precision", stacklevel=3)
    bernoulli = model.likelihood_name == "bernoulli"
    train, val = _datasets(model, data, x_val, x_dim, device)
    if transform is None and bernoulli and not is_binary(train[0]):
        warnings.warn(f"the training data are not binary {NOT_BINARY}. Binarise them, "
                      "e.g. transform=lvm.data.dynamic_binarize.", stacklevel=3)
    return FitArguments(epochs, batch_size, lr, seed, objective, n_samples, transform,
                        checkpoint, new_objective_ok, compile, device,
                        autocast(device, bool(amp)), train, val, bernoulli)


def checked_schedule(scheduler: Schedule | None, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
    """The schedule that ``scheduler(optimizer)`` builds, checked: an ``LRScheduler`` of
    that optimizer (it can only be checked once the optimizer exists)."""
    if scheduler is None:
        return None
    schedule = scheduler(optimizer)
    if not isinstance(schedule, LRScheduler) or schedule.optimizer is not optimizer:
        raise ValueError("scheduler must be a function that takes the optimizer and "
                         "returns a torch.optim.lr_scheduler.LRScheduler of it, e.g. "
                         "lambda opt: torch.optim.lr_scheduler.StepLR(opt, "
                         f"step_size=30, gamma=0.3); got {schedule!r}")
    if isinstance(schedule, ReduceLROnPlateau):
        raise ValueError("scheduler: ReduceLROnPlateau needs a metric at every step, "
                         "and fit steps the schedule with scheduler.step() alone; use "
                         "a schedule that follows the epoch count (StepLR, "
                         "MultiStepLR, CosineAnnealingLR, LambdaLR, ...)")
    return schedule


def check_scheduled_lr(optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """The learning rate a schedule set for this epoch: a negative or non-finite one
    climbs the loss (trains backwards) and is refused; zero trains nothing, which is
    said."""
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"scheduler set the learning rate to {lr:g} for epoch "
                             f"{epoch}: it must stay positive (a negative one climbs "
                             "the loss). The weights are those of the epoch before.")
        if lr == 0:
            warnings.warn(f"scheduler set the learning rate to 0 for epoch {epoch}: "
                          "that epoch trains nothing", stacklevel=3)


def is_binary(x: torch.Tensor) -> bool:
    """Whether every value of x is 0 or 1 (one read from the device)."""
    return bool(((x == 0) | (x == 1)).all())


def _check_model(model: object) -> tuple[LatentVariableModel, int]:
    """The model and its x_dim, after checking that ``fit`` can train it: what it reads
    is declared by :class:`lvm.LatentVariableModel` (``encode``, ``x_dim``)."""
    if not isinstance(model, LatentVariableModel) or not model.has_encoder:
        raise ValueError("model must be a latent variable model with an encoder, "
                         "model.encode(x) -> q(z|x), such as lvm.VAE; got "
                         f"{type(model).__name__}")
    x_dim = model.x_dim
    if isinstance(x_dim, bool) or not isinstance(x_dim, int):
        raise ValueError(f"model must have an integer x_dim (the data dimension); got "
                         f"{x_dim!r}")
    return model, x_dim


def _check_lr(lr: object) -> float:
    value = as_scalar(lr)
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {value!r}")
    return float(value)


def _datasets(model: LatentVariableModel, data: object, x_val: object, x_dim: int, device: torch.device
              ) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
    """The training and validation data on the device, checked against the model now,
    not when validation first runs after a whole epoch."""
    train = _dataset(model, data, "data", x_dim, device)
    val = None if x_val is None else _dataset(model, x_val, "x_val", x_dim, device)
    conditional = model.is_conditional
    if val is not None and conditional and len(val) == 1:
        raise ValueError(f"x_val must be a pair (x, y) with the class labels: a "
                         f"{type(model).__name__} needs them")
    if val is not None and not conditional and len(val) == 2:
        raise ValueError(f"x_val is a pair (x, y), but a {type(model).__name__} takes "
                         "no labels: pass x alone")
    for d in (train, val):
        if conditional and d is not None and len(d) == 2:
            model.given(d[1])  # checks the labels once, here, where reading is cheap
    return train, val


def _dataset(model: LatentVariableModel, data: object, name: str, x_dim: int, device: torch.device
             ) -> tuple[torch.Tensor, ...]:
    """``(x,)`` or ``(x, y)`` on the device: the one copy of the data that training
    makes."""
    if isinstance(data, list) and len(data) == 2 \
            and all(isinstance(d, torch.Tensor) for d in data) and data[0].dim() >= 2:
        data = tuple(data)  # [x, y]: a pair written as a list (x is [n, x_dim])
    if not isinstance(data, tuple):
        return (_data(model, data, name, x_dim, device),)
    if len(data) != 2:
        raise ValueError(f"{name} must be a tensor x or a pair (x, y), got a tuple of "
                         f"{len(data)} items")
    x = _data(model, data[0], f"{name}[0]", x_dim, device)
    try:
        y = data[1] if isinstance(data[1], torch.Tensor) \
            else torch.as_tensor(np.asarray(data[1]))
    except (TypeError, ValueError, RuntimeError):  # strings, None, ragged lists
        got = f"{type(data[1]).__name__} {data[1]!r:.40}"
        raise ValueError(f"{name}[1] must be the labels, one integer per example of "
                         f"{name}[0], got {got}") from None
    if y.dim() < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}[1] must hold one label per example of {name}[0] "
                         f"({x.shape[0]}), got shape {list(y.shape)}")
    return x, y.to(device)


def _data(model: LatentVariableModel, x: object, name: str, x_dim: int, device: torch.device
          ) -> torch.Tensor:
    """The data set ``[n, x_dim]``, its values checked once where they are (finite; in
    [0, 1] for a Bernoulli likelihood), then copied to the device."""
    bernoulli = model.likelihood_name == "bernoulli"
    x = check_data(x, name, dtype=_parameter_dtype(model), unit_interval=bernoulli)
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(f"{name} must have shape [n, {x_dim}] (n examples of the "
                         f"model's x_dim), got {list(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one example, got shape "
                         f"{list(x.shape)}")
    return x.to(device)


def _parameter_dtype(model: LatentVariableModel) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    raise ValueError("model must have floating-point parameters to train")
