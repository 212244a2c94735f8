"""Latent variable models: each defines p(z) and p(x | z) as torch distributions."""

from .base import LatentVariableModel
from .conditional import ConditionalVAE
from .hierarchical import TwoLevelVAE
from .linear import LinearGaussian
from .mixture import GaussianMixture
from .vae import VAE

__all__ = ["VAE", "ConditionalVAE", "GaussianMixture", "LatentVariableModel", "LinearGaussian", "TwoLevelVAE"]
