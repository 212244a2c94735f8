"""Device discipline without a GPU: every public function on a model moved to torch's ``meta`` device, with
inputs on the CPU.

A meta tensor has a shape, a dtype and a device but no values, so this runs anywhere in milliseconds and
catches what a GPU would: a tensor left on the CPU meeting the model's on another device (``vae.encode(x_cpu)``
dying inside ``F.linear``), and a value read back from the device where none should be (a check that calls
``.item()``). Every result must come back on the model's device, with the documented shape.
"""

from __future__ import annotations

import pytest
import torch
from conftest import MODELS, ModelCase, make_linear_gaussian, make_small_vae
from torch.distributions import Distribution, Independent, Normal

import lvm

META = torch.device("meta")
N, K = 3, 4  # data points, importance samples


def on_meta(model: torch.nn.Module) -> torch.nn.Module:
    return model.to(META)


def q_for(model: lvm.LatentVariableModel, x: torch.Tensor) -> Distribution:
    """q(z | x) as the contract offers it: the encoder, else the exact posterior."""
    return model.encode(x) if model.has_encoder else model.posterior(x)


def contract_calls(model: lvm.LatentVariableModel, x: torch.Tensor):
    """(name, thunk, expected shape) for what every model offers: the contract and the bounds on it."""
    z_shape = tuple(model.prior().event_shape)
    calls = [
        ("check_x", lambda: model.check_x(x), tuple(x.shape)),
        ("ancestral_sample", lambda: lvm.ancestral_sample(model, N)[0], tuple(x.shape)),
        ("ancestral_sample seeded", lambda: lvm.ancestral_sample(model, N, generator=0)[1], (N, *z_shape)),
        ("elbo", lambda: lvm.elbo(model, x, q_for(model, x), n_samples=2), (N,)),
        ("elbo_joint_entropy", lambda: lvm.elbo_joint_entropy(model, x, q_for(model, x)), (N,)),
        ("iwae_bound", lambda: lvm.iwae_bound(model, x, q_for(model, x), k=K), (N,)),
        ("log_importance_weights", lambda: lvm.log_importance_weights(model, x, q_for(model, x), k=K), (K, N)),
        ("importance_log_marginal", lambda: lvm.importance_log_marginal(model, x, q_for(model, x), K), (N,)),
        ("naive_log_marginal", lambda: lvm.naive_log_marginal(model, x, K), (N,)),
    ]
    if model.has_encoder:
        calls.append(("encode", lambda: model.encode(x).rsample(), (N, *z_shape)))
    return calls


def vae_calls(vae, x: torch.Tensor):
    """(name, thunk, expected shape) for the functions a VAE adds: decode, likelihood, prior."""
    z = torch.randn(N, vae.z_dim)
    return [
        ("encode mean", lambda: vae.encode(x).mean, (N, vae.z_dim)),
        ("decode", lambda: vae.decode(z), (N, vae.x_dim)),
        ("likelihood", lambda: vae.likelihood(z).mean, (N, vae.x_dim)),
        ("prior", lambda: vae.prior().mean, (vae.z_dim,)),
    ]


def exact_calls(model, x: torch.Tensor):
    """(name, thunk, expected shape) for the tractable models' extra functions and the bounds on them."""
    post = lambda: model.posterior(x)  # noqa: E731 — built inside each call, from the CPU x
    calls = [
        ("log_marginal", lambda: model.log_marginal(x), (N,)),
        ("posterior", lambda: post().mean if isinstance(model, lvm.LinearGaussian) else post().probs,
         (N, model.z_dim) if isinstance(model, lvm.LinearGaussian) else (N, model.n_components)),
        ("elbo_via_posterior", lambda: lvm.elbo_via_posterior(model, x, post()), (N,)),
    ]
    if isinstance(model, lvm.LinearGaussian):
        calls += [("likelihood", lambda: model.likelihood(torch.zeros(N, model.z_dim)).mean, tuple(x.shape)),
                  ("elbo_exact", lambda: model.elbo_exact(x, post()), (N,)),
                  ("em_step", lambda: model.em_step(x).W, tuple(model.W.shape)),
                  ("marginal_covariance", lambda: model.marginal_covariance(), (model.x_dim, model.x_dim))]
    else:
        calls += [("likelihood", lambda: model.likelihood(torch.zeros(N, dtype=torch.long)).mean, tuple(x.shape)),
                  ("responsibilities", lambda: model.responsibilities(x), (N, model.n_components)),
                  ("em_step", lambda: lvm.em_step(model, x).means, tuple(model.means.shape))]
    return calls


def cases_of(case: ModelCase):
    """Every call for one model of the registry, on a copy moved to meta, with x drawn on the CPU first."""
    model = case.build()
    x, _ = lvm.ancestral_sample(case.model_of_x(model, N), N, generator=0)
    model = on_meta(model)
    of_x = case.model_of_x(model, N)  # labels on the CPU: given(y) moves them too
    calls = contract_calls(of_x, x)
    if isinstance(model, lvm.VAE) and not model.is_conditional:
        calls += vae_calls(model, x)
    if isinstance(model, (lvm.LinearGaussian, lvm.GaussianMixture)):
        calls += exact_calls(model, x)
    return [(f"{case.name}: {name}", call, shape) for name, call, shape in calls]


# A chapter's own model builds its prior on the CPU, as the chapters do: it has no device to keep.
CASES = [c for case in MODELS if not case.chapter for c in cases_of(case)]


@pytest.mark.parametrize("name, call, shape", CASES, ids=[c[0] for c in CASES])
def test_public_functions_run_on_the_models_device_with_cpu_inputs(name, call, shape):
    with torch.no_grad():
        out = call()
    assert out.device == META, f"{name} returned a tensor on {out.device}"
    assert tuple(out.shape) == shape


def test_a_q_on_another_device_than_the_model_is_named():
    vae = on_meta(make_small_vae())
    x = torch.zeros(N, 16)
    q_cpu = Independent(Normal(torch.zeros(N, 2), torch.ones(N, 2)), 1)
    for bound in (lambda: lvm.elbo(vae, x, q_cpu), lambda: lvm.iwae_bound(vae, x, q_cpu, k=2),
                  lambda: lvm.importance_log_marginal(vae, x, q_cpu, 2)):
        with pytest.raises(ValueError, match="(q|proposal) is on cpu but the model .* is on meta"):
            bound()
    linear = on_meta(make_linear_gaussian(dtype=torch.float32))
    with pytest.raises(ValueError, match="q is on cpu but the model is on meta"):
        linear.elbo_exact(torch.zeros(N, 4), q_cpu)


def test_input_checks_still_read_cpu_inputs_before_the_move():
    # The values are checked where they are (on the CPU), so a meta model still refuses bad data.
    vae = on_meta(make_small_vae())
    with pytest.raises(ValueError, match="x must lie in"):
        vae.encode(torch.full((N, 16), 255.0))
    mixture = on_meta(lvm.GaussianMixture([0.5, 0.5], [0.0, 1.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="x must be finite"):
        mixture.log_marginal(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="z must index a component"):
        mixture.likelihood(torch.tensor([0, 2]))
