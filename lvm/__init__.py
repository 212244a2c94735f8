"""lvm: the helper package of the course on latent variable models and variational autoencoders.

One contract (``prior``, ``likelihood``, and for tractable models ``posterior`` and ``log_marginal``)
shared by every model, so that sampling, bounds and training are written once.
"""

from . import data, diagnostics, diffusion, exercises, explorers, objectives, plot, profiles, progress, widgets
from .bounds import (
    elbo,
    elbo_joint_entropy,
    elbo_via_posterior,
    gaussian_kl,
    importance_log_marginal,
    iwae_bound,
    log_importance_weights,
    naive_log_marginal,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .device import default_device, describe_device
from .em import EMResult, em_step, fit_em
from .gradients import reparameterised_gradients, score_function_gradients
from .interpolation import slerp
from .models import VAE, ConditionalVAE, GaussianMixture, LatentVariableModel, LinearGaussian, TwoLevelVAE
from .sampling import ancestral_sample
from .train import History, NonFiniteLossError, fit

__version__ = "0.1.0"

__all__ = [
    "ConditionalVAE",
    "EMResult",
    "GaussianMixture",
    "History",
    "LatentVariableModel",
    "LinearGaussian",
    "NonFiniteLossError",
    "TwoLevelVAE",
    "VAE",
    "ancestral_sample",
    "data",
    "default_device",
    "describe_device",
    "diagnostics",
    "diffusion",
    "elbo",
    "elbo_joint_entropy",
    "elbo_via_posterior",
    "em_step",
    "exercises",
    "explorers",
    "fit",
    "fit_em",
    "gaussian_kl",
    "importance_log_marginal",
    "iwae_bound",
    "load_checkpoint",
    "log_importance_weights",
    "naive_log_marginal",
    "objectives",
    "plot",
    "profiles",
    "progress",
    "reparameterised_gradients",
    "save_checkpoint",
    "score_function_gradients",
    "slerp",
    "widgets",
]
