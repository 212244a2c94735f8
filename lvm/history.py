"""What :func:`lvm.fit` measured, one entry per epoch: the :class:`History` of a run.

Its own module because two others write it: ``fit`` appends an epoch at a time, and
:mod:`lvm.resume` rebuilds it from a checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["History"]


@dataclasses.dataclass(init=False)
class History:
    """What ``fit`` measured, one entry per epoch.

    Attributes:
        epoch: epoch numbers, counted from 1 (a resumed run continues the count).
        train_objective: the training objective's mean value per example, in nats,
            averaged over the epoch's batches (the weights change during the epoch, so
            this lags the end-of-epoch model a little). With the default objective that
            is the ELBO; with another one it is *that* objective's value (e.g. the
            β-weighted ELBO, or the IWAE bound), not the ELBO: ``objective`` says which.
            ``train_elbo`` is another name for it, kept for the code written before
            objectives had names.
        val_elbo: the plain ELBO (:func:`lvm.elbo <lvm.bounds.elbo>`) per validation
            example, in nats, at the end of each epoch (eval mode, no gradients),
            whatever the objective; empty when ``fit`` got no ``x_val``.
        seconds: wall-clock time of each epoch (training, transform and validation; not
            checkpoint writing).
        lr: the learning rate of each epoch (it changes only with a ``scheduler``).
        device: where training ran, e.g. ``"cuda:0"`` or ``"cpu"``.
        objective: what each epoch maximised, as :func:`lvm.objectives.record` writes
            it, e.g. ``{"name": "iwae", "settings": {"k": 16}}``; ``None`` for epochs of
            a checkpoint written before lvm recorded objectives. One entry per epoch,
            because a resumed run may change objective when it says so
            (``new_objective_ok``).
    """

    epoch: list[int]
    train_objective: list[float]
    val_elbo: list[float]
    seconds: list[float]
    lr: list[float]
    device: str
    objective: list[dict[str, Any] | None]

    def __init__(self, epoch: list[int] | None = None,
                 train_objective: list[float] | None = None,
                 val_elbo: list[float] | None = None,
                 seconds: list[float] | None = None,
                 lr: list[float] | None = None, device: str = "",
                 objective: list[dict[str, Any] | None] | None = None, *,
                 train_elbo: list[float] | None = None):
        if train_elbo is not None and train_objective is not None:
            raise ValueError("give train_objective or its old name train_elbo, not "
                             "both")
        if train_objective is None:
            train_objective = [] if train_elbo is None else train_elbo
        self.epoch = [] if epoch is None else epoch
        self.train_objective = train_objective
        self.val_elbo = [] if val_elbo is None else val_elbo
        self.seconds = [] if seconds is None else seconds
        self.lr = [] if lr is None else lr
        self.device = device
        self.objective = [] if objective is None else objective

    @property
    def train_elbo(self) -> list[float]:
        """The old name of :attr:`train_objective` (the same list): it is the ELBO only
        when the objective is."""
        return self.train_objective

    @train_elbo.setter
    def train_elbo(self, values: list[float]) -> None:
        self.train_objective = values

    def append(self, epoch: int, train: float, val: float | None, seconds: float,
               lr: float, objective: dict[str, Any] | None = None) -> None:
        """Record one epoch (``val`` is ``None`` without validation data)."""
        self.epoch.append(epoch)
        self.train_objective.append(train)
        if val is not None:
            self.val_elbo.append(val)
        self.seconds.append(seconds)
        self.lr.append(float(lr))
        self.objective.append(objective)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists, dicts and a string: JSON-serialisable, and storable in a
        ``weights_only`` checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The History that :meth:`as_dict` wrote, or an older lvm wrote: without
        learning rates (NaN: not recorded), objectives (``None``: not recorded), or with
        the training values under their old key ``train_elbo``."""
        n = len(d["epoch"])
        train = d["train_objective"] if "train_objective" in d else d["train_elbo"]
        return cls(epoch=[int(e) for e in d["epoch"]],
                   train_objective=[float(v) for v in train],
                   val_elbo=[float(v) for v in d["val_elbo"]],
                   seconds=[float(v) for v in d["seconds"]],
                   lr=[float(v) for v in d.get("lr", [math.nan] * n)],
                   device=str(d["device"]),
                   objective=list(d.get("objective", [None] * n)))
