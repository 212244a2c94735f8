"""Tests of lvm.VAE: shapes of every map for both likelihoods and both architectures, densities against scipy,
the encoder's scale parametrisation, the linear special case against the exact linear-Gaussian model (the
IWAE bound tends to log p(x) from below), and every bad constructor argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import lvm
from lvm.models.vae import MIN_STD

IMAGE = 784


def make_vae(likelihood: str, architecture: str, z_dim: int = 3, **kw) -> lvm.VAE:
    torch.manual_seed(0)
    x_dim = IMAGE if architecture == "conv" else 16
    hidden = (32,) if architecture == "conv" else (24, 12)
    return lvm.VAE(x_dim, z_dim, hidden, likelihood, architecture=architecture, **kw)


CASES = [(lik, arch) for lik in ("bernoulli", "gaussian") for arch in ("mlp", "conv")]


# --- shapes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("likelihood, architecture", CASES)
def test_shapes_of_encode_likelihood_decode_and_sampling(likelihood, architecture, binary_data):
    vae = make_vae(likelihood, architecture, z_dim=3)
    n, k = 2, 5
    x = binary_data(n, vae.x_dim)

    q = vae.encode(x)
    assert tuple(q.batch_shape) == (n,) and tuple(q.event_shape) == (3,)
    z = q.rsample((k,))
    assert z.shape == (k, n, 3)

    p = vae.likelihood(z)  # batched over [k, n]: what lvm.iwae_bound passes
    assert tuple(p.batch_shape) == (k, n) and tuple(p.event_shape) == (vae.x_dim,)
    assert p.log_prob(x).shape == (k, n)
    assert vae.decode(z).shape == (k, n, vae.x_dim)
    assert vae.decode(z[0, 0]).shape == (vae.x_dim,)

    prior = vae.prior()
    assert tuple(prior.batch_shape) == () and tuple(prior.event_shape) == (3,)

    xs, zs = lvm.ancestral_sample(vae, 4, generator=0)
    assert xs.shape == (4, vae.x_dim) and zs.shape == (4, 3)
    assert lvm.iwae_bound(vae, x, q, k=7).shape == (n,)
    assert lvm.elbo(vae, x, q).shape == (n,)
    if likelihood == "bernoulli":
        assert set(xs.unique().tolist()) <= {0.0, 1.0}
        means = vae.decode(z)
        assert bool(((means > 0) & (means < 1)).all())


def test_ancestral_sample_is_reproducible_with_a_seed():
    vae = make_vae("bernoulli", "mlp")
    a = lvm.ancestral_sample(vae, 6, generator=3)
    b = lvm.ancestral_sample(vae, 6, generator=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_model_follows_dtype_and_device_moves(binary_data):
    vae = make_vae("gaussian", "mlp", sigma=0.3).double()
    assert vae.prior().mean.dtype == torch.float64
    assert vae.encode(binary_data(2, 16)).mean.dtype == torch.float64  # float32 input is cast to the model
    assert vae.likelihood(torch.zeros(2, 3, dtype=torch.float64)).stddev.dtype == torch.float64


# --- densities against scipy --------------------------------------------------------------------------------


def test_prior_is_standard_normal():
    vae = make_vae("bernoulli", "mlp", z_dim=4)
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    expected = stats.norm.logpdf(z.numpy()).sum(-1)
    np.testing.assert_allclose(vae.prior().log_prob(z).numpy(), expected, rtol=1e-5)


def test_bernoulli_likelihood_is_the_product_of_pixel_bernoullis(binary_data):
    vae = make_vae("bernoulli", "mlp").double()
    z = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = binary_data(7, 16, seed=3).double()
    probs = vae.decode(z).detach().numpy()
    expected = stats.bernoulli.logpmf(x.numpy(), probs).sum(-1)
    np.testing.assert_allclose(vae.likelihood(z).log_prob(x).detach().numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("sigma", [0.25, None])
def test_gaussian_likelihood_is_isotropic_normal_around_the_decoder_mean(sigma):
    vae = make_vae("gaussian", "mlp", sigma=sigma).double()
    if sigma is None:
        with torch.no_grad():
            vae.log_sigma.fill_(math.log(0.7))
    scale = 0.25 if sigma is not None else 0.7
    z = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    mean = vae.decode(z).detach().numpy()
    expected = stats.norm.logpdf(x.numpy(), mean, scale).sum(-1)
    np.testing.assert_allclose(vae.likelihood(z).log_prob(x).detach().numpy(), expected, rtol=1e-10)
    assert float(vae.observation_scale().detach()) == pytest.approx(scale)


def test_learned_sigma_is_a_parameter_that_gets_gradients_and_fixed_sigma_is_not():
    learned = make_vae("gaussian", "mlp")
    assert isinstance(learned.log_sigma, nn.Parameter) and float(learned.log_sigma.detach()) == 0.0
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(6))
    (-lvm.elbo(learned, x, learned.encode(x)).mean()).backward()
    assert learned.log_sigma.grad is not None and float(learned.log_sigma.grad.abs()) > 0
    fixed = make_vae("gaussian", "mlp", sigma=0.5)
    assert not any(name == "log_sigma" for name, _ in fixed.named_parameters())
    assert set(fixed.state_dict()) == {k for k, _ in fixed.named_parameters()}  # only learned things are saved


def test_encoder_scale_stays_positive_and_finite_for_extreme_raw_outputs(binary_data):
    vae = make_vae("bernoulli", "mlp", z_dim=3)
    last = vae.encoder[-1]
    x = binary_data(3, 16)
    for raw in (-1e4, 1e4):  # exp(1e4) would be inf; softplus(1e4) = 1e4
        with torch.no_grad():
            last.weight[3:].zero_()
            last.bias[3:].fill_(raw)
        q = vae.encode(x)
        std = q.base_dist.scale
        assert bool(torch.isfinite(std).all()) and bool((std >= MIN_STD * (1 - 1e-6)).all())
        kl = torch.distributions.kl_divergence(q, vae.prior())
        assert bool(torch.isfinite(kl).all())
    assert float(std.detach().max()) == pytest.approx(1e4, rel=1e-4)


# --- the linear special case -------------------------------------------------------------------------------


def test_hidden_empty_gives_an_affine_decoder():
    vae = lvm.VAE(16, 3, hidden=(), likelihood="gaussian", sigma=0.5)
    assert vae.is_linear and len(vae.decoder) == 1 and isinstance(vae.decoder[0], nn.Linear)
    g = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    a = 0.3
    torch.testing.assert_close(vae.decode(a * z1 + (1 - a) * z2), a * vae.decode(z1) + (1 - a) * vae.decode(z2))


@pytest.mark.parametrize("sigma", [0.4, None])
def test_as_linear_gaussian_has_the_same_likelihood(sigma):
    vae = make_linear_vae(sigma=sigma)
    lg = vae.as_linear_gaussian()
    assert isinstance(lg, lvm.LinearGaussian)
    expected_sigma = 0.4 if sigma is not None else math.exp(float(vae.log_sigma.detach()))
    assert float(lg.sigma.detach()) == pytest.approx(expected_sigma, rel=1e-12)
    g = torch.Generator().manual_seed(8)
    z = torch.randn(3, 5, 2, dtype=torch.float64, generator=g)
    x = torch.randn(5, 6, dtype=torch.float64, generator=g)
    torch.testing.assert_close(lg.likelihood(z).log_prob(x), vae.likelihood(z).log_prob(x).detach())
    # a copy, not a view: changing the VAE afterwards does not change the linear model
    with torch.no_grad():
        vae.decoder[0].weight.add_(1.0)
    assert not torch.allclose(lg.W, vae.decoder[0].weight)


@pytest.mark.parametrize("kwargs", [
    dict(x_dim=6, z_dim=2, hidden=(), likelihood="bernoulli"),
    dict(x_dim=6, z_dim=2, hidden=(8,), likelihood="gaussian"),
    dict(x_dim=784, z_dim=2, hidden=(), likelihood="gaussian", architecture="conv"),
])
def test_as_linear_gaussian_refuses_models_that_are_not_linear_gaussian(kwargs):
    with pytest.raises(ValueError, match="as_linear_gaussian"):
        lvm.VAE(**kwargs).as_linear_gaussian()


def make_linear_vae(sigma=0.4, orthogonal=False) -> lvm.VAE:
    """A float64 linear-decoder Gaussian VAE (x_dim 6, z_dim 2) with a fixed W, b."""
    torch.manual_seed(9)
    vae = lvm.VAE(6, 2, hidden=(), likelihood="gaussian", sigma=sigma).double()
    g = torch.Generator().manual_seed(10)
    W = torch.randn(6, 2, dtype=torch.float64, generator=g)
    if orthogonal:  # orthogonal columns: WᵀW diagonal, so the exact posterior factorises
        W = torch.linalg.qr(W).Q * torch.tensor([1.5, 0.7], dtype=torch.float64)
    else:  # strongly correlated columns: the exact posterior is far from diagonal
        W[:, 1] = 0.8 * W[:, 0] + 0.3 * W[:, 1]
    with torch.no_grad():
        vae.decoder[0].weight.copy_(W)
        vae.decoder[0].bias.copy_(torch.linspace(-1, 1, 6, dtype=torch.float64))
    return vae


def set_encoder_to_diagonal_posterior(vae: lvm.VAE) -> None:
    """Make q(z | x) the exact posterior with its correlations dropped: its mean and its marginal variances.

    The exact posterior p(z | x) = N(m(x), Λ⁻¹) has precision Λ = I + WᵀW/σ² and mean m(x) = Λ⁻¹ Wᵀ(x − b)/σ².
    q keeps m(x) and the diagonal of Λ⁻¹: exact when Λ is diagonal, a strictly worse q otherwise. (The
    mean-field variances 1/Λ_ii would be narrower than the posterior, and importance weights from too narrow
    a proposal have infinite variance here, so the IWAE bound would converge too slowly to test.)
    """
    layer = vae.decoder[0]
    W, b, s2 = layer.weight.detach(), layer.bias.detach(), float(vae.observation_scale()) ** 2
    precision = torch.eye(vae.z_dim, dtype=W.dtype) + W.T @ W / s2
    A = torch.linalg.solve(precision, W.T) / s2  # m(x) = A (x − b)
    std = torch.linalg.inv(precision).diagonal().sqrt()
    raw = std - MIN_STD
    raw = raw + torch.log(-torch.expm1(-raw))  # softplus⁻¹
    enc = vae.encoder[0]
    with torch.no_grad():
        enc.weight.zero_()
        enc.weight[: vae.z_dim] = A
        enc.bias[: vae.z_dim] = -A @ b
        enc.bias[vae.z_dim:] = raw


def linear_data(vae: lvm.VAE, n: int) -> torch.Tensor:
    x, _ = lvm.ancestral_sample(vae.as_linear_gaussian(), n, generator=11)
    return x


def test_iwae_equals_log_marginal_when_the_encoder_is_the_exact_posterior():
    # Orthogonal W: the exact posterior is diagonal, so q = p(z|x) and every importance weight is p(x).
    vae = make_linear_vae(orthogonal=True)
    set_encoder_to_diagonal_posterior(vae)
    x = linear_data(vae, 8)
    exact = vae.as_linear_gaussian().log_marginal(x)
    with torch.no_grad():
        bound = lvm.iwae_bound(vae, x, vae.encode(x), k=3)
    torch.testing.assert_close(bound, exact, rtol=0, atol=1e-9)


def test_iwae_of_a_linear_vae_approaches_the_exact_log_marginal_from_below():
    vae = make_linear_vae()
    set_encoder_to_diagonal_posterior(vae)
    lg = vae.as_linear_gaussian()
    x = linear_data(vae, 6)
    exact = lg.log_marginal(x)
    torch.manual_seed(12)
    repeats = 200
    with torch.no_grad():
        q = vae.encode(x)
        gaps, ses = {}, {}
        for k in (1, 10, 100, 1000):
            draws = torch.stack([lvm.iwae_bound(vae, x, q, k=k) for _ in range(repeats)])  # [R, n]
            gap = draws.mean(0) - exact  # E[IWAE_k] − log p(x): ≤ 0 by Jensen
            se = draws.std(0) / math.sqrt(repeats)
            # never above log p(x) beyond Monte Carlo error (4 standard errors)
            assert bool((gap <= 4 * se + 1e-12).all()), (k, gap, se)
            gaps[k], ses[k] = gap.mean(), se.pow(2).mean().sqrt()
        # the k = 1 bound is the ELBO, whose exact value the linear model gives in closed form
        assert abs(float(gaps[1] - (lg.elbo_exact(x, q) - exact).mean())) < 4 * float(ses[1])
    # the gap is real at k = 1 (the diagonal q misses the posterior correlation) and shrinks as k grows
    assert float(gaps[1]) < -0.5
    for small, large in ((1, 10), (10, 100), (100, 1000)):
        assert float(gaps[small]) < float(gaps[large]) + 3 * float(ses[small] + ses[large])
    assert abs(float(gaps[1000])) < 0.1 * abs(float(gaps[1]))


# --- bad arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    (dict(x_dim=0), "x_dim"), (dict(x_dim=-3), "x_dim"), (dict(x_dim=2.5), "x_dim"), (dict(x_dim=True), "x_dim"),
    (dict(x_dim="784"), "x_dim"),
    (dict(z_dim=0), "z_dim"), (dict(z_dim=1.0), "z_dim"), (dict(z_dim=None), "z_dim"),
    (dict(hidden=400), "hidden"), (dict(hidden=(0,)), "hidden"), (dict(hidden=(-5, 3)), "hidden"),
    (dict(hidden="400"), "hidden"), (dict(hidden=(True,)), "hidden"), (dict(hidden=(3.5,)), "hidden"),
    (dict(likelihood="poisson"), "likelihood"), (dict(likelihood=None), "likelihood"),
    (dict(architecture="resnet"), "architecture"),
    (dict(architecture="conv", x_dim=64), "x_dim"),
    (dict(sigma=0.5), "sigma"),  # Bernoulli has no sigma
    (dict(likelihood="gaussian", sigma=0.0), "sigma"), (dict(likelihood="gaussian", sigma=-1.0), "sigma"),
    (dict(likelihood="gaussian", sigma=float("nan")), "sigma"),
    (dict(likelihood="gaussian", sigma=float("inf")), "sigma"),
    (dict(likelihood="gaussian", sigma="0.1"), "sigma"), (dict(likelihood="gaussian", sigma=True), "sigma"),
])
def test_bad_constructor_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(x_dim=16, z_dim=2, hidden=(8,), likelihood="bernoulli") | kwargs
    with pytest.raises(ValueError, match=name):
        lvm.VAE(**args)


def test_wrong_input_shapes_raise_value_error():
    vae = make_vae("bernoulli", "mlp", z_dim=3)
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 16\]"):
        vae.encode(torch.zeros(4, 15))
    with pytest.raises(ValueError, match=r"z must have shape \[\.\.\., 3\]"):
        vae.likelihood(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="z must"):
        vae.decode(torch.tensor(1.0))
    with pytest.raises(ValueError, match="Bernoulli"):
        vae.observation_scale()


BAD_X = [
    (torch.full((2, 16), float("nan")), "x must be finite"),
    (torch.full((2, 16), float("inf")), "x must be finite"),
    (torch.ones(2, 16, dtype=torch.complex64), "x must be real, got complex"),
    (torch.full((2, 16), 255.0), r"x must lie in \[0, 1\] for a Bernoulli likelihood .* 1/255"),
    (torch.full((2, 16), -0.5), r"x must lie in \[0, 1\]"),
]


@pytest.mark.parametrize("x, message", BAD_X)
def test_encode_elbo_and_iwae_refuse_bad_x(x, message, binary_data):
    vae = make_vae("bernoulli", "mlp")
    q = vae.encode(binary_data(2, 16))
    for call in (lambda: vae.encode(x), lambda: lvm.elbo(vae, x, q), lambda: lvm.iwae_bound(vae, x, q, k=2)):
        with pytest.raises(ValueError, match=message):
            call()


def test_grey_levels_and_any_real_x_are_accepted_where_they_belong():
    grey = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    bernoulli = make_vae("bernoulli", "mlp")
    assert torch.isfinite(lvm.elbo(bernoulli, grey, bernoulli.encode(grey))).all()  # grey levels are in [0, 1]
    gaussian = make_vae("gaussian", "mlp")
    x = 255 * grey  # a Gaussian likelihood has no range
    assert torch.isfinite(lvm.elbo(gaussian, x, gaussian.encode(x))).all()


def test_x_and_z_are_converted_to_the_model():
    # The model in float64, the inputs in float32: the same .to() that converts them moves them to its
    # device (test_meta_device.py checks the device).
    vae = make_vae("gaussian", "mlp").double()
    q = vae.encode(torch.rand(2, 16))
    assert q.mean.dtype == torch.float64
    assert vae.decode(torch.zeros(4, 3)).dtype == torch.float64
    assert vae.check_x(torch.rand(2, 16)).device == vae.prior_loc.device


def test_conv_networks_have_the_documented_layers():
    vae = make_vae("bernoulli", "conv")
    convs = [m for m in vae.encoder.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [m for m in vae.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == 2 and len(deconvs) == 2
    assert "architecture='conv'" in repr(vae)


# --- networks supplied by the caller ------------------------------------------------------------------------


class Flatten784(nn.Module):
    """A chapter's own encoder: a convolution over the 28 × 28 image, then a linear map to [n, 2 · z_dim]."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, stride=2)
        self.norm = nn.BatchNorm2d(4)
        self.out = nn.Linear(4 * 13 * 13, 2 * z_dim)

    def forward(self, x):
        h = self.norm(self.conv(x.reshape(-1, 1, 28, 28))).relu()
        return self.out(h.flatten(1))


def test_a_vae_uses_the_encoder_and_decoder_it_is_given(binary_data):
    torch.manual_seed(0)
    encoder, decoder = Flatten784(3), nn.Sequential(nn.Linear(3, 50), nn.Tanh(), nn.Linear(50, IMAGE))
    running = encoder.norm.running_mean.clone()
    vae = lvm.VAE(IMAGE, 3, encoder=encoder, decoder=decoder)
    assert vae.encoder is encoder and vae.decoder is decoder
    assert torch.equal(encoder.norm.running_mean, running) and encoder.training  # the shape probe changed nothing
    x = binary_data(4, IMAGE)
    q = vae.encode(x)
    mean, raw = encoder(x).chunk(2, dim=-1)
    torch.testing.assert_close(q.mean, mean)  # the first z_dim outputs are μ, the last the raw scale
    torch.testing.assert_close(q.stddev, torch.nn.functional.softplus(raw) + MIN_STD)
    z = q.rsample((2,))
    torch.testing.assert_close(vae.likelihood(z).base_dist.logits, decoder(z))
    assert lvm.iwae_bound(vae, x, q, k=5).shape == (4,)
    h = lvm.fit(vae, x, epochs=1, batch_size=2, seed=0, progress=False, device="cpu")
    assert torch.isfinite(torch.tensor(h.train_elbo)).all()


def test_only_one_network_may_be_supplied():
    torch.manual_seed(0)
    vae = lvm.VAE(16, 2, hidden=(8,), likelihood="gaussian", decoder=nn.Linear(2, 16))
    assert isinstance(vae.encoder, nn.Sequential) and vae.encoder[0].in_features == 16
    assert vae.is_linear  # a supplied nn.Linear decoder is the linear special case
    lg = vae.as_linear_gaussian()
    torch.testing.assert_close(lg.W, vae.decoder.weight.detach())


@pytest.mark.parametrize("kwargs, message", [
    (dict(encoder=nn.Linear(16, 3)), r"encoder must map x \[n, x_dim\] to \[n, 2 \* z_dim\].*returned \[2, 3\], "
                                     r"expected \[2, 4\]"),
    (dict(encoder=nn.Linear(5, 4)), r"encoder must map .* it raised RuntimeError"),
    (dict(decoder=nn.Linear(2, 15)),
     r"decoder must map z \[\.\.\., z_dim\] to \[\.\.\., x_dim\].*expected \[1, 2, 16\]"),
    (dict(decoder=nn.Sequential(nn.Linear(2, 16), nn.Flatten())), r"decoder must map.*returned \[1, 32\]"),
    (dict(encoder="mlp"), "encoder must be an nn.Module"),
    (dict(decoder=lambda z: z), "decoder must be an nn.Module"),
])
def test_supplied_networks_of_the_wrong_shape_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lvm.VAE(16, 2, hidden=(8,), **kwargs)
