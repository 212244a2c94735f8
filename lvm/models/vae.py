"""The variational autoencoder (chapter 6): a nonlinear latent variable model with an amortised posterior.

The generative model is p(z) = N(0, I) and p(x | z, φ) whose parameters come from a decoder network
f(z; φ): Bernoulli logits for binary images, or a Gaussian mean N(x | f(z; φ), σ² I) (eq. ``nonlinear-lvm``).
The encoder g(x; θ) gives the amortised approximate posterior q(z | x, θ) = N(μ(x), diag σ(x)²)
(eq. ``vae-encoder``), the q that the ELBO (eq. ``elbo-three-forms``) and the IWAE bound are evaluated with.

The VAE honours the same contract as every other model (``prior``, ``likelihood``), so
:func:`lvm.ancestral_sample`, :func:`lvm.elbo <lvm.bounds.elbo>` and :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>`
work on it unchanged. It has no
exact ``posterior`` or ``log_marginal`` — that intractability is the reason for the encoder.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal
from torch.nn import functional as F

from .._checks import as_tensor, check_data, check_positive_int
from .base import LatentVariableModel
from .networks import IMAGE_SIDE, ConvDecoder, ConvEncoder, layer_widths, mlp

if TYPE_CHECKING:  # only for the annotation: a VAE does not otherwise import the linear model
    from .linear import LinearGaussian

__all__ = ["VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("mlp", "conv")

# Smallest posterior standard deviation the encoder can output. Keeps log σ(x) (in the KL term) finite even
# if the raw output runs to -inf; 1e-4 is far below any posterior scale a VAE on images reaches.
MIN_STD = 1e-4


class VAE(LatentVariableModel):
    """A variational autoencoder with a standard-normal prior.

    Args:
        x_dim: data dimension d_x (784 for MNIST).
        z_dim: latent dimension d_z.
        hidden: widths of the hidden layers of both the encoder and the decoder (the decoder uses them in
            reverse order). ``hidden=()`` makes both networks affine: the decoder is then *linear*, and a
            Gaussian VAE of that kind is a linear-Gaussian model (see :meth:`as_linear_gaussian`).
        likelihood: ``"bernoulli"`` (the decoder outputs logits; for binary data) or ``"gaussian"``.
        sigma: Gaussian likelihood only: a fixed observation noise σ > 0, or ``None`` to learn log σ as a
            single scalar parameter (initialised at σ = 1).
        architecture: ``"mlp"`` (fully connected, ReLU) or ``"conv"`` (small convolutional networks for
            28 × 28 images; needs ``x_dim == 784``).
        encoder: a network of your own, an ``nn.Module`` mapping x ``[n, x_dim]`` to ``[n, 2 * z_dim]``: the
            first ``z_dim`` outputs are the posterior mean μ(x), the last ``z_dim`` a raw scale r(x) from which
            σ(x) = softplus(r(x)) + 1e-4 (what the default networks output). ``None`` builds the network that
            ``hidden`` and ``architecture`` describe.
        decoder: a network of your own mapping z ``[..., z_dim]`` to ``[..., x_dim]`` over any leading
            dimensions (the bounds pass ``[k, n, z_dim]``): Bernoulli logits, or the Gaussian mean f(z; φ).
            ``None`` builds the default one.

    Networks you supply are run once here, on zeros, to check their output shapes (in eval mode, without
    gradients); ``hidden`` and ``architecture`` then describe only the networks built by default.

    Shapes: ``encode`` takes x ``[n, x_dim]`` and returns a distribution with batch shape ``[n]`` and event
    shape ``[z_dim]``; ``likelihood`` and ``decode`` take z ``[..., z_dim]`` (e.g. ``[k, n, z_dim]``) and work
    over all its leading dimensions.
    """

    x_dim: int
    z_dim: int
    likelihood_name: str  # "bernoulli" or "gaussian"
    prior_loc: torch.Tensor  # buffers: p(z) = N(prior_loc, diag prior_scale²)
    prior_scale: torch.Tensor

    def __init__(self, x_dim: int, z_dim: int, hidden: Sequence[int] = (400,), likelihood: str = "bernoulli",
                 *, sigma: float | None = None, architecture: str = "mlp", encoder: torch.nn.Module | None = None,
                 decoder: torch.nn.Module | None = None):
        super().__init__()
        x_dim = check_positive_int(x_dim, "x_dim")
        z_dim = check_positive_int(z_dim, "z_dim")
        hidden = layer_widths(hidden)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        if architecture == "conv" and x_dim != IMAGE_SIDE * IMAGE_SIDE:
            raise ValueError(f"x_dim must be {IMAGE_SIDE * IMAGE_SIDE} (28 × 28 images) for architecture='conv', "
                             f"got {x_dim}")
        if sigma is not None:
            if likelihood != "gaussian":
                raise ValueError("sigma only applies to likelihood='gaussian' (a Bernoulli has no noise scale); "
                                 f"got sigma={sigma!r} with likelihood={likelihood!r}")
            if isinstance(sigma, bool) or not isinstance(sigma, Real) or not math.isfinite(sigma) or sigma <= 0:
                raise ValueError(f"sigma must be None (learned) or a finite number > 0, got {sigma!r}")
            sigma = float(sigma)

        self.x_dim, self.z_dim, self.hidden = x_dim, z_dim, hidden
        self.likelihood_name, self.architecture, self.sigma = likelihood, architecture, sigma

        # The encoder outputs a mean and a raw scale for every latent dimension (2 * z_dim numbers).
        self._check_networks(encoder, decoder)
        if encoder is None:
            encoder = mlp(x_dim, hidden, 2 * z_dim) if architecture == "mlp" else ConvEncoder(2 * z_dim, hidden)
        if decoder is None:
            decoder = (mlp(z_dim, tuple(reversed(hidden)), x_dim) if architecture == "mlp"
                       else ConvDecoder(z_dim, tuple(reversed(hidden))))
        self.encoder, self.decoder = encoder, decoder
        if likelihood == "gaussian" and sigma is None:
            self.log_sigma = nn.Parameter(torch.zeros(()))
        # p(z) = N(0, I) lives in buffers so that it follows .to(device) and .double(); not persistent, so
        # checkpoints hold only what is learned.
        self.register_buffer("prior_loc", torch.zeros(z_dim), persistent=False)
        self.register_buffer("prior_scale", torch.ones(z_dim), persistent=False)

    # --- the latent variable model contract -------------------------------------------------------------
    def prior(self) -> Independent:
        """p(z) = N(0, I), event shape ``[z_dim]``, on the model's device."""
        # validate_args=False everywhere in this class: validation runs a check that synchronises a GPU on
        # every call (and our parameters are valid by construction).
        return Independent(Normal(self.prior_loc, self.prior_scale, validate_args=False), 1)

    def likelihood(self, z: torch.Tensor) -> Independent:
        """p(x | z, φ): event shape ``[x_dim]``, batch shape ``z.shape[:-1]`` (eq. ``nonlinear-lvm``)."""
        return self._likelihood_from(self._decoder_output(self._check_z(z)))

    def encode(self, x: torch.Tensor) -> Independent:
        """q(z | x, θ) = N(μ(x), diag σ(x)²): batch shape ``x.shape[:-1]`` (usually ``[n]``), event ``[z_dim]``.

        (eq. ``vae-encoder``)
        """
        return self._posterior_from(self.encoder(self.check_x(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): pixel probabilities (Bernoulli) or f(z; φ) (Gaussian), ``[..., x_dim]``."""
        return self._mean_from(self._decoder_output(self._check_z(z)))

    # --- from network outputs to distributions (shared with ConditionalVAE) -------------------------------
    def _posterior_from(self, out: torch.Tensor) -> Independent:
        """q(z | x) from the encoder's output ``[..., 2 * z_dim]``: the mean, then the raw scale."""
        mean, raw_scale = self._cast(out).chunk(2, dim=-1)
        # σ = softplus(raw) + MIN_STD rather than exp(raw): exp overflows to inf for a raw output of ~89 in
        # float32 (and its gradient grows as fast), so one bad step early in training, or a large learning
        # rate, turns the loss into inf/NaN. softplus grows only linearly, with gradient at most 1, and the
        # floor keeps log σ finite in the KL term when raw → -inf.
        std = F.softplus(raw_scale) + MIN_STD
        return Independent(Normal(mean, std, validate_args=False), 1)

    def _likelihood_from(self, out: torch.Tensor) -> Independent:
        """p(x | z) from the decoder's output ``[..., x_dim]`` (logits, or the Gaussian mean)."""
        if self.likelihood_name == "bernoulli":
            return Independent(Bernoulli(logits=out, validate_args=False), 1)
        return Independent(Normal(out, self.observation_scale().expand_as(out), validate_args=False), 1)

    def _mean_from(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out) if self.likelihood_name == "bernoulli" else out

    # --- the linear special case -------------------------------------------------------------------------
    @property
    def is_linear(self) -> bool:
        """True when the decoder is one affine map, x = W z + b (``hidden=()`` with the MLP architecture, or a
        supplied ``nn.Linear``)."""
        return self._affine_decoder() is not None

    def _affine_decoder(self) -> nn.Linear | None:
        """The decoder's one ``nn.Linear``, if that is all it is (alone, or alone in an ``nn.Sequential``)."""
        layer = self.decoder
        if isinstance(layer, nn.Sequential) and len(layer) == 1:
            layer = layer[0]
        return layer if isinstance(layer, nn.Linear) else None

    def observation_scale(self) -> torch.Tensor:
        """σ of the Gaussian likelihood, a scalar tensor (fixed, or exp of the learned log σ)."""
        if self.likelihood_name != "gaussian":
            raise ValueError("observation_scale: a Bernoulli likelihood has no noise scale σ")
        if self.sigma is not None:
            # new_full fills on the device (no host-to-device copy), in the model's dtype at full precision.
            return self.prior_scale.new_full((), self.sigma)
        return self.log_sigma.exp().to(self.prior_scale.dtype)

    def as_linear_gaussian(self) -> LinearGaussian:
        """The equivalent :class:`lvm.LinearGaussian` (W = decoder weight, b = decoder bias, σ), detached.

        Only a Gaussian VAE with a linear decoder *is* a linear-Gaussian model; its exact ``log_marginal``
        is then the ground truth against which the ELBO and the IWAE bound of this VAE can be checked.
        """
        if not self.is_linear or self.likelihood_name != "gaussian":
            raise ValueError("as_linear_gaussian needs a linear decoder (architecture='mlp', hidden=()) and "
                             f"likelihood='gaussian'; this VAE has architecture={self.architecture!r}, "
                             f"hidden={self.hidden}, likelihood={self.likelihood_name!r}")
        from .linear import LinearGaussian  # imported here: a VAE does not otherwise need the linear model

        layer = self._affine_decoder()
        assert layer is not None  # is_linear, checked above, means there is one
        return LinearGaussian(layer.weight.detach().clone(), layer.bias.detach().clone(),
                              float(self.observation_scale().detach()))

    # --- helpers -------------------------------------------------------------------------------------------
    def _check_z(self, z: Any) -> torch.Tensor:
        """z ``[..., z_dim]`` as a tensor of the model's dtype, on its device."""
        z = as_tensor(z, "z", dtype=self.prior_loc.dtype).to(self.prior_loc.device)
        return self._check_last_dim(z, "z", self.z_dim)

    def _decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        return self._cast(self.decoder(z))

    def _check_networks(self, encoder: nn.Module | None, decoder: nn.Module | None) -> None:
        """Run supplied networks once on zeros: a wrong output shape is found here, with a clear message, not
        as a shape error deep inside a bound."""
        if encoder is not None:
            _check_network(encoder, "encoder", (2, self.x_dim), (2, 2 * self.z_dim),
                           "x [n, x_dim] to [n, 2 * z_dim] (the mean, then the raw scale, of each latent dimension)")
        if decoder is not None:
            _check_network(decoder, "decoder", (1, 2, self.z_dim), (1, 2, self.x_dim),
                           "z [..., z_dim] to [..., x_dim] over any leading dimensions")

    def _cast(self, out: torch.Tensor) -> torch.Tensor:
        # Under bf16 autocast the networks return bf16; densities are computed in the model's own dtype, since
        # a log-likelihood summed over 784 pixels in bf16 (8 significant bits) would be too coarse.
        return out.to(self.prior_loc.dtype)

    def check_x(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[..., x_dim]``: real, finite, in [0, 1] for a Bernoulli likelihood; moved to the model's device
        and dtype (its values are read where they are, before the move). :meth:`encode` and the bounds call
        it."""
        x = check_data(x, "x", dtype=self.prior_loc.dtype, device=self.prior_loc.device,
                       unit_interval=self.likelihood_name == "bernoulli")
        return self._check_last_dim(x, "x", self.x_dim)

    @staticmethod
    def _check_last_dim(t: torch.Tensor, name: str, size: int) -> torch.Tensor:
        if t.dim() == 0 or t.shape[-1] != size:
            raise ValueError(f"{name} must have shape [..., {size}], got {list(t.shape)}")
        return t

    def extra_repr(self) -> str:
        sigma = "" if self.likelihood_name != "gaussian" else \
            f", sigma={'learned' if self.sigma is None else self.sigma}"
        return (f"x_dim={self.x_dim}, z_dim={self.z_dim}, hidden={self.hidden}, "
                f"likelihood={self.likelihood_name!r}{sigma}, architecture={self.architecture!r}")



def _check_network(net: Any, name: str, shape_in: tuple[int, ...], shape_out: tuple[int, ...], what: str) -> None:
    """``net`` is an ``nn.Module`` that maps zeros of ``shape_in`` to ``shape_out``; otherwise a ``ValueError``."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"{name} must be an nn.Module mapping {what}, or None; got {type(net).__name__}")
    reference = next(itertools.chain(net.parameters(), net.buffers()), None)
    probe = torch.zeros(shape_in, dtype=reference.dtype if reference is not None and reference.is_floating_point()
                        else torch.get_default_dtype(), device=None if reference is None else reference.device)
    was_training = net.training
    net.eval()  # eval mode: a probe must not move a batch norm's running statistics
    try:
        with torch.no_grad():
            out = net(probe)
    except Exception as exc:
        raise ValueError(f"{name} must map {what}; given zeros of shape {list(shape_in)} it raised "
                         f"{type(exc).__name__}: {exc}") from exc
    finally:
        net.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape_out:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must map {what}: given zeros of shape {list(shape_in)} it returned {got}, "
                         f"expected {list(shape_out)}")

