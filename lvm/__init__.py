"""lvm: the helper package of the course on latent variable models and variational autoencoders.

One contract (``prior``, ``likelihood``, and for tractable models ``posterior`` and ``log_marginal``)
shared by every model, so that sampling, bounds and training are written once.
"""

from . import data, exercises, plot, profiles, widgets
from .device import default_device, describe_device
from .em import EMResult, em_step, fit_em
from .models import GaussianMixture, LatentVariableModel
from .sampling import ancestral_sample

__version__ = "0.1.0"

__all__ = [
    "EMResult",
    "GaussianMixture",
    "LatentVariableModel",
    "ancestral_sample",
    "data",
    "default_device",
    "describe_device",
    "em_step",
    "exercises",
    "fit_em",
    "plot",
    "profiles",
    "widgets",
]
