"""lvm.TwoLevelVAE: the chain densities by hand, and the package's contract."""

import pytest
import torch
from torch.distributions import Independent, Normal

import lvm
from lvm.models.hierarchical import GaussianChain


def test_chain_log_prob_is_the_sum_of_its_two_steps_and_rsample_follows_the_order():
    first = Independent(Normal(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])), 1)

    def second(a):
        return Independent(Normal(2 * a[..., :1], torch.ones_like(a[..., :1])), 1)

    for a_last in (False, True):
        chain = GaussianChain(first, second, 1, a_last=a_last)
        torch.manual_seed(0)
        z = chain.rsample((4,))
        assert z.shape == (4, 3) and chain.event_shape == (3,)
        a, b = (z[..., 1:], z[..., :1]) if a_last else (z[..., :2], z[..., 2:])
        torch.testing.assert_close(chain.log_prob(z), first.log_prob(a) + second(a).log_prob(b))


def test_two_level_vae_densities_by_hand():
    torch.manual_seed(1)
    model = lvm.TwoLevelVAE(6, 3, 2, hidden=(5,), hidden_top=(4,))
    x = torch.rand(7, 6).bernoulli()
    q = model.encode(x)
    z = q.rsample()
    z1, z2 = z[..., :3], z[..., 3:]
    loc1, raw1 = model.encoder_1(x).chunk(2, -1)
    loc2, raw2 = model.encoder_2(z1).chunk(2, -1)
    scale = lambda raw: torch.nn.functional.softplus(raw) + 1e-4  # noqa: E731
    by_hand_q = (Normal(loc1, scale(raw1)).log_prob(z1).sum(-1) + Normal(loc2, scale(raw2)).log_prob(z2).sum(-1))
    torch.testing.assert_close(q.log_prob(z), by_hand_q)
    loc, raw = model.prior_1(z2).chunk(2, -1)
    by_hand_p = Normal(0, 1).log_prob(z2).sum(-1) + Normal(loc, scale(raw)).log_prob(z1).sum(-1)
    torch.testing.assert_close(model.prior().log_prob(z), by_hand_p)
    logits = model.decoder(z1)
    torch.testing.assert_close(model.likelihood(z).log_prob(x),
                               torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1))


def test_fit_trains_it_and_the_bounds_order_as_they_should():
    torch.manual_seed(2)
    x = (torch.rand(256, 12) < torch.linspace(0.1, 0.9, 12)).double().float()
    model = lvm.TwoLevelVAE(12, 3, 2, hidden=(16,), hidden_top=(8,))
    history = lvm.fit(model, x, epochs=15, batch_size=64, lr=3e-3, seed=0, progress=False, device="cpu")
    assert history.train_elbo[-1] > history.train_elbo[0]
    with torch.no_grad():
        q = model.encode(x)
        torch.manual_seed(3)
        assert lvm.iwae_bound(model, x, q, k=64).mean() > lvm.elbo(model, x, q, n_samples=64).mean()


def test_bad_input_is_named():
    model = lvm.TwoLevelVAE(6, 3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 6\]"):
        model.encode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="x"):
        model.encode(torch.full((2, 6), 2.0))  # not in [0, 1]
    with pytest.raises(ValueError, match=r"z must have shape \[\.\.\., 5\]"):
        model.likelihood(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="z1_dim"):
        lvm.TwoLevelVAE(6, 0, 2)


@pytest.mark.parametrize("argument, value", [("hidden", (0,)), ("hidden", "400"), ("hidden_top", (-5,)),
                                             ("hidden_top", (10.5,))])
def test_hidden_widths_are_checked_and_named(argument, value):
    # hidden=(0,) built a network with a zero-width layer (nan-free but dead), accepted without a word.
    with pytest.raises(ValueError, match=rf"{argument} must"):
        lvm.TwoLevelVAE(16, 4, 2, **{argument: value})


def test_active_units_says_why_it_cannot_measure_a_two_level_vae():
    # The chain q(z1 | x) q(z2 | z1) has no closed-form mean: a bare NotImplementedError came out of torch.
    model = lvm.TwoLevelVAE(16, 4, 2, hidden=(8,), hidden_top=(8,))
    with pytest.raises(ValueError, match="active_units needs the mean of q\\(z \\| x\\) in closed form"):
        lvm.diagnostics.active_units(model, torch.rand(10, 16).round())
