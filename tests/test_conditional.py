"""Tests of lvm.ConditionalVAE: the one-hot label enters both networks (checked against the networks by hand),
model.given(y) is a model of x for every bound, labels are validated, and lvm.fit trains it on (x, y) data,
checkpoints included; sampling draws what it is asked for."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

import lvm
from lvm.models.vae import MIN_STD

D, C, Z = 12, 3, 2


def make_cvae(seed: int = 0, **kw) -> lvm.ConditionalVAE:
    torch.manual_seed(seed)
    return lvm.ConditionalVAE(D, C, Z, hidden=(16,), **kw)


def labelled_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c lights up pixels [4c, 4c + 4) (with 5% noise): x tells y, and y tells most of x."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    x = torch.zeros(n, D)
    for c in range(C):
        x[y == c, 4 * c:4 * c + 4] = 1.0
    flips = (torch.rand(n, D, generator=g) < 0.05).float()
    return (x + flips) % 2, y


def test_the_label_is_one_hot_and_concatenated_to_both_networks():
    model = make_cvae()
    x, y = labelled_data(5)
    one_hot = F.one_hot(y, C).float()
    q = model.encode(x, y)
    mu, raw = model.encoder(torch.cat([x, one_hot], -1)).chunk(2, -1)
    torch.testing.assert_close(q.mean, mu)
    torch.testing.assert_close(q.stddev, F.softplus(raw) + MIN_STD)
    z = torch.randn(4, 5, Z)  # k draws for each of 5 points: one label per point, broadcast over the draws
    logits = model.decoder(torch.cat([z, one_hot.expand(4, 5, C)], -1))
    torch.testing.assert_close(model.likelihood(z, y).base_dist.logits, logits)
    torch.testing.assert_close(model.decode(z, y), torch.sigmoid(logits))
    assert model.encoder[0].in_features == D + C and model.decoder[0].in_features == Z + C
    assert tuple(model.prior().event_shape) == (Z,) and not model.is_linear


def test_given_is_a_model_of_x_for_the_elbo_the_iwae_bound_and_sampling():
    model = make_cvae(1)
    x, y = labelled_data(6, seed=1)
    given = model.given(y)
    assert isinstance(given, lvm.LatentVariableModel)
    torch.manual_seed(0)
    value = lvm.elbo(given, x, given.encode(x), n_samples=2)
    torch.manual_seed(0)
    q = model.encode(x, y)
    z = q.rsample((2,))
    by_hand = model.likelihood(z, y).log_prob(x).mean(0) - torch.distributions.kl_divergence(q, model.prior())
    torch.testing.assert_close(value, by_hand)
    assert lvm.iwae_bound(given, x, given.encode(x), k=5).shape == (6,)
    xs, zs = lvm.ancestral_sample(given, 6, generator=0)
    assert xs.shape == (6, D) and zs.shape == (6, Z)


def test_sample_given_labels_is_reproducible_and_draws_the_class_asked_for():
    model = make_cvae(2)
    x, y = labelled_data(240, seed=2)
    lvm.fit(model, (x, y), epochs=12, batch_size=24, lr=1e-2, seed=0, progress=False, device="cpu")
    asked = torch.arange(C).repeat_interleave(100)
    xs, zs = model.sample(asked, generator=3)
    again, _ = model.sample(asked, generator=3)
    assert xs.shape == (300, D) and zs.shape == (300, Z) and torch.equal(xs, again)
    blocks = xs.reshape(300, C, 4).mean(-1)  # how lit each class's block of pixels is
    assert (blocks.argmax(-1) == asked).float().mean() > 0.9


def test_fit_on_labelled_data_raises_the_conditional_elbo_and_validates_on_pairs():
    model = make_cvae(3)
    x, y = labelled_data(256, seed=3)
    xv, yv = labelled_data(64, seed=4)
    history = lvm.fit(model, (x, y), epochs=8, batch_size=32, lr=5e-3, x_val=(xv, yv), seed=0, progress=False,
                      device="cpu")
    assert history.val_elbo[-1] > history.val_elbo[0] + 1.0
    assert all(math.isfinite(v) for v in history.train_elbo)
    # the same run with another objective trains on the labels too
    h = lvm.fit(make_cvae(3), (x, y), objective=lvm.objectives.elbo(beta=0.5), epochs=2, seed=0, progress=False,
                device="cpu")
    assert len(h.train_elbo) == 2


def test_fit_on_pairs_resumes_bit_for_bit_and_refuses_other_labels(tmp_path):
    x, y = labelled_data(96, seed=5)
    kw = dict(batch_size=16, lr=3e-3, seed=1, progress=False, device="cpu")
    straight = make_cvae(4)
    lvm.fit(straight, (x, y), epochs=3, **kw)
    path = tmp_path / "cvae.pt"
    lvm.fit(make_cvae(4), (x, y), epochs=1, checkpoint=path, **kw)
    resumed = make_cvae(9)
    lvm.fit(resumed, (x, y), epochs=3, checkpoint=path, **kw)
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    with pytest.raises(ValueError, match="not the training data that checkpoint"):
        lvm.fit(make_cvae(4), (x, (y + 1) % C), epochs=4, checkpoint=path, **kw)


@pytest.mark.parametrize("y, message", [
    (torch.tensor([0.0, 1.0, 2.0, 0.0]), "integer class labels"),
    (torch.tensor([0, 1, 3, 0]), r"labels in \[0, 3\)"),
    (torch.tensor([0, -1, 2, 0]), r"labels in \[0, 3\)"),
    (torch.tensor([True, False, True, False]), "integer class labels"),
    (torch.tensor([0, 1, 2]), "one label per"),
])
def test_bad_labels_are_refused_with_a_clear_message(y, message):
    model = make_cvae()
    x, _ = labelled_data(4)
    with pytest.raises(ValueError, match=message):
        model.encode(x, y)
    with pytest.raises(ValueError, match=message):
        lvm.fit(model, (x, y), epochs=1, progress=False, device="cpu")


def test_a_missing_label_says_how_to_use_the_model():
    model = make_cvae()
    x, _y = labelled_data(4)
    for call in (lambda: model.encode(x), lambda: model.likelihood(torch.zeros(4, Z)),
                 lambda: lvm.ancestral_sample(model, 3), lambda: lvm.fit(model, x, epochs=1, progress=False)):
        with pytest.raises(ValueError, match=r"y is missing.*model.given\(y\)"):
            call()


@pytest.mark.parametrize("data, message", [
    (lambda x, y: (x, y[:3]), r"data\[1\] must hold one label per example"),
    (lambda x, y: (x, y, y), "pair"),
    (lambda x, y: (x[:, :5], y), r"data\[0\] must have shape"),
])
def test_fit_checks_the_shape_of_pairs(data, message):
    x, y = labelled_data(8)
    with pytest.raises(ValueError, match=message):
        lvm.fit(make_cvae(), data(x, y), epochs=1, progress=False, device="cpu")


def test_pairs_need_a_model_with_given():
    x, y = labelled_data(8)
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"needs a model with given\(y\)"):
        lvm.fit(lvm.VAE(D, Z, hidden=(8,)), (x, y), epochs=1, progress=False, device="cpu")


def test_bad_constructor_arguments():
    for kwargs, name in [(dict(n_classes=0), "n_classes"), (dict(n_classes=2.0), "n_classes"),
                         (dict(x_dim=0), "x_dim"), (dict(z_dim=-1), "z_dim"),
                         (dict(likelihood="poisson"), "likelihood")]:
        args = dict(x_dim=D, n_classes=C, z_dim=Z) | kwargs
        with pytest.raises(ValueError, match=name):
            lvm.ConditionalVAE(**args)
