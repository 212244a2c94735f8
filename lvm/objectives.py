"""What :func:`lvm.fit` maximises (chapters 4, 7 and 8): small named objects.

An objective is called as ``objective(model, batch, epoch) -> values`` and returns one
value per example, shape ``[B]``, to **maximise**; ``fit`` minimises minus their mean.
``batch`` is a batch of x ``[B, x_dim]``, or a pair ``(x, y)`` when ``fit`` was given
data ``(x, y)`` (a :class:`lvm.ConditionalVAE` and its labels); ``epoch`` counts from 1.
:func:`unpack` turns either kind of batch into a model of x and x, so one objective
serves both. A new objective is a new function here (or in a chapter), never an edit of
``fit``.

An objective also has a ``name`` and its ``settings`` (the :class:`Objective` protocol),
as numpyro's ``Trace_ELBO`` is an object and not a bare function: ``fit`` records them
in its :class:`~lvm.History` and its checkpoint, so that a run remembers what trained it
and a resumed run cannot change objective without saying so. A plain function is an
objective too: :func:`as_objective` names it after its ``__qualname__``, with no
settings.

- :func:`elbo` — the ELBO with a β-weighted KL, free bits and KL warm-up (eq.
  ``beta-elbo``); with its defaults, the ELBO of :func:`lvm.elbo <lvm.bounds.elbo>`.
- :func:`iwae` — the importance-weighted bound (eq. ``iwae``), trained through
  ``rsample``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any, Protocol, runtime_checkable

import torch
from torch.distributions import Distribution

from . import bounds
from ._checks import as_scalar, check_int, check_positive_int
from .bounds import check_x, dimensionwise_kl, draw_z
from .models.base import LatentVariableModel

__all__ = ["Batch", "NamedObjective", "Objective", "ObjectiveFunction", "as_objective",
           "check_values", "describe", "elbo", "iwae", "record", "unpack"]

Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
ObjectiveFunction = Callable[[Any, Batch, int], torch.Tensor]


@runtime_checkable
class Objective(Protocol):
    """What ``fit`` needs of an objective: a call, a :attr:`name` and the
    :attr:`settings`. Two objectives with the same name and settings are the same one:
    that is how a resumed run recognises its objective.
    """

    # Read-only properties rather than plain attributes: a frozen object (such as a
    # NamedObjective) has them too, and an object with plain attributes still does.
    @property
    def name(self) -> str:
        """What the objective is, e.g. ``"elbo"`` or ``"iwae"``."""
        ...

    @property
    def settings(self) -> Mapping[str, Any]:
        """The numbers (or strings) that choose one objective of that name, e.g.
        ``{"k": 16}``."""
        ...

    def __call__(self, model: Any, batch: Batch, epoch: int) -> torch.Tensor:
        """Per-example values ``[B]`` to maximise."""
        ...


@dataclasses.dataclass(frozen=True)
class NamedObjective:
    """A function ``(model, batch, epoch) -> [B]`` with its name and settings.

    Equal when name and settings are equal, whatever the function object: a notebook
    that builds ``lvm.objectives.iwae(16)`` again after a restart builds the same
    objective.
    """

    name: str
    settings: Mapping[str, Any]
    function: ObjectiveFunction = dataclasses.field(repr=False, compare=False)

    def __call__(self, model: Any, batch: Batch, epoch: int) -> torch.Tensor:
        return self.function(model, batch, epoch)

    def __str__(self) -> str:
        return describe(self)

    def __hash__(self) -> int:  # the settings are a dict, which has no hash of its own
        return hash(describe(self))


def unpack(model: Any, batch: Batch) -> tuple[Any, torch.Tensor]:
    """``(the model of x, x)``: ``(model, x)`` for a tensor x, ``(model.given(y), x)``
    for ``(x, y)``.

    The model returned has ``prior()``, ``likelihood(z)`` and ``encode(x)``, so every
    bound applies to it.
    """
    if isinstance(batch, tuple):
        x, y = batch
        # given(y) is declared on every LatentVariableModel (raising for a model without labels): is_conditional
        # says whether the model's class defines its own.
        if not (isinstance(model, LatentVariableModel) and model.is_conditional):
            raise ValueError("a batch (x, y) needs a model with given(y), such as "
                             f"lvm.ConditionalVAE; {type(model).__name__} has none. "
                             "Pass the data as a tensor x instead.")
        return model.given(y), x
    return model, batch


def elbo(beta: float = 1.0, free_bits: float = 0.0, warmup_epochs: int = 0,
         n_samples: int = 1) -> NamedObjective:
    """The ELBO with a weighted KL (eq. ``beta-elbo``): per example x_i,

        E_q[log p(x_i | z)] − β_t Σ_j (KL_ij + max(m_j, τ) − m_j),     β_t = β · min(1,
        t / T)

    where KL_ij = KL(q(z_j | x_i) ‖ p(z_j)) is the KL of latent dimension j (closed form
    for diagonal Gaussians, else Monte Carlo), m_j = (1/B) Σ_i KL_ij its mean over the
    batch, τ = ``free_bits``, t the epoch (from 1) and T = ``warmup_epochs`` (T = 0: β_t
    = β from the start).

    - **β** (Higgins et al. 2017): β > 1 presses q towards the prior (β-VAE), β < 1 lets
      it go.
    - **Free bits** τ, in nats per latent dimension (Kingma et al. 2016, IAF paper,
      appendix C.8): the batch's objective is E[log p(x | z)] − β_t Σ_j max(m_j, τ), so
      a dimension whose *batch-mean* KL is below τ is not pushed further towards the
      prior, and no encoder is rewarded for collapsing it. The clamp is on the batch
      mean, as in that paper, rather than per example (max(KL_ij, τ)): per example,
      every data point that uses a dimension lightly would lose its gradient there, even
      while the dimension carries information on average. Above, the shared term
      max(m_j, τ) − m_j spreads the clamp over the batch, so the values' mean is exactly
      that objective and each value is the example's own ELBO when nothing is clamped.
    - **KL warm-up** (Bowman et al. 2016; Sønderby et al. 2016): β_t rises linearly, β/T
      in the first epoch, up to β in epoch T; the decoder learns to use z before the KL
      pulls q towards the prior.

    With the defaults (β = 1, τ = 0, T = 0) this is :func:`lvm.elbo <lvm.bounds.elbo>`
    with q = ``model.encode(x)``, to the bit, for any q: it is ``fit``'s default
    objective. Other settings need q and the prior to factorise over z's dimensions (an
    ``Independent``, like a VAE's), because the KL is weighted or clamped dimension by
    dimension.

    Args:
        beta: β >= 0.
        free_bits: τ >= 0, nats per latent dimension.
        warmup_epochs: T >= 0.
        n_samples: draws of z per example for E_q[log p(x | z)].

    Returns:
        The objective, named ``"elbo"``, with these four settings.
    """
    beta = _non_negative(beta, "beta")
    free_bits = _non_negative(free_bits, "free_bits")
    warmup_epochs = check_int(warmup_epochs, "warmup_epochs", minimum=0)
    n_samples = check_positive_int(n_samples, "n_samples")
    plain = beta == 1.0 and free_bits == 0.0 and warmup_epochs == 0

    def beta_elbo(model: Any, batch: Batch, epoch: int) -> torch.Tensor:
        model_x, x = unpack(model, batch)
        if plain:  # the ELBO itself: lvm.elbo knows the KL of any q, factorised or not
            return bounds.elbo(model_x, x, model_x.encode(x), n_samples=n_samples)
        x = check_x(model_x, x)
        q = model_x.encode(x)
        likelihood: Distribution = model_x.likelihood(draw_z(q, n_samples))
        recon = likelihood.log_prob(x).mean(0)  # [B]
        kl = dimensionwise_kl(q, model_x.prior(), n_samples)  # [B, d_z]
        if free_bits > 0:
            batch_mean = kl.mean(0)
            kl = kl + (batch_mean.clamp(min=free_bits) - batch_mean)
        return recon - _warm(beta, epoch, warmup_epochs) * kl.sum(-1)

    settings = {"beta": beta, "free_bits": free_bits, "warmup_epochs": warmup_epochs,
                "n_samples": n_samples}
    return NamedObjective("elbo", settings, beta_elbo)


def iwae(k: int) -> NamedObjective:
    """The importance-weighted bound as a training objective (eq. ``iwae``; Burda et al.
    2016): per example,

        log (1/k) Σ_{s=1..k} p(x, z_s) / q(z_s | x),     z_s ~ q(z | x) by ``rsample``

    the number :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>` estimates, here with
    gradients through the reparameterised draws. k = 1 is the ELBO (with a Monte Carlo
    KL); larger k gives a tighter bound and a model with a higher log p(x). Memory grows
    with k (all k draws are in the graph at once).

    Returns:
        The objective, named ``"iwae"``, with the setting ``k``.
    """
    k = check_positive_int(k, "k")

    def iwae_k(model: Any, batch: Batch, epoch: int) -> torch.Tensor:
        model_x, x = unpack(model, batch)
        x = check_x(model_x, x)
        q = model_x.encode(x)
        z = draw_z(q, k)  # [k, B, d_z]
        log_w = model_x.joint_log_prob(x, z) - q.log_prob(z)  # [k, B]
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    return NamedObjective("iwae", {"k": k}, iwae_k)


def as_objective(objective: Objective | ObjectiveFunction) -> Objective:
    """``objective`` as an :class:`Objective`, after the checks that ``fit`` makes
    before training.

    An object with a ``name`` and ``settings`` is returned as it is (its settings
    checked); a plain function is named after its ``__qualname__`` (a callable object
    after its class), with no settings, so that the functions a chapter writes need
    nothing more. The usual wrong callables are named: a recipe not called
    (``lvm.objectives.elbo``), a bound in place of an objective (``lvm.elbo``), a
    function that does not take ``(model, batch, epoch)``.
    """
    given: Any = objective  # checked below as whatever a caller passed, typed or not
    if not callable(given):
        raise ValueError("objective must be a function or None, got "
                         f"{type(given).__name__}")
    if given in (elbo, iwae):
        example = "beta=4)" if given is elbo else "k=8)"
        raise ValueError(f"objective: lvm.objectives.{given.__name__} makes an "
                         "objective; call it, e.g. objective=lvm.objectives."
                         f"{given.__name__}({example}")
    if given in (bounds.elbo, bounds.iwae_bound):
        raise ValueError(f"objective: lvm.{given.__name__} computes a bound for "
                         "given q; fit needs a function (model, batch, epoch) -> one "
                         "value per example, such as lvm.objectives.elbo() or "
                         "lvm.objectives.iwae(k)")
    _check_signature(given)
    if isinstance(objective, Objective):
        record(objective)  # storable settings: refused now, not at the first save
        return objective
    name = getattr(objective, "__qualname__", None) or type(objective).__qualname__
    return NamedObjective(str(name), {}, objective)


def record(objective: Objective) -> dict[str, Any]:
    """``{"name": ..., "settings": {...}}``: what a History and a checkpoint store of an
    objective (plain values only, so that a ``weights_only`` checkpoint can hold
    them)."""
    name = getattr(objective, "name", None)
    settings = getattr(objective, "settings", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"objective.name must be a non-empty string, got {name!r}")
    if not isinstance(settings, Mapping):
        raise ValueError("objective.settings must be a mapping of names to numbers or "
                         f"strings, got {type(settings).__name__}")
    return {"name": name, "settings": {_setting_name(key): _plain(value, key)
                                       for key, value in settings.items()}}


def describe(objective: Objective | Mapping[str, Any] | None) -> str:
    """An objective (or its :func:`record`) as a reader would write the call, e.g.
    ``"iwae(k=16)"``; ``"an objective it did not record"`` for ``None``."""
    if objective is None:
        return "an objective it did not record"
    if not isinstance(objective, Mapping):
        objective = record(objective)
    settings = ", ".join(f"{key}={value!r}"
                         for key, value in objective["settings"].items())
    return f"{objective['name']}({settings})"


def check_values(values: Any, batch: Batch) -> torch.Tensor:
    """An objective's values for a batch, checked: one floating-point value per example,
    ``[B]``, with a gradient wherever one is being taken (detached values would fail in
    ``backward`` with torch's "does not require grad", or train nothing)."""
    size = (batch[0] if isinstance(batch, tuple) else batch).shape[0]
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (size,):
        got = list(values.shape) if isinstance(values, torch.Tensor) \
            else type(values).__name__
        raise ValueError("objective must return one value per example of the batch, "
                         f"shape [{size}], got {got}")
    if not values.is_floating_point():
        raise ValueError("objective must return floating-point values, got "
                         f"{values.dtype}")
    if torch.is_grad_enabled() and not values.requires_grad:
        raise ValueError("objective must return values computed from the model's "
                         "parameters, with their gradient: these have none (detached, "
                         "or computed without the model)")
    return values


def _check_signature(objective: Callable[..., object]) -> None:
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):  # a builtin or C function: nothing to read
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        shown = getattr(objective, "__name__", type(objective).__name__)
        raise ValueError("objective must take (model, batch, epoch) and return one "
                         f"value per example; {shown}{signature} cannot") from None


def _setting_name(key: object) -> str:
    if not isinstance(key, str):
        raise ValueError(f"objective.settings must have string keys, got {key!r}")
    return key


def _plain(value: object, key: str) -> object:
    """A setting as a plain value: a number, string, bool or None, or a list of them."""
    value = as_scalar(value)  # a 0-d tensor or NumPy scalar is the number it holds
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    raise ValueError(f"objective.settings[{key!r}] must be a number, a string, a bool, "
                     "None or a list of them (what a checkpoint can store), got "
                     f"{type(value).__name__}")


def _warm(beta: float, epoch: int, warmup_epochs: int) -> float:
    """β_t = β · min(1, t / T), with t counted from 1; β itself when T = 0."""
    if warmup_epochs == 0:
        return beta
    return beta * min(1.0, check_positive_int(epoch, "epoch") / warmup_epochs)


def _non_negative(value: object, name: str) -> float:
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, Real) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
