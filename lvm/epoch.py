"""One epoch of :func:`lvm.fit`: train on every batch, validate, read the sums back.

Each step leaves its sums on the device; :func:`read_back` is the epoch's one
synchronisation (see :mod:`lvm.train` for why the loop is written this way).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from . import objectives
from ._fit_checks import NOT_BINARY, FitArguments, is_binary
from .device import sum_dtype
from .objectives import Batch, Objective

__all__ = ["VAL_BATCH", "LossFunction", "loss_function", "read_back", "train_epoch",
           "transformed", "validate"]

VAL_BATCH = 4096  # validation takes no gradients, so it can use much larger batches

# A training step's loss: (batch, epoch) -> (−mean of the objective, to minimise, and
# its sum, detached, to report).
LossFunction = Callable[[Batch, int], tuple[torch.Tensor, torch.Tensor]]


def train_epoch(model: torch.nn.Module, loss_fn: LossFunction,
                 optimizer: torch.optim.Optimizer, run: FitArguments, epoch: int,
                 generator: torch.Generator, first: bool) -> torch.Tensor:
    """One pass over the data in a fresh random order; returns the sum of the
    objective's values (a device tensor: no sync)."""
    model.train()
    data = run.train
    x = data[0] if run.transform is None else transformed(run.transform, data[0])
    # A transform's output is what trains: the first epoch's must be binary too.
    if first and run.transform is not None and run.bernoulli and not is_binary(x):
        warnings.warn(f"transform returns values that are not binary {NOT_BINARY}. "
                      "Binarise them, e.g. transform=lvm.data.dynamic_binarize.",
                      stacklevel=3)
    n = x.shape[0]
    order = torch.randperm(n, device=x.device, generator=generator)
    total = torch.zeros((), device=x.device, dtype=sum_dtype(x.device))
    for i in range(0, n, run.batch_size):
        rows = order[i:i + run.batch_size]
        batch = x[rows] if len(data) == 1 else (x[rows], data[1][rows])
        with run.autocast():
            loss, value_sum = loss_fn(batch, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # Tensor.backward has no annotations in torch
        optimizer.step()
        total += value_sum
    return total


@torch.no_grad()
def validate(model: torch.nn.Module, objective: Objective,
              run: FitArguments) -> torch.Tensor:
    """Σ_i objective(x_i) over the validation data in eval mode, in large batches (0
    without them); a device tensor (no sync)."""
    total = torch.zeros((), device=run.device, dtype=sum_dtype(run.device))
    if run.val is None:
        return total
    model.eval()
    x, rest = run.val[0], run.val[1:]
    for i in range(0, x.shape[0], VAL_BATCH):
        rows = slice(i, i + VAL_BATCH)
        batch = x[rows] if not rest else (x[rows], rest[0][rows])
        with run.autocast():
            total += objective(model, batch, 0).sum()  # the plain ELBO: no epoch in it
    return total


def read_back(model: torch.nn.Module, total: torch.Tensor, val_total: torch.Tensor
               ) -> tuple[float, float, bool]:
    """The epoch's sums, and whether the loss and the weights are finite: the one
    synchronisation of the epoch."""
    # A step on a finite loss can still leave non-finite weights (an inf gradient).
    weights_ok = torch.stack([torch.isfinite(p).all() for p in model.parameters()])
    weights_ok = weights_ok.all()
    train_sum, ok, val_sum = torch.stack(
        [total, weights_ok.to(total.dtype), val_total.to(total.dtype)]).tolist()
    return train_sum, val_sum, math.isfinite(train_sum) and ok == 1.0


def transformed(transform: Callable[[torch.Tensor], object],
                 x: torch.Tensor) -> torch.Tensor:
    # Handed a copy: on the CPU the training tensor is the caller's own, and an in-place
    # transform (x.bernoulli_()) overwrote it, turning dynamic binarisation static.
    out = transform(x.clone())
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError("transform must return a tensor of the training data's shape "
                         f"{list(x.shape)}, got {got}")
    return out.to(x.dtype)


def loss_function(model: torch.nn.Module, objective: Objective,
                   compile: bool | str) -> LossFunction:
    def loss_fn(batch: Batch, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """−(mean of the objective over the batch), to minimise, and the objective's sum
        (detached), to report."""
        values = objectives.check_values(objective(model, batch, epoch), batch)  # [B]
        return -values.mean(), values.detach().sum()

    if not compile:
        return loss_fn
    # An objective that does not read the epoch is compiled once: torch.compile guards
    # only on what the traced code reads (a KL warm-up's epoch, for one).
    mode = None if isinstance(compile, bool) else compile  # True: torch's default mode
    return torch.compile(loss_fn, dynamic=False, mode=mode)
