"""The chapter-6 exercise check: ``lvm.exercises.check_vae_loss`` accepts the VAE loss and explains mistakes."""

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli

from lvm.exercises import ExerciseFeedback, check_vae_loss


def kl_term(mu, sigma):
    return 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)).sum(-1)


def right(x, logits, mu, sigma):
    recon = Bernoulli(logits=logits).log_prob(x).sum(-1)
    return -(recon - kl_term(mu, sigma)).mean()


def right_with_bce_with_logits(x, logits, mu, sigma):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    return (bce + kl_term(mu, sigma)).mean()


def test_right_answers_pass(capsys):
    check_vae_loss(right)
    check_vae_loss(right_with_bce_with_logits)
    assert "✓ vae_loss" in capsys.readouterr().out


def test_check_is_deterministic_and_leaves_global_state_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    check_vae_loss(right)
    assert torch.equal(torch.rand(3), before)


def recon(x, logits):
    return Bernoulli(logits=logits).log_prob(x).sum(-1)


WRONG = {
    "per image": (lambda x, l, m, s: -(recon(x, l) - kl_term(m, s)), "one value per image"),
    "summed over batch": (lambda x, l, m, s: -(recon(x, l) - kl_term(m, s)).sum(), "summed over the batch"),
    "wrong sign": (lambda x, l, m, s: (recon(x, l) - kl_term(m, s)).mean(), "wrong sign"),
    "no KL": (lambda x, l, m, s: -recon(x, l).mean(), "KL term is missing"),
    "KL added": (lambda x, l, m, s: -(recon(x, l) + kl_term(m, s)).mean(), "KL term has the wrong sign"),
    "mean over pixels": (lambda x, l, m, s: F.binary_cross_entropy_with_logits(l, x) + kl_term(m, s).mean(),
                         "averaged over the pixels"),
    "sum over everything": (lambda x, l, m, s: F.binary_cross_entropy_with_logits(l, x, reduction="sum")
                            + kl_term(m, s).mean(), "summed over the batch but the KL"),
    "KL without half": (lambda x, l, m, s: -(recon(x, l) - 2 * kl_term(m, s)).mean(), "with the ½"),
    "log sigma": (lambda x, l, m, s: -(recon(x, l) - 0.5 * (m**2 + s**2 - 1 - torch.log(s)).sum(-1)).mean(),
                  "log σ² = 2 log σ"),
    "sigma as variance": (lambda x, l, m, s: -(recon(x, l) - 0.5 * (m**2 + s - 1 - torch.log(s)).sum(-1)).mean(),
                          "treats sigma as a variance"),
    "logits as probabilities": (lambda x, l, m, s: -((x * l.log() + (1 - x) * (1 - l).log()).sum(-1)
                                                     - kl_term(m, s)).mean(), "NaN"),
    "log of sigmoid": (lambda x, l, m, s: -((x * torch.sigmoid(l).log() + (1 - x) * (1 - torch.sigmoid(l)).log())
                                            .sum(-1) - kl_term(m, s)).mean(), "confident decoder"),
    "clamped BCE on probabilities": (lambda x, l, m, s: (F.binary_cross_entropy(torch.sigmoid(l), x,
                                                                                reduction="none").sum(-1)
                                                         + kl_term(m, s)).mean(), "confident decoder"),
    "not written": (lambda x, l, m, s: (_ for _ in ()).throw(NotImplementedError), "not written yet"),
    "returns a float": (lambda x, l, m, s: 1.0, "must return a torch.Tensor"),
    "just wrong": (lambda x, l, m, s: right(x, l, m, s) + 0.1, "Wrong value"),
}


@pytest.mark.parametrize("name", list(WRONG))
def test_typical_mistakes_get_specific_feedback(name):
    fn, message = WRONG[name]
    with pytest.raises(ExerciseFeedback, match=message):
        check_vae_loss(fn)
