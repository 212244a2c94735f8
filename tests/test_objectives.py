"""Tests of lvm.objectives, each objective against a hand computation of its equation: the β-ELBO with free bits
and KL warm-up (eq. beta-elbo; with the defaults it is lvm.elbo to the bit), the IWAE bound as a training
objective (eq. iwae; gradients flow through rsample), and objectives in lvm.fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import lvm
from lvm.models.vae import MIN_STD
from lvm.objectives import NamedObjective, Objective, as_objective, describe, elbo, iwae, record, unpack

N, D, Z = 6, 16, 3


def model_and_data(seed: int = 0):
    torch.manual_seed(seed)
    model = lvm.VAE(D, Z, hidden=(12,))
    g = torch.Generator().manual_seed(seed)
    return model, (torch.rand(N, D, generator=g) < 0.4).float()


def by_hand(model, x, eps):
    """E_q[log p(x | z)] ``[n]`` (average over the draws in eps ``[S, n, d]``), KL_ij ``[n, d]``, and for each
    draw log p(z) + log p(x | z) − log q(z | x) ``[S, n]``: the formulas written out, z = μ + σ ε."""
    mu, raw = model.encoder(x).chunk(2, dim=-1)
    std = F.softplus(raw) + MIN_STD
    z = mu + std * eps
    logits = model.decoder(z)
    log_lik = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)  # Bernoulli, [S, n]
    kl = 0.5 * (mu**2 + std**2 - 1 - 2 * std.log())  # eq. gauss-kl, per dimension
    log_prior = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_q = (-0.5 * eps**2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    return log_lik.mean(0), kl, log_prior + log_lik - log_q


def draws(seed: int, shape) -> torch.Tensor:
    """The standard-normal noise that q.rsample draws after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return torch.randn(shape)


# --- the β-ELBO ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_samples", [1, 4])
def test_the_default_elbo_objective_is_lvm_elbo_to_the_bit(n_samples):
    model, x = model_and_data()
    torch.manual_seed(3)
    value = elbo(n_samples=n_samples)(model, x, 1)
    torch.manual_seed(3)
    reference = lvm.elbo(model, x, model.encode(x), n_samples=n_samples)
    assert value.shape == (N,) and torch.equal(value, reference)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 4.0])
def test_beta_weights_the_kl_as_the_hand_computation(beta):
    model, x = model_and_data(1)
    value = (torch.manual_seed(7), elbo(beta=beta)(model, x, 1))[1]
    recon, kl, _ = by_hand(model, x, draws(7, (1, N, Z)))
    torch.testing.assert_close(value, recon - beta * kl.sum(-1))


def test_kl_warm_up_is_linear_from_beta_over_t_in_epoch_one_to_beta_in_epoch_t():
    model, x = model_and_data(2)
    recon, kl, _ = by_hand(model, x, draws(0, (1, N, Z)))
    objective = elbo(beta=2.0, warmup_epochs=4)
    for epoch, beta_t in [(1, 0.5), (2, 1.0), (3, 1.5), (4, 2.0), (5, 2.0), (40, 2.0)]:
        torch.manual_seed(0)
        torch.testing.assert_close(objective(model, x, epoch), recon - beta_t * kl.sum(-1))
    torch.manual_seed(0)
    torch.testing.assert_close(elbo(beta=2.0)(model, x, 1), recon - 2.0 * kl.sum(-1))  # no warm-up: β at once


def test_free_bits_clamp_the_batch_mean_kl_of_each_dimension():
    model, x = model_and_data(3)
    with torch.no_grad():
        _, kl, _ = by_hand(model, x, draws(0, (1, N, Z)))
    batch_mean = kl.mean(0)
    lam = float(batch_mean.sort().values[1:].mean())  # between the dimensions' KLs: some clamped, some not
    assert (batch_mean < lam).any() and (batch_mean > lam).any()
    beta = 1.5

    torch.manual_seed(0)
    values = elbo(beta=beta, free_bits=lam)(model, x, 1)
    mean = values.mean()
    grads = torch.autograd.grad(mean, list(model.parameters()))

    recon, kl, _ = by_hand(model, x, draws(0, (1, N, Z)))
    kingma = recon.mean() - beta * kl.mean(0).clamp(min=lam).sum()  # Kingma et al. 2016, on the batch
    torch.testing.assert_close(mean, kingma)
    for g, g_hand in zip(grads, torch.autograd.grad(kingma, list(model.parameters()))):
        torch.testing.assert_close(g, g_hand)
    # Per example: the example's own KL, plus the batch's clamp shared equally.
    per_example = recon - beta * (kl + (kl.mean(0).clamp(min=lam) - kl.mean(0))).sum(-1)
    torch.testing.assert_close(values, per_example)


def test_free_bits_below_every_dimensions_kl_change_nothing():
    model, x = model_and_data(4)
    torch.manual_seed(1)
    plain = elbo()(model, x, 1)
    torch.manual_seed(1)
    clamped = elbo(free_bits=1e-9)(model, x, 1)
    torch.testing.assert_close(clamped, plain, rtol=0, atol=1e-6)


def test_a_clamped_dimension_gets_no_gradient_from_the_kl():
    # An encoder whose outputs are free parameters: then ∂/∂μ_ij of the KL term is plain to see.
    model, x = model_and_data(5)
    table = torch.nn.Parameter(torch.randn(N, 2 * Z) * 0.1)  # small μ: every KL_j well under λ = 1 nat
    model.encoder = Table(table)
    model.decoder.requires_grad_(False)
    objective = elbo(free_bits=1.0)
    torch.manual_seed(0)
    with_kl = torch.autograd.grad(objective(model, x, 1).mean(), table)[0]
    torch.manual_seed(0)
    recon_only = torch.autograd.grad(elbo(beta=0.0)(model, x, 1).mean(), table)[0]
    torch.testing.assert_close(with_kl, recon_only)  # the KL's pull to the prior is off below λ


class Table(torch.nn.Module):
    """An 'encoder' that returns its parameter rows, whatever x."""

    def __init__(self, table: torch.nn.Parameter):
        super().__init__()
        self.table = table

    def forward(self, x):
        return self.table[: x.shape[0]]


# --- the IWAE bound -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5])
def test_iwae_objective_is_the_log_mean_exp_of_the_importance_weights(k):
    model, x = model_and_data(6)
    torch.manual_seed(2)
    value = iwae(k)(model, x, 1)
    with torch.no_grad():
        _, _, log_w = by_hand(model, x, draws(2, (k, N, Z)))
    a = log_w.double().numpy()
    top = a.max(0)
    hand = np.log(np.exp(a - top).mean(0)) + top  # log (1/k) Σ_s w_s, computed stably by hand
    assert value.shape == (N,)
    np.testing.assert_allclose(value.detach().double().numpy(), hand, rtol=1e-5, atol=1e-4)


def test_iwae_objective_has_gradients_for_the_encoder_and_the_decoder():
    model, x = model_and_data(7)
    torch.manual_seed(0)
    iwae(8)(model, x, 1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_iwae_objective_is_above_the_elbo_on_average():
    model, x = model_and_data(8)
    torch.manual_seed(0)
    with torch.no_grad():
        bound = torch.stack([iwae(20)(model, x, 1) for _ in range(20)]).mean()
        lower = torch.stack([elbo()(model, x, 1) for _ in range(200)]).mean()
    assert bound > lower


# --- objectives in fit --------------------------------------------------------------------------------------


def fit_kw(**kw):
    return dict(epochs=2, batch_size=3, lr=1e-2, seed=0, progress=False, device="cpu") | kw


def test_train_elbo_records_the_objectives_value_and_val_elbo_the_plain_elbo():
    model, x = model_and_data(9)
    seen = []

    def doubled(model, batch, epoch):
        values = 2.0 * lvm.elbo(model, batch, model.encode(batch))
        seen.append((epoch, float(values.detach().sum())))
        return values

    history = lvm.fit(model, x, objective=doubled, x_val=x, **fit_kw())
    assert [e for e, _ in seen] == [1, 1, 2, 2]  # two batches of 3 per epoch, epochs counted from 1
    for epoch in (1, 2):
        total = sum(v for e, v in seen if e == epoch)
        assert history.train_elbo[epoch - 1] == pytest.approx(total / N)
    # validation: the plain ELBO of the end-of-epoch model, not twice it
    torch.manual_seed(0)
    with torch.no_grad():
        plain = lvm.elbo(model, x, model.encode(x), n_samples=3000).mean()
    assert history.val_elbo[-1] == pytest.approx(float(plain), abs=0.5)


@pytest.mark.parametrize("objective", [elbo(beta=0.5, free_bits=0.1, warmup_epochs=2), iwae(4)])
def test_fit_trains_with_each_objective(objective):
    model, x = model_and_data(10)
    before = [p.detach().clone() for p in model.parameters()]
    history = lvm.fit(model, x, objective=objective, x_val=x, **fit_kw(epochs=3))
    assert len(history.train_elbo) == 3 and all(math.isfinite(v) for v in history.train_elbo + history.val_elbo)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_objective_must_return_one_value_per_example():
    model, x = model_and_data(11)
    with pytest.raises(ValueError, match=r"objective must return one value per example of the batch, shape \[3\]"):
        lvm.fit(model, x, objective=lambda m, b, e: lvm.elbo(m, b, m.encode(b)).mean(), **fit_kw())
    with pytest.raises(ValueError, match="objective must be a function"):
        lvm.fit(model, x, objective="elbo", **fit_kw())


@pytest.mark.parametrize("make, name", [
    (lambda: elbo(beta=-1.0), "beta"), (lambda: elbo(beta=float("nan")), "beta"), (lambda: elbo(beta="1"), "beta"),
    (lambda: elbo(free_bits=-0.1), "free_bits"), (lambda: elbo(warmup_epochs=-1), "warmup_epochs"),
    (lambda: elbo(warmup_epochs=1.5), "warmup_epochs"), (lambda: elbo(n_samples=0), "n_samples"),
    (lambda: iwae(0), "k"), (lambda: iwae(2.0), "k"),
])
def test_bad_objective_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_free_bits_need_a_q_that_factorises_over_dimensions():
    model = lvm.LinearGaussian(torch.randn(3, 2), torch.zeros(3), 0.5)
    model.encode = model.posterior  # a full-covariance q
    with pytest.raises(ValueError, match="factorise over z's dimensions"):
        elbo(free_bits=0.5)(model, torch.randn(4, 3), 1)


def test_unpack_gives_the_model_of_x():
    model, x = model_and_data()
    assert unpack(model, x) == (model, x)
    with pytest.raises(ValueError, match="given"):
        unpack(model, (x, torch.zeros(N, dtype=torch.long)))


def test_a_custom_objective_receives_pairs_and_may_use_the_labels_itself():
    model, x = model_and_data(12)
    y = torch.arange(N) % 2
    seen = []

    def weighted(model, batch, epoch):  # a plain VAE, with the labels used only as weights
        xb, yb = batch
        seen.append(yb.clone())
        return (1.0 + yb) * lvm.elbo(model, xb, model.encode(xb))

    history = lvm.fit(model, (x, y), objective=weighted, **fit_kw(epochs=1))
    assert len(history.train_elbo) == 1
    assert sorted(torch.cat(seen).tolist()) == sorted(y.tolist())  # every label, batched with its row


# --- objectives have names ----------------------------------------------------------


def test_an_objective_has_a_name_and_its_settings():
    beta_8, iwae_16 = elbo(beta=8), iwae(16)
    assert isinstance(beta_8, Objective) and isinstance(iwae_16, Objective)
    assert beta_8.name == "elbo" and beta_8.settings["beta"] == 8
    assert beta_8.settings == {"beta": 8.0, "free_bits": 0.0, "warmup_epochs": 0,
                               "n_samples": 1}
    assert iwae_16.name == "iwae" and iwae_16.settings == {"k": 16}
    assert str(iwae_16) == "iwae(k=16)"
    assert describe(beta_8) == ("elbo(beta=8.0, free_bits=0.0, warmup_epochs=0, "
                                "n_samples=1)")
    assert record(iwae_16) == {"name": "iwae", "settings": {"k": 16}}
    # Built again (a notebook after a restart): the same objective; other settings: not.
    assert iwae(16) == iwae_16 and iwae(8) != iwae_16 and elbo(beta=8.0) == beta_8
    assert hash(iwae(16)) == hash(iwae_16)


def kl_weight_from_a_list(model, batch, epoch):
    """One of the extensions a chapter writes: a KL weight read from a list."""
    weights = [0.1, 0.5, 1.0]
    return elbo(beta=weights[min(epoch, 3) - 1])(model, batch, epoch)


class StudentT:
    """A callable object, as a reader might write one."""

    def __call__(self, model, batch, epoch):
        return lvm.elbo(model, batch, model.encode(batch))


def test_a_plain_function_is_named_after_its_qualname_with_no_settings():
    named = as_objective(kl_weight_from_a_list)
    assert named.name == "kl_weight_from_a_list" and dict(named.settings) == {}

    def local(model, batch, epoch):
        return batch

    here = "test_a_plain_function_is_named_after_its_qualname_with_no_settings.<locals>"
    assert as_objective(local).name == f"{here}.local"
    assert as_objective(lambda m, b, e: m).name == f"{here}.<lambda>"
    assert as_objective(StudentT()).name == "StudentT"
    model, x = model_and_data(13)
    torch.manual_seed(0)
    values = named(model, x, 2)
    torch.manual_seed(0)
    assert torch.equal(values, kl_weight_from_a_list(model, x, 2))  # calls the function


class TCVAE:
    """An objective that follows the protocol itself: its settings are recorded."""

    name = "beta-tcvae"

    def __init__(self, beta):
        self.settings = {"beta": np.float32(beta), "weights": (1, 2.5)}

    def __call__(self, model, batch, epoch):
        return lvm.elbo(model, batch, model.encode(batch))


def test_an_object_with_a_name_and_settings_is_used_as_it_is_and_recorded():
    objective = TCVAE(6)
    assert as_objective(objective) is objective
    # Plain values, so that a weights_only checkpoint can hold them
    assert record(objective) == {"name": "beta-tcvae",
                                 "settings": {"beta": 6.0, "weights": [1, 2.5]}}
    model, x = model_and_data(14)
    history = lvm.fit(model, x, objective=objective, **fit_kw(epochs=1))
    assert history.objective == [record(objective)]


@pytest.mark.parametrize("settings, said", [
    ({"beta": torch.ones(3)}, r"objective.settings\['beta'\] must be a number"),
    ({"net": torch.nn.Linear(2, 2)}, r"objective.settings\['net'\] must be a number"),
    ({1: 2.0}, "objective.settings must have string keys"),
    ([("beta", 1.0)], "objective.settings must be a mapping"),
])
def test_settings_a_checkpoint_could_not_store_are_refused_before_training(settings,
                                                                          said):
    plain = lambda m, b, e: lvm.elbo(m, b, m.encode(b))  # noqa: E731
    objective = NamedObjective("mine", settings, plain)
    model, x = model_and_data(15)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=said):
        lvm.fit(model, x, objective=objective, **fit_kw())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_objective_needs_a_name():
    with pytest.raises(ValueError, match="objective.name must be a non-empty string"):
        record(NamedObjective("", {}, lambda m, b, e: b))


@pytest.mark.parametrize("n_samples", [1, 3])
def test_the_default_objective_is_the_named_elbo_for_any_model(n_samples):
    # No special case in fit: objective=None is lvm.objectives.elbo(n_samples=...), to
    # the bit, and that works for a q that does not factorise (a two-level VAE's), as
    # the default always did.
    def run(objective):
        torch.manual_seed(0)
        model = lvm.TwoLevelVAE(D, 2, 2, hidden=(8,), hidden_top=(8,))
        x = (torch.rand(N, D, generator=torch.Generator().manual_seed(1)) < 0.4).float()
        history = lvm.fit(model, x, objective=objective, n_samples=n_samples,
                          **fit_kw(epochs=2))
        return history, model.state_dict()

    default, default_state = run(None)
    named, named_state = run(elbo(n_samples=n_samples))
    assert default.train_objective == named.train_objective
    assert all(torch.equal(v, named_state[k]) for k, v in default_state.items())
    assert default.objective == [record(elbo(n_samples=n_samples))] * 2


def test_history_records_the_objective_of_every_epoch_and_the_bar_shows_its_name(
        capsys, monkeypatch):
    monkeypatch.setenv("LVM_PROGRESS", "plain")
    model, x = model_and_data(16)
    history = lvm.fit(model, x, objective=iwae(3), **fit_kw(progress=True))
    assert history.objective == [{"name": "iwae", "settings": {"k": 3}}] * 2
    assert "train_iwae=" in capsys.readouterr().out
    lvm.fit(model, x, objective=lambda m, b, e: lvm.elbo(m, b, m.encode(b)),
            **fit_kw(progress=True))
    assert "train_objective=" in capsys.readouterr().out  # "...<lambda>" is no label
