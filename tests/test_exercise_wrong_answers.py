"""Every exercise check is measured by what it rejects.

For each ``lvm.exercises.check_*`` this file holds the reference answer (the chapter's solution), a right answer
written differently, and wrong answers that students really write. Each wrong answer must be rejected with a
sentence that names its mistake: the tests match the sentence, not only the failure. The mistakes are the ones
that matter in this course: a forgotten prior weight; a naive exp/log that underflows far from the data, and the
same guarded by an epsilon, a clamp or ``nan_to_num``; a transposed matrix; a factor of ½ or a sign in a KL; the
log of the mean against the mean of the log; a sum against a mean; ``.sample()`` for ``.rsample()``; a stray
``detach``; ᾱ_t against ᾱ_{t−1}; a wrong normaliser in the MIG; a stream that concatenates every chunk; an
in-place operation that overwrites a value still needed; an answer that only works for one size.

Every right answer must pass too: the reference, the ``other_right`` of each case, the ``MORE_RIGHT`` answers (as
students write them, in place, in float32, as a distribution) and the reference in float32. Each check leaves the
global random generator alone, and the references of chapters 7-9 agree with what lvm itself computes. The last
tests run each chapter's own solution cell (tagged ``solution`` in ``book/*.ipynb``) through its check, and check
that every answer that is a pair may be a tuple or a list. What a check does with its own arguments (``n_trials``,
``seed``, a stub, the memory the stream exercise measures) is in ``test_exercise_checkers.py``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, MultivariateNormal, Normal

import lvm
from lvm import exercises
from lvm.exercises import ExerciseFeedback

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    check: Callable
    reference: Callable
    other_right: Callable  # a right answer written differently from the reference
    wrong: dict[str, tuple[Callable, str]] = field(default_factory=dict)  # name: (answer, regex on the sentence)


CASES: dict[str, Case] = {}


def case(name: str, check: Callable, reference: Callable, other_right: Callable) -> Case:
    CASES[name] = Case(check, reference, other_right)
    return CASES[name]


# --- chapter 1: the mixture log-density ------------------------------------------------------------------------

def mixture_log_density(x, weights, means, stds):
    log_joint = weights.log() + Normal(means, stds).log_prob(x[:, None])
    return torch.logsumexp(log_joint, dim=-1)


def mixture_log_density_by_hand(x, weights, means, stds):
    # Components in rows, the max-shift written out, the Gaussian log-density by hand.
    z = (x[None, :] - means[:, None]) / stds[:, None]
    log_joint = weights.log()[:, None] - 0.5 * z**2 - stds.log()[:, None] - 0.5 * math.log(2 * math.pi)  # [K, n]
    peak = log_joint.max(0).values
    return peak + (log_joint - peak).exp().sum(0).log()


def _mixture_densities(x, weights, means, stds):
    return weights * Normal(means, stds).log_prob(x[:, None]).exp()  # [n, K], underflows far out


def _mixture_one_shift(x, w, m, s):
    # The max-shift by ONE number for the whole table, in the inputs' own dtype.
    terms = w.log() + Normal(m, s).log_prob(x[:, None])
    peak = terms.max()
    return peak + (terms - peak).exp().sum(-1).log()


def _mixture_one_shift_in_float64(x, w, m, s):
    return _mixture_one_shift(x.double(), w.double(), m.double(), s.double())


def _mixture_largest_term_where_it_underflows(x, w, m, s):
    terms = w.log() + Normal(m, s).log_prob(x[:, None])
    p = terms.exp().sum(-1)
    return torch.where(p > 0, p.log(), terms.max(-1).values)  # the nearest component alone where p underflows


mix = case("mixture_log_density", exercises.check_mixture_log_density, mixture_log_density,
           mixture_log_density_by_hand)
mix.wrong = {
    "prior weight forgotten": (lambda x, w, m, s: torch.logsumexp(Normal(m, s).log_prob(x[:, None]), -1),
                               "weighted by its prior weight λ_n"),
    "weight added, not its log": (lambda x, w, m, s: torch.logsumexp(w + Normal(m, s).log_prob(x[:, None]), -1),
                                  "log λ_n"),
    "naive exp then log": (lambda x, w, m, s: _mixture_densities(x, w, m, s).sum(-1).log(),
                           "underflow to zero before the log"),
    "epsilon inside the log": (lambda x, w, m, s: (_mixture_densities(x, w, m, s).sum(-1) + 1e-12).log(),
                               "small constant added before the log"),
    "nan_to_num on the log": (lambda x, w, m, s: torch.nan_to_num(_mixture_densities(x, w, m, s).sum(-1).log(),
                                                                  neginf=-1e4), "finite, but wrong"),
    "mean of the logs (Jensen)": (lambda x, w, m, s: (w * Normal(m, s).log_prob(x[:, None])).sum(-1),
                                  "weighted mean of the logs"),
    "two components only": (lambda x, w, m, s: torch.logaddexp(w[0].log() + Normal(m[0], s[0]).log_prob(x),
                                                                w[1].log() + Normal(m[1], s[1]).log_prob(x)),
                            "right for N = 2 components, but not for N = [345] components"),
    "summed over the points": (lambda x, w, m, s: mixture_log_density(x, w, m, s).sum(), "one log-density per point"),
    "keepdim=True, shape [I, 1]": (lambda x, w, m, s: torch.logsumexp(w.log() + Normal(m, s).log_prob(x[:, None]), -1,
                                                                      keepdim=True), "shape \\[I, 1\\].*keepdim"),
    "one shift for every point": (_mixture_one_shift, "right at x = 40 but return -inf at x = -45.*ONE number for "
                                                      "every point"),
    "one shift for every point, in float64": (_mixture_one_shift_in_float64, "right at x = 0 but return -inf.*ONE "
                                                                             "number for every point"),
    "largest term where the sum underflows": (_mixture_largest_term_where_it_underflows,
                                              "kept only the largest term.*comparable"),
    "p(x), not its log": (lambda x, w, m, s: mixture_log_density(x, w, m, s).exp(), "are p\\(x\\), not log p\\(x\\)"),
    "a little off": (lambda x, w, m, s: mixture_log_density(x, w, m, s) + 0.1, "Wrong values for a mixture"),
    "a list, not a tensor": (lambda x, w, m, s: [0.0], "must return a torch.Tensor, it returned list"),
}


# --- chapter 1: the responsibilities ---------------------------------------------------------------------------

def responsibilities(x, weights, means, stds):
    log_joint = weights.log() + Normal(means, stds).log_prob(x[:, None])
    return torch.softmax(log_joint, dim=-1)


def responsibilities_by_hand(x, weights, means, stds):
    log_joint = weights.log() + Normal(means, stds).log_prob(x.unsqueeze(-1))
    return (log_joint - torch.logsumexp(log_joint, dim=-1, keepdim=True)).exp()


def _naive_bayes(x, w, m, s):
    p = _mixture_densities(x, w, m, s)
    return p / p.sum(-1, keepdim=True)


def _two_component_responsibilities(x, w, m, s):
    log_odds = (w[0].log() + Normal(m[0], s[0]).log_prob(x)) - (w[1].log() + Normal(m[1], s[1]).log_prob(x))
    first = torch.sigmoid(log_odds)
    return torch.stack([first, 1 - first], dim=-1)


def _responsibilities_one_shift(x, w, m, s):
    terms = w.log() + Normal(m, s).log_prob(x[:, None])
    p = (terms - terms.max()).exp()  # one shift for the whole table
    return p / p.sum(-1, keepdim=True)


def _responsibilities_one_hot_where_0_over_0(x, w, m, s):
    terms = w.log() + Normal(m, s).log_prob(x[:, None])
    p = terms.exp()
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total, F.one_hot(terms.argmax(-1), len(w)).to(p.dtype))


resp = case("responsibilities", exercises.check_responsibilities, responsibilities, responsibilities_by_hand)
resp.wrong = {
    "prior weight forgotten": (lambda x, w, m, s: torch.softmax(Normal(m, s).log_prob(x[:, None]), -1),
                               "prior weight λ_n is missing"),
    "transposed": (lambda x, w, m, s: responsibilities(x, w, m, s).T, "transpose your answer"),
    "normalised over the points": (lambda x, w, m, s: torch.softmax(w.log() + Normal(m, s).log_prob(x[:, None]), 0),
                                   "normalised over the points"),
    "naive Bayes (NaN far away)": (_naive_bayes, "0/0 is NaN"),
    "epsilon in the denominator": (lambda x, w, m, s: _mixture_densities(x, w, m, s)
                                   / (_mixture_densities(x, w, m, s).sum(-1, keepdim=True) + 1e-300),
                                   "rows do not sum to one.*small constant added to the denominator"),
    "nan_to_num of the naive answer": (lambda x, w, m, s: torch.nan_to_num(_naive_bayes(x, w, m, s), nan=1 / len(w)),
                                       "nan_to_num.*gives a guess, not Bayes' rule"),
    "epsilon added to each density": (lambda x, w, m, s: (_mixture_densities(x, w, m, s) + 1e-30)
                                      / (_mixture_densities(x, w, m, s) + 1e-30).sum(-1, keepdim=True),
                                      "a constant added to each density"),
    "rows not normalised": (_mixture_densities, "Each row must sum to one"),
    "two components only": (_two_component_responsibilities, "this mixture has N = [345] components.*right for "
                                                             "N = 2 components"),
    "log-responsibilities": (lambda x, w, m, s: torch.log_softmax(w.log() + Normal(m, s).log_prob(x[:, None]), -1),
                             "logs of the responsibilities"),
    "one shift for every point": (_responsibilities_one_shift, "right at x = 0 but return NaN.*ONE number for every "
                                                               "point"),
    "nearest component where 0/0": (_responsibilities_one_hot_where_0_over_0, "wholly to its nearest component.*"
                                                                              "splits the point"),
    "first column only": (lambda x, w, m, s: responsibilities(x, w, m, s)[:, :1],
                          "Expected shape \\[I, N\\].*got \\[\\d+, 1\\]"),
}


# --- chapter 2: the posterior of probabilistic PCA -------------------------------------------------------------

def ppca_posterior(x, W, b, sigma):
    M = W.T @ W + sigma**2 * torch.eye(W.shape[1], dtype=W.dtype)
    M_inv = torch.linalg.inv(M)
    return (x - b) @ W @ M_inv, sigma**2 * M_inv


def ppca_posterior_through_the_data_space(x, W, b, sigma):
    # The D × D form, C = W Wᵀ + σ² I: (x − b) C⁻¹ W = (x − b) W M⁻¹ and I − Wᵀ C⁻¹ W = σ² M⁻¹ (Woodbury).
    # It inverts the big matrix, against the prompt's advice, but its values are right; returned as a list.
    C = W @ W.T + sigma**2 * torch.eye(W.shape[0], dtype=W.dtype)
    C_inv_W = torch.linalg.solve(C, W)
    return [(x - b) @ C_inv_W, torch.eye(W.shape[1], dtype=W.dtype) - W.T @ C_inv_W]


def _m(W, sigma):
    return W.T @ W + sigma**2 * torch.eye(W.shape[1], dtype=W.dtype)


def _ppca_b_twice(x, W, b, sigma):
    x -= b  # in place: x is now centred ...
    M_inv = torch.linalg.inv(_m(W, sigma))
    return (x - b) @ W @ M_inv, sigma**2 * M_inv  # ... and b is subtracted again


def _ppca_no_identity(x, W, b, sigma):
    M_inv = torch.linalg.inv(W.T @ W + sigma**2)  # σ² added to every entry: right only for D_z = 1
    return (x - b) @ W @ M_inv, sigma**2 * M_inv


def _ppca_eye_of_two(x, W, b, sigma):
    M_inv = torch.linalg.inv(W.T @ W + sigma**2 * torch.eye(2, dtype=W.dtype))  # the chapter's D_z = 2, hard-coded
    return (x - b) @ W @ M_inv, sigma**2 * M_inv


ppca = case("ppca_posterior", exercises.check_ppca_posterior, ppca_posterior, ppca_posterior_through_the_data_space)
ppca.wrong = {
    "transposed mean": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0].T, ppca_posterior(x, W, b, s)[1]),
                        "transpose it"),
    "offset b forgotten": (lambda x, W, b, s: ppca_posterior(x + b, W, b, s), "subtract the offset b"),
    "b subtracted twice (in place)": (_ppca_b_twice, "subtracted b twice.*in-place x -= b"),
    "σ² outside M": (lambda x, W, b, s: ((x - b) @ W @ torch.linalg.inv(W.T @ W + torch.eye(W.shape[1],
                                                                                          dtype=W.dtype)),
                                         ppca_posterior(x, W, b, s)[1]), "σ² belongs inside M"),
    "σ² added to every entry of M": (_ppca_no_identity, "EVERY entry of M"),
    "σ for σ² in the covariance": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0],
                                                     s * torch.linalg.inv(_m(W, s))), "you returned σ M⁻¹"),
    "precision for covariance": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0], _m(W, s) / s**2), "precision"),
    "σ² forgotten in the covariance": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0], torch.linalg.inv(_m(W, s))),
                                       "multiply it by sigma\\*\\*2"),
    "torch.eye(2) hard-coded": (_ppca_eye_of_two, "raised RuntimeError.*assume particular sizes"),
    "mean only": (lambda x, W, b, s: ppca_posterior(x, W, b, s)[0], "must return a pair \\(mean, cov\\)"),
    "σ I for σ² I in M": (lambda x, W, b, s: ((x - b) @ W @ torch.linalg.inv(W.T @ W + s * torch.eye(W.shape[1],
                                                                                               dtype=W.dtype)),
                                             ppca_posterior(x, W, b, s)[1]), "sigma\\*\\*2 I, not \\+ sigma I"),
    "σ² dropped from M (least squares)": (lambda x, W, b, s: ((x - b) @ W @ torch.linalg.inv(W.T @ W),
                                                              ppca_posterior(x, W, b, s)[1]), "least-squares"),
    "multiplied by M, not by its inverse": (lambda x, W, b, s: ((x - b) @ W @ _m(W, s), ppca_posterior(x, W, b, s)[1]),
                                            "not by M itself"),
    "mean a little off": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0] + 0.1, ppca_posterior(x, W, b, s)[1]),
                          "Wrong posterior mean"),
    "the prior's covariance I": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0], torch.eye(W.shape[1],
                                                                                             dtype=W.dtype)),
                                 "prior's covariance I"),
    "σ² outside M in the covariance": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0], s**2 * torch.linalg.inv(
        W.T @ W + torch.eye(W.shape[1], dtype=W.dtype))), "σ² belongs inside M \\(you used the identity\\)"),
    "a covariance that varies with x": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0],
                                                            ppca_posterior(x, W, b, s)[1][None]
                                                            * (1 + torch.arange(len(x)))[:, None, None]),
                                        "same for every x, but yours varies"),
    "the covariance's diagonal only": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0],
                                                           ppca_posterior(x, W, b, s)[1].diagonal()),
                                       "covariance must have shape \\[D_z, D_z\\]"),
    "covariance a little off": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0], 1.1 * ppca_posterior(x, W, b, s)[1]),
                                "Wrong posterior covariance"),
    "the mean as a list": (lambda x, W, b, s: (ppca_posterior(x, W, b, s)[0].tolist(), ppca_posterior(x, W, b, s)[1]),
                           "mean must be a torch.Tensor, got list"),
}


# --- chapter 3: the importance-sampling estimate ----------------------------------------------------------------

def importance_estimate(model, x, proposal, n_samples):
    z = proposal.sample((n_samples,))
    log_w = model.joint_log_prob(x, z) - proposal.log_prob(z)
    return torch.logsumexp(log_w, dim=0) - math.log(n_samples)


def importance_estimate_shifted(model, x, proposal, n_samples):
    # rsample, the prior and the likelihood separately, and the max-shift by hand.
    z = proposal.rsample(torch.Size([n_samples]))
    log_w = model.prior().log_prob(z) + model.likelihood(z).log_prob(x) - proposal.log_prob(z)
    peak = log_w.max(dim=0).values
    return peak + (log_w - peak).exp().mean(dim=0).log()


def _log_w(model, x, proposal, n_samples):
    z = proposal.sample((n_samples,))
    return model.joint_log_prob(x, z) - proposal.log_prob(z)


def _importance_fixed_draws(n_fixed):
    def estimate(model, x, proposal, n_samples):  # n_samples ignored
        return torch.logsumexp(_log_w(model, x, proposal, n_fixed), 0) - math.log(n_fixed)

    return estimate


def _importance_one_shift(model, x, proposal, n_samples):
    log_w = _log_w(model, x, proposal, n_samples)
    peak = log_w.max()  # one shift for every point
    return peak + (log_w - peak).exp().mean(0).log()


def _importance_largest_where_it_underflows(model, x, proposal, n_samples):
    log_w = _log_w(model, x, proposal, n_samples)
    mean = log_w.exp().mean(0)
    return torch.where(mean > 0, mean.log(), log_w.max(0).values)


imp = case("importance_estimate", exercises.check_importance_estimate, importance_estimate,
           importance_estimate_shifted)
imp.wrong = {
    "mean of the log-weights (ELBO)": (lambda m, x, r, s: _log_w(m, x, r, s).mean(0), "averaged the log-weights"),
    "sum of the weights, not the mean": (lambda m, x, r, s: torch.logsumexp(_log_w(m, x, r, s), 0),
                                         "summed the weights"),
    "prior forgotten": (lambda m, x, r, s: (lambda z: torch.logsumexp(m.likelihood(z).log_prob(x) - r.log_prob(z), 0)
                                            - math.log(s))(r.sample((s,))), "log p\\(z\\)"),
    "proposal density forgotten": (lambda m, x, r, s: (lambda z: torch.logsumexp(m.joint_log_prob(x, z), 0)
                                                       - math.log(s))(r.sample((s,))), "proposal.log_prob"),
    "naive exp then log": (lambda m, x, r, s: _log_w(m, x, r, s).exp().mean(0).log(), "underflows to 0"),
    "epsilon inside the log": (lambda m, x, r, s: (_log_w(m, x, r, s).exp().mean(0) + 1e-300).log(),
                               "finite, but wrong.*small constant"),
    "clamped before the log": (lambda m, x, r, s: _log_w(m, x, r, s).exp().mean(0).clamp_min(1e-300).log(),
                               "finite, but wrong.*clamp"),
    "one draw": (lambda m, x, r, s: importance_estimate(m, x, r, 1), "six standard errors"),
    "one estimate per draw": (_log_w, "Average over the samples"),
    "n_samples ignored, 1000 draws": (_importance_fixed_draws(1000), "more draws than n_samples"),
    "n_samples ignored, 500 draws": (_importance_fixed_draws(500), "more draws than n_samples"),
    "log-sum-exp divided by S": (lambda m, x, r, s: torch.logsumexp(_log_w(m, x, r, s), 0) / s,
                                 "divided the log-sum-exp by S"),
    "divided by S − 1": (lambda m, x, r, s: torch.logsumexp(_log_w(m, x, r, s), 0) - math.log(s - 1), "by S − 1"),
    "one shift for every point": (_importance_one_shift, "one shift for all the points"),
    "sample(n_samples) without a shape": (lambda m, x, r, s: (lambda z: torch.logsumexp(m.joint_log_prob(x, z)
                                                                                         - r.log_prob(z), 0)
                                                             - math.log(s))(r.sample(s)),
                                          "sample takes a shape.*proposal.sample\\(\\(n_samples,\\)\\)"),
    "largest log-weight where the mean underflows": (_importance_largest_where_it_underflows,
                                                     "D = 784 with a proposal twice as wide.*the largest log-weight"),
    "p̂(x), not its log": (lambda m, x, r, s: importance_estimate(m, x, r, s).exp(), "are p̂\\(x\\), not log p̂\\(x\\)"),
    "a list, from .tolist()": (lambda m, x, r, s: importance_estimate(m, x, r, s).tolist(),
                               "must return a torch.Tensor, it returned list"),
}


# --- chapter 4: the KL divergence between diagonal Gaussians ----------------------------------------------------

def gaussian_kl(mu_q, std_q, mu_p, std_p):
    per_dim = torch.log(std_p / std_q) + (std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2) - 0.5
    return per_dim.sum(-1)


def gaussian_kl_from_variances(mu_q, std_q, mu_p, std_p):
    var_q, var_p = std_q**2, std_p**2
    return 0.5 * (var_p.log() - var_q.log() + (var_q + (mu_q - mu_p) ** 2) / var_p - 1).sum(dim=1)


def _kl_aliased(mu_q, std_q, mu_p, std_p):
    var_q, var_p = std_q.pow_(2), std_p.pow_(2)  # in place: std_q and std_p now hold the variances ...
    return (torch.log(std_p / std_q) + (var_q + (mu_q - mu_p) ** 2) / (2 * var_p) - 0.5).sum(-1)  # ... log of those


kl = case("gaussian_kl", exercises.check_gaussian_kl, gaussian_kl, gaussian_kl_from_variances)
kl.wrong = {
    "q and p swapped": (lambda a, b, c, d: gaussian_kl(c, d, a, b), "swapped"),
    "½ missing from the log of the variances": (lambda a, b, c, d: (torch.log(d**2 / b**2) + (b**2 + (a - c) ** 2)
                                                                    / (2 * d**2) - 0.5).sum(-1),
                                                "log term is twice too large.*keep the ½"),
    "sign of the log term": (lambda a, b, c, d: (torch.log(b / d) + (b**2 + (a - c) ** 2) / (2 * d**2) - 0.5).sum(-1),
                             "log term has the wrong sign"),
    "minus the KL": (lambda a, b, c, d: -gaussian_kl(a, b, c, d), "minus the divergence"),
    "½ missing from the quadratic term": (lambda a, b, c, d: (torch.log(d / b) + (b**2 + (a - c) ** 2) / d**2
                                                              - 0.5).sum(-1), "quadratic term"),
    "constant −1": (lambda a, b, c, d: gaussian_kl(a, b, c, d) - a.shape[-1] / 2, "too small by d/2"),
    "mean over the coordinates": (lambda a, b, c, d: (torch.log(d / b) + (b**2 + (a - c) ** 2) / (2 * d**2)
                                                      - 0.5).mean(-1), "averaged over the \\d+ coordinates"),
    "standard deviations used as variances": (lambda a, b, c, d: (0.5 * torch.log(d / b) + (b + (a - c) ** 2) / (2 * d)
                                                                  - 0.5).sum(-1), "treated std_q and std_p as "
                                                                                  "variances"),
    "squared in place, then logged": (_kl_aliased, "squared a standard deviation in place"),
    "2σ_p in the denominator": (lambda a, b, c, d: (torch.log(d / b) + (b**2 + (a - c) ** 2) / (2 * d) - 0.5).sum(-1),
                                "divides by 2 σ_p, the standard deviation"),
    "the VAE's KL to N(0, I)": (lambda a, b, c, d: 0.5 * (a**2 + b**2 - 1 - torch.log(b**2)).sum(-1),
                                "KL to N\\(0, I\\).*p here has mean mu_p and standard deviation std_p"),
    "summed over the rows": (lambda a, b, c, d: (torch.log(d / b) + (b**2 + (a - c) ** 2) / (2 * d**2)
                                                 - 0.5).sum(0), "summed over the rows"),
    "one divergence per coordinate": (lambda a, b, c, d: torch.log(d / b) + (b**2 + (a - c) ** 2) / (2 * d**2) - 0.5,
                                      "one divergence per coordinate.*sum over the last dimension"),
    "constant +½ for −½": (lambda a, b, c, d: gaussian_kl(a, b, c, d) + a.shape[-1] / 2, "too large by d/2"),
    "σ for σ² in the quadratic term only": (lambda a, b, c, d: (torch.log(d / b) + (b + (a - c) ** 2) / (2 * d)
                                                                - 0.5).sum(-1), "Wrong values. For the first row"),
    "a list, from .tolist()": (lambda a, b, c, d: gaussian_kl(a, b, c, d).tolist(),
                               "must return a torch.Tensor, it returned list"),
}


# --- chapter 5: the score-function estimates --------------------------------------------------------------------

def score_function_estimates(f, z, mu, std):
    values = f(z)[:, None]
    return values * (z - mu) / std**2, values * ((z - mu) ** 2 / std**3 - 1 / std)


def score_function_estimates_standardised(f, z, mu, std):
    # Through the standardised noise ε = (z − μ) / σ, returned as a list.
    eps = (z - mu) / std
    values = f(z).unsqueeze(-1)
    return [values * eps / std, values * (eps**2 - 1) / std]


def _sf_mu(f, z, mu, std, new_mu):
    return new_mu, score_function_estimates(f, z, mu, std)[1]


def _sf_std(f, z, mu, std, new_std):
    return score_function_estimates(f, z, mu, std)[0], new_std


def _sf_shifted_in_place(f, z, mu, std):
    z -= mu  # in place: z is now z − μ ...
    values = f(z)[:, None]  # ... so f is evaluated at the wrong points
    return values * z / std**2, values * (z**2 / std**3 - 1 / std)


sf = case("score_function_estimator", exercises.check_score_function_estimator, score_function_estimates,
          score_function_estimates_standardised)
sf.wrong = {
    "sign of grad_mu": (lambda f, z, m, s: _sf_mu(f, z, m, s, -f(z)[:, None] * (z - m) / s**2), "wrong sign"),
    "divided by σ, not σ²": (lambda f, z, m, s: _sf_mu(f, z, m, s, f(z)[:, None] * (z - m) / s),
                            "divided by the variance σ², not by σ"),
    "−1/σ forgotten": (lambda f, z, m, s: _sf_std(f, z, m, s, f(z)[:, None] * (z - m) ** 2 / s**3), "misses the −1/σ"),
    "score alone": (lambda f, z, m, s: _sf_mu(f, z, m, s, (z - m) / s**2), "score alone"),
    "averaged over the samples": (lambda f, z, m, s: tuple(g.mean(0) for g in score_function_estimates(f, z, m, s)),
                                  "averaged over the samples"),
    "gradient with respect to the variance": (lambda f, z, m, s: _sf_std(
        f, z, m, s, f(z)[:, None] * ((z - m) ** 2 / s**4 - 1 / s**2) / 2), "with respect to the variance σ²"),
    "z shifted in place before f(z)": (_sf_shifted_in_place, "in-place z -= mu"),
    "pathwise gradient": (lambda f, z, m, s: _sf_mu(f, z, m, s, 2 * z), "pathwise"),
    "f(z) without a column": (lambda f, z, m, s: (f(z) * (z - m) / s**2, f(z) * ((z - m) ** 2 / s**3 - 1 / s)),
                              "give f\\(z\\) a column first"),
    "sign of grad_std": (lambda f, z, m, s: _sf_std(f, z, m, s, -score_function_estimates(f, z, m, s)[1]),
                         "grad_std has the wrong sign"),
    "grad_std: the score alone": (lambda f, z, m, s: _sf_std(f, z, m, s, (z - m) ** 2 / s**3 - 1 / s),
                                  "grad_std is the score alone"),
    "grad_std: ((z − μ)² − 1) / σ": (lambda f, z, m, s: _sf_std(f, z, m, s, f(z)[:, None] * ((z - m) ** 2 - 1) / s),
                                    "grad_std is wrong for f\\(z\\) = Σ z²"),
    "grad_mu only, not a pair": (lambda f, z, m, s: score_function_estimates(f, z, m, s)[0],
                                 "must return a pair \\(grad_mu, grad_std\\)"),
}


# --- chapter 5: the reparameterised sample ----------------------------------------------------------------------

def reparameterised_sample(mu, scale_tril, eps):
    return mu + eps @ scale_tril.T


def reparameterised_sample_batched(mu, scale_tril, eps):
    return (scale_tril @ eps.unsqueeze(-1)).squeeze(-1) + mu  # L ε_s for every s by a batched product


def _sample_without_noise(mu, scale_tril, eps):
    return MultivariateNormal(mu, scale_tril=scale_tril).sample((eps.shape[0],))


def _rsample_without_noise(mu, scale_tril, eps):
    return MultivariateNormal(mu, scale_tril=scale_tril).rsample((eps.shape[0],))


def _under_no_grad(mu, scale_tril, eps):
    with torch.no_grad():
        return mu + eps @ scale_tril.T


class _DoubledGradient(torch.autograd.Function):
    """The identity with a gradient twice too large: right values, wrong gradients."""

    @staticmethod
    def forward(ctx, z):
        return z.clone()

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


rep = case("reparameterised_sample", exercises.check_reparameterised_sample, reparameterised_sample,
           reparameterised_sample_batched)
rep.wrong = {
    "Lᵀ for L (transposed)": (lambda m, L, e: m + e @ L, "applied Lᵀ"),
    "covariance for its factor": (lambda m, L, e: m + e @ (L @ L.T).T, "covariance L Lᵀ"),
    ".sample() for .rsample()": (_sample_without_noise, "\\.sample\\(\\)"),
    "rsample's own noise": (_rsample_without_noise, "two different z: it draws its own noise \\(rsample"),
    "stray detach": (lambda m, L, e: (m + e @ L.T).detach(), "no gradient.*\\.detach\\(\\)"),
    "mu detached": (lambda m, L, e: m.detach() + e @ L.T, "no gradient flows back to mu.*stray \\.detach\\(\\)"),
    "scale_tril detached": (lambda m, L, e: m + e @ L.T.detach(), "no gradient flows back to scale_tril"),
    "under no_grad": (_under_no_grad, "no gradient.*torch.no_grad\\(\\)"),
    "diagonal only": (lambda m, L, e: m + e * L.diagonal(), "only the diagonal"),
    "L⁻¹ for L": (lambda m, L, e: m + e @ torch.linalg.inv(L).T, "L⁻¹, a factor of the precision"),
    "elementwise square root of the covariance": (lambda m, L, e: m + e @ (L @ L.T).sqrt().T, "element by element"),
    "Cholesky factor of L": (lambda m, L, e: m + e @ torch.linalg.cholesky(L).T, "already the Cholesky factor"),
    "first sample only": (lambda m, L, e: (m + e @ L.T)[0], "one sample per row of eps, shape \\[S, d\\]"),
    "a list, from .tolist()": (lambda m, L, e: (m + e @ L.T).tolist(), "must return a torch.Tensor, it returned list"),
    "right values, gradients twice too large": (lambda m, L, e: _DoubledGradient.apply(m + e @ L.T),
                                                "right values, but its gradients with respect to mu and scale_tril "
                                                "are wrong"),
}


# --- chapter 6: the VAE loss ------------------------------------------------------------------------------------

def _kl_term(mu, sigma):
    return 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)).sum(-1)


def _recon(x, logits):
    return Bernoulli(logits=logits).log_prob(x).sum(-1)


def vae_loss(x, logits, mu, sigma):
    return -(_recon(x, logits) - _kl_term(mu, sigma)).mean()


def vae_loss_with_bce(x, logits, mu, sigma):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = (0.5 * mu.pow(2) + 0.5 * sigma.pow(2) - 0.5 - sigma.log()).sum(dim=1)
    return (bce + kl).sum() / x.shape[0]


def _vae_sigma_twice(x, logits, mu, sigma):
    sigma.pow_(2)  # in place: sigma now holds the variance ...
    kl = 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)).sum(-1)  # ... and is squared again
    return -(_recon(x, logits) - kl).mean()


def _vae_naive_softplus(x, logits, mu, sigma):
    recon = (x * logits - torch.log(1 + torch.exp(logits))).sum(-1)  # exp(100) is inf in float32
    return -(recon - _kl_term(mu, sigma)).mean()


def _vae_log_sigmoid_both_ways(x, logits, mu, sigma):
    recon = (x * torch.sigmoid(logits).log() + (1 - x) * torch.sigmoid(-logits).log()).sum(-1)  # 0 × −inf in float32
    return -(recon - _kl_term(mu, sigma)).mean()


vae = case("vae_loss", exercises.check_vae_loss, vae_loss, vae_loss_with_bce)
vae.wrong = {
    "summed over the batch": (lambda x, l, m, s: -(_recon(x, l) - _kl_term(m, s)).sum(), "summed over the batch"),
    "KL added to the ELBO": (lambda x, l, m, s: -(_recon(x, l) + _kl_term(m, s)).mean(), "KL term has the wrong sign"),
    "KL without its ½": (lambda x, l, m, s: -(_recon(x, l) - 2 * _kl_term(m, s)).mean(), "with the ½"),
    "KL detached": (lambda x, l, m, s: -(_recon(x, l) - _kl_term(m, s).detach()).mean(),
                    "no gradient reaches mu: the KL term was cut from the graph"),
    "reconstruction detached": (lambda x, l, m, s: -(_recon(x, l).detach() - _kl_term(m, s)).mean(),
                                "no gradient reaches logits: the reconstruction term"),
    "rebuilt from .item()": (lambda x, l, m, s: torch.tensor(vae_loss(x, l, m, s).item()),
                             "right value but no gradient"),
    "log of the sigmoid": (lambda x, l, m, s: -((x * torch.sigmoid(l).log() + (1 - x) * (1 - torch.sigmoid(l)).log())
                                                .sum(-1) - _kl_term(m, s)).mean(), "confident decoder"),
    "epsilon inside the log of the sigmoid": (lambda x, l, m, s: -((x * (torch.sigmoid(l) + 1e-8).log()
                                                                    + (1 - x) * (1 - torch.sigmoid(l) + 1e-8).log())
                                                                   .sum(-1) - _kl_term(m, s)).mean(),
                                              "small constant inside the log"),
    "σ squared in place, then again": (_vae_sigma_twice, "σ⁴.*in place"),
    "mean over the pixels": (lambda x, l, m, s: F.binary_cross_entropy_with_logits(l, x) + _kl_term(m, s).mean(),
                             "averaged over the pixels"),
    "naive softplus log(1 + exp(l))": (_vae_naive_softplus, "float32.*exp\\(100\\) overflows"),
    "log sigmoid of ±logits": (_vae_log_sigmoid_both_ways, "float32.*sigmoid\\(-120\\) rounds to 0"),
    "KL summed over the batch, reconstruction averaged": (
        lambda x, l, m, s: -(_recon(x, l).mean() - _kl_term(m, s).sum()),
                                                          "KL term is summed over the batch but the reconstruction "
                                                          "term is averaged"),
    "Normal(mu, sigma**2) in the KL": (lambda x, l, m, s: -(_recon(x, l) - torch.distributions.kl_divergence(
        Normal(m, s**2), Normal(0.0, 1.0)).sum(-1)).mean(), "squared twice.*Normal\\(mu, sigma\\*\\*2\\)"),
    "logits as probabilities": (lambda x, l, m, s: -(Bernoulli(probs=l).log_prob(x).sum(-1) - _kl_term(m, s)).mean(),
                                "treat the logits as probabilities"),
    "binary_cross_entropy on the logits": (lambda x, l, m, s: F.binary_cross_entropy(l, x, reduction="sum") / len(x)
                                           + _kl_term(m, s).mean(), "treat the logits as probabilities"),
    "one value per image": (lambda x, l, m, s: -(_recon(x, l) - _kl_term(m, s)), "one value per image, shape \\[3\\]"),
    "the ELBO, not minus the ELBO": (lambda x, l, m, s: (_recon(x, l) - _kl_term(m, s)).mean(),
                                     "loss has the wrong sign.*MINUS the ELBO"),
    "KL forgotten": (lambda x, l, m, s: -_recon(x, l).mean(), "KL term is missing"),
    "BCE summed over everything, KL averaged": (lambda x, l, m, s: F.binary_cross_entropy_with_logits(
        l, x, reduction="sum") + _kl_term(m, s).mean(), "reconstruction term is summed over the batch but the KL term "
                                                        "is averaged"),
    "log σ for log σ²": (lambda x, l, m, s: -(_recon(x, l) - 0.5 * (m**2 + s**2 - 1 - torch.log(s)).sum(-1)).mean(),
                        "uses log σ where it needs log σ² = 2 log σ"),
    "σ as a variance": (lambda x, l, m, s: -(_recon(x, l) - 0.5 * (m**2 + s - 1 - torch.log(s)).sum(-1)).mean(),
                        "treats sigma as a variance"),
    "log of the logits as probabilities (NaN)": (lambda x, l, m, s: -((x * l.log() + (1 - x) * (1 - l).log()).sum(-1)
                                                                      - _kl_term(m, s)).mean(),
                                                 "loss is NaN.*treat the logits as probabilities"),
    "clamped BCE on the sigmoid": (lambda x, l, m, s: (F.binary_cross_entropy(torch.sigmoid(l), x, reduction="none")
                                                       .sum(-1) + _kl_term(m, s)).mean(),
                                   "confident decoder.*a clamp makes it finite but wrong"),
    "a float": (lambda x, l, m, s: 1.0, "must return a torch.Tensor, it returned float"),
    "a little off": (lambda x, l, m, s: vae_loss(x, l, m, s) + 0.1, "Wrong value: expected"),
}


# --- chapter 7: the estimate from a stream of chunks ------------------------------------------------------------

def log_mean_exp_stream(chunks):
    total, count = None, 0
    for log_w in chunks:
        chunk = torch.logsumexp(log_w, dim=0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
        count += log_w.shape[0]
    return total - math.log(count)


def log_mean_exp_stream_of_chunk_totals(chunks):
    # Keeps one log-sum-exp per chunk (J values per point, not K) and combines them at the end: still a stream.
    totals, count = [], 0
    for log_w in chunks:
        totals.append(torch.logsumexp(log_w, dim=0))
        count += len(log_w)
    return torch.logsumexp(torch.stack(totals), dim=0) - math.log(count)


def _stream_concatenated(chunks):
    log_w = torch.cat(list(chunks))
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _stream_concatenated_step_by_step(chunks):
    log_w = None
    for c in chunks:
        log_w = c if log_w is None else torch.cat([log_w, c])
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _stream_listed(chunks):
    chunks = list(chunks)  # every chunk held at once, then a correct loop over them
    return log_mean_exp_stream(iter(chunks))


def _stream_of_exps(chunks, eps=0.0):
    total, count = 0.0, 0
    for log_w in chunks:
        total = total + log_w.exp().sum(0)
        count += log_w.shape[0]
    return (total / count + eps).log()


def _stream_equal_sizes(chunks):
    total, n_chunks, size = None, 0, None
    for log_w in chunks:
        size = size or log_w.shape[0]  # every chunk assumed as big as the first
        chunk = torch.logsumexp(log_w, dim=0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
        n_chunks += 1
    return total - math.log(n_chunks * size)


def _stream_mean_of_chunk_estimates(chunks):
    return torch.stack([torch.logsumexp(c, 0) - math.log(c.shape[0]) for c in chunks]).mean(0)


def _stream_numpy_concatenated(chunks):
    log_w = np.concatenate([c.numpy() for c in chunks])
    return torch.logsumexp(torch.from_numpy(log_w), 0) - math.log(len(log_w))


def _stream_rows_as_python_floats(chunks):
    rows = []
    for c in chunks:
        rows += c.tolist()
    log_w = torch.tensor(rows, dtype=torch.float64)
    return torch.logsumexp(log_w, 0) - math.log(len(log_w))


def _stream_kept_as(copy):
    def answer(chunks):
        kept = [copy(c) for c in chunks]  # every chunk held, as a copy, then a correct loop
        return log_mean_exp_stream(iter(kept))

    return answer


def _stream_one_shift_per_chunk(chunks):
    total, count = None, 0
    for log_w in chunks:
        peak = log_w.max()  # one number for the whole chunk
        chunk = peak + (log_w - peak).exp().sum(0).log()
        total = chunk if total is None else torch.logaddexp(total, chunk)
        count += log_w.shape[0]
    return total - math.log(count)


def _stream_shift_of_the_first_chunk(chunks):
    peak, total, count = None, 0, 0
    for log_w in chunks:
        if peak is None:
            peak = log_w.max(0).values  # fixed by the first chunk
        total = total + (log_w - peak).exp().sum(0)
        count += log_w.shape[0]
    return peak + total.log() - math.log(count)


def _stream_shift_of_the_first_chunk_in_float32(chunks):
    s, count, m0 = 0, 0, None
    for c in chunks:
        c = c.float()
        if m0 is None:
            m0 = c.max(0).values
        s += (c - m0).exp().sum(0)  # in ordinary space: exp overflows 88.7 nats above the first chunk's maximum
        count += c.shape[0]
    return m0 + (s / count).log()


def _stream_count_of_the_last_chunk(chunks):
    total, count = None, 0
    for log_w in chunks:
        chunk = torch.logsumexp(log_w, 0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
        count = log_w.shape[0]  # = for +=: K is the last chunk's size
    return total - math.log(count)


def _stream_len(chunks):
    total = None
    for log_w in chunks:
        chunk = torch.logsumexp(log_w, 0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
    return total - math.log(len(chunks))


def _stream_two_passes(chunks):
    count = sum(c.shape[0] for c in chunks)  # the first pass reads the whole stream ...
    total = None
    for log_w in chunks:  # ... so this one finds nothing
        chunk = torch.logsumexp(log_w, 0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
    return total - math.log(count)


def _stream_counted_from(start):
    def answer(chunks):
        total, count = None, start  # count = 1: one draw too many; -1: one too few
        for log_w in chunks:
            chunk = torch.logsumexp(log_w, dim=0)
            total = chunk if total is None else torch.logaddexp(total, chunk)
            count += log_w.shape[0]
        return total - math.log(count)

    return answer


def _stream_sized_as_the_last_chunk(chunks):
    total, size, n_chunks = None, 0, 0
    for log_w in chunks:
        chunk = torch.logsumexp(log_w, dim=0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
        size, n_chunks = log_w.shape[0], n_chunks + 1  # every chunk assumed as big as the last
    return total - math.log(size * n_chunks)


def _stream_divided_by_the_chunk_count(chunks):
    chunks = list(chunks)
    return torch.logsumexp(torch.cat(chunks), 0) - math.log(len(chunks))


def _stream_counted_first_then_summed(chunks):
    count = sum(len(c) for c in chunks)  # the first pass reads the whole stream ...
    return log_mean_exp_stream(chunks) - math.log(count)  # ... and the correct loop finds nothing


stream = case("log_mean_exp_stream", exercises.check_log_mean_exp_stream, log_mean_exp_stream,
              log_mean_exp_stream_of_chunk_totals)
stream.wrong = {
    "every chunk concatenated": (_stream_concatenated, "built one tensor of the draws of several chunks"),
    "concatenated chunk by chunk": (_stream_concatenated_step_by_step, "built one tensor of the draws"),
    "every chunk kept in a list": (_stream_listed, "kept 48 of the 48 chunks in memory at once"),
    "sum of the weights, not the mean": (lambda chunks: torch.logsumexp(torch.cat(list(chunks)), 0),
                                         "too large by log K"),
    "mean of the chunks' estimates": (_stream_mean_of_chunk_estimates, "averaged the chunks' estimates"),
    "mean of the log-weights (ELBO)": (lambda chunks: torch.cat(list(chunks)).mean(0), "that is the ELBO"),
    "naive exp then log": (_stream_of_exps, "underflows to 0 and its log is −inf"),
    "epsilon inside the log": (lambda chunks: _stream_of_exps(chunks, eps=1e-300), "finite, but wrong.*small constant"),
    "equal chunk sizes assumed": (_stream_equal_sizes, "assumes that every chunk has 2 draws"),
    "np.concatenate of the chunks": (_stream_numpy_concatenated, "held copies of about \\d+ of the 48 chunks"),
    "rows collected with .tolist()": (_stream_rows_as_python_floats, "held copies of about \\d+ of the 48 chunks"),
    "every chunk kept as .float()": (_stream_kept_as(lambda c: c.float()), "held copies of about \\d+ of the 48"),
    "every chunk kept as .clone()": (_stream_kept_as(lambda c: c.clone()), "held copies of about \\d+ of the 48"),
    "every chunk kept as a NumPy view": (_stream_kept_as(lambda c: torch.from_numpy(c.numpy())), "kept 48 of the 48"),
    "one shift per chunk": (_stream_one_shift_per_chunk, "shift each chunk by ONE number"),
    "shift fixed by the first chunk": (_stream_shift_of_the_first_chunk,
                                       "1000 nats higher.*running total overflows.*must stay in log space"),
    "shift fixed by the first chunk, in float32": (_stream_shift_of_the_first_chunk_in_float32,
                                                   "running total overflows.*88.7 in float32.*must stay in log space"),
    "count = for count +=": (_stream_count_of_the_last_chunk, "K is the size of the last chunk only"),
    "len(chunks)": (_stream_len, "can be read only once"),
    "log_w.numel() counted": (lambda chunks: (lambda parts: torch.logsumexp(torch.stack([p[0] for p in parts]), 0)
                                              - math.log(sum(p[1] for p in parts)))(
        [(torch.logsumexp(c, 0), c.numel()) for c in chunks]), "counted the log-weights of all points"),
    "two passes over the stream": (_stream_two_passes, "read the stream a second time"),
    "one value per draw": (lambda chunks: torch.cat(list(chunks)), "one value per draw"),
    "reduced over the points too": (lambda chunks: _stream_concatenated(chunks).mean(),
                                    "got \\[\\]. You reduced over the data points too"),
    "divided by the number of chunks": (_stream_divided_by_the_chunk_count, "divided by the number of chunks"),
    # The first stream has chunks of 2, 6 and 5 draws, K = 13. With sizes 2, 5 and 4 (K = 11), a count from 1,
    # 12 = 4 × 3, was told that it assumed every chunk had 4 draws.
    "count from 1": (_stream_counted_from(1), "off by one: you divided by 14"),
    "count from −1": (_stream_counted_from(-1), "off by one: you divided by 12"),
    "every chunk as big as the last": (_stream_sized_as_the_last_chunk, "assumes that every chunk has 5 draws"),
    "concatenated, then exp and log": (lambda chunks: torch.cat(list(chunks)).exp().mean(0).log(),
                                       "underflows to 0 and its log is −inf"),
    "a little off": (lambda chunks: log_mean_exp_stream(chunks) + 0.01, "Wrong values. For chunk sizes"),
    "counted in a first pass, summed in a second": (_stream_counted_first_then_summed,
                                                    "read the stream a second time after it had ended"),
    "the stream indexed": (lambda chunks: log_mean_exp_stream(iter([chunks[0]])),
                           "not subscriptable.*no len\\(\\), no indexing"),
}


# --- chapter 8: the mutual-information gap ----------------------------------------------------------------------

def mutual_information_gap(info, entropy):
    best, second = info.topk(2, dim=0).values
    return (best - second) / entropy


def mutual_information_gap_by_sorting(info, entropy):
    ranked = info.sort(dim=0, descending=True).values
    return (ranked[0] - ranked[1]) * entropy.reciprocal()


mig = case("mutual_information_gap", exercises.check_mutual_information_gap, mutual_information_gap,
           mutual_information_gap_by_sorting)
mig.wrong = {
    "not normalised": (lambda i, h: i.topk(2, dim=0).values[0] - i.topk(2, dim=0).values[1], "not normalised"),
    "divided by the largest information": (lambda i, h: (i.topk(2, 0).values[0] - i.topk(2, 0).values[1])
                                           / i.max(0).values, "Wrong normaliser.*largest mutual information"),
    "divided by the total entropy": (lambda i, h: (i.topk(2, 0).values[0] - i.topk(2, 0).values[1]) / h.sum(),
                                     "Wrong normaliser.*sum of all the factors' entropies"),
    "multiplied by the entropy": (lambda i, h: (i.topk(2, 0).values[0] - i.topk(2, 0).values[1]) * h,
                                  "multiplied the gaps by the entropies"),
    "the two smallest": (lambda i, h: (i.sort(0).values[0] - i.sort(0).values[1]) / h, "two SMALLEST"),
    "largest minus the mean": (lambda i, h: (i.max(0).values - i.mean(0)) / h, "SECOND"),
    "gap per code dimension (transposed)": (lambda i, h: i.topk(2, dim=1).values[:, 0] - i.topk(2, dim=1).values[:, 1],
                                            "gap of each code dimension"),
    "averaged over the factors": (lambda i, h: mutual_information_gap(i, h).mean(), "averaged over the factors"),
    "the largest alone, nothing subtracted": (lambda i, h: i.max(0).values / h, "without subtracting the second"),
    "10% too large": (lambda i, h: mutual_information_gap(i, h) * 1.1, "Wrong values: expected"),
    # A tensor is expected; the gradient plays no part here, so the message must not talk about it.
    "a NumPy array": (lambda i, h: mutual_information_gap(i, h).numpy(),
                      r"^(?!.*gradient).*must return a torch\.Tensor.*returned ndarray"),
    "a list, from .tolist()": (lambda i, h: mutual_information_gap(i, h).tolist(),
                               r"^(?!.*gradient).*must return a torch\.Tensor.*returned list"),
}


# --- chapter 9: the forward marginal of a diffusion ------------------------------------------------------------

def forward_marginal(alphas):
    bars = torch.cumprod(alphas, dim=0)
    return bars.sqrt(), 1 - bars


def forward_marginal_in_a_loop(alphas):
    bars, product = [], torch.ones((), dtype=alphas.dtype)
    for a in alphas:
        product = product * a
        bars.append(product)
    bars = torch.stack(bars)
    return [bars.sqrt(), 1 - bars]  # a list is a pair too


def _one_step_late(alphas):
    bars = torch.cat([torch.ones(1, dtype=alphas.dtype), torch.cumprod(alphas, 0)[:-1]])  # ᾱ_{t−1}
    return bars.sqrt(), 1 - bars


def _sqrt_in_place(alphas):
    bars = torch.cumprod(alphas, dim=0)
    scale = bars.sqrt_()  # in place: bars now holds √ᾱ ...
    return scale, 1 - bars  # ... so this is 1 − √ᾱ


fwd = case("forward_marginal", exercises.check_forward_marginal, forward_marginal, forward_marginal_in_a_loop)
fwd.wrong = {
    "each step's own α_t": (lambda a: (a.sqrt(), 1 - a), "own α_t"),
    "ᾱ_{t−1} for ᾱ_t": (_one_step_late, "Off by one step.*ᾱ_\\{t−1\\}"),
    "ᾱ_t not square-rooted": (lambda a: (torch.cumprod(a, 0), 1 - torch.cumprod(a, 0)), "scaled by √ᾱ_t"),
    "standard deviation for variance": (lambda a: (torch.cumprod(a, 0).sqrt(), (1 - torch.cumprod(a, 0)).sqrt()),
                                        "standard deviation"),
    "noise variances added up": (lambda a: (torch.cumprod(a, 0).sqrt(), torch.cumsum(1 - a, 0)),
                                 "do not simply add up"),
    "sqrt_ in place, then 1 − ᾱ": (_sqrt_in_place, "in-place sqrt_\\(\\)"),
    "stacked into one tensor": (lambda a: torch.stack(forward_marginal(a)), "must return a pair \\(scale, variance\\)"),
    "variance 1 − scale": (lambda a: (lambda s: (s, 1 - s))(torch.cumprod(a.sqrt(), 0)),
                           "subtracted the scale √ᾱ_t from 1"),
    "noise scale for the signal scale": (lambda a: (lambda b: ((1 - b).sqrt(), 1 - b))(torch.cumprod(a, 0)),
                                         "standard deviation of the noise"),
    "(variance, scale) swapped": (lambda a: (lambda b: (1 - b, b.sqrt()))(torch.cumprod(a, 0)), "swapped"),
    "ᾱ_t alone, not a pair": (lambda a: torch.cumprod(a, 0), "must return a pair \\(scale, variance\\)"),
    "one scale only": (lambda a: (torch.cumprod(a, 0).sqrt()[:1], 1 - torch.cumprod(a, 0)),
                       "Expected two tensors of shape \\[4\\], one value per step; got \\[1\\]"),
    "scale 1% too large": (lambda a: (torch.cumprod(a, 0).sqrt() * 1.01, 1 - torch.cumprod(a, 0)),
                           "Wrong values for alphas"),
}


# --- the tests ----------------------------------------------------------------------------------------------------

WRONG = [(name, mistake) for name, c in CASES.items() for mistake in c.wrong]


def test_every_check_is_here_with_at_least_four_wrong_answers():
    checks = {n for n in exercises.__all__ if n.startswith("check_")}
    assert {c.check.__name__ for c in CASES.values()} == checks
    assert all(len(c.wrong) >= 4 for c in CASES.values())


@pytest.mark.parametrize("name", list(CASES))
def test_the_reference_and_another_right_answer_pass(name, capsys):
    c = CASES[name]
    c.check(c.reference)
    c.check(c.other_right)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("name, mistake", WRONG, ids=[f"{n}: {m}" for n, m in WRONG])
def test_a_wrong_answer_is_rejected_with_a_sentence_that_names_its_mistake(name, mistake):
    answer, says = CASES[name].wrong[mistake]
    with pytest.raises(ExerciseFeedback) as feedback:
        CASES[name].check(answer)
    assert re.search(says, str(feedback.value), flags=re.S), f"{mistake}: {feedback.value}"


@pytest.mark.parametrize("seed", [18, 94, 144, 155, 177])
def test_an_epsilon_inside_the_log_is_named_on_every_seed(seed):
    # On these seeds the ε = 1e-8 moved a random batch's loss just past the tolerance (2e-5 of it), and the answer
    # got only "Wrong value"; it must be named there too.
    answer, says = vae.wrong["epsilon inside the log of the sigmoid"]
    with pytest.raises(ExerciseFeedback, match=says):
        exercises.check_vae_loss(answer, seed=seed)


PAIRS = {  # the checks whose answer is a pair, and the reference answer
    "ppca_posterior": ppca_posterior, "score_function_estimator": score_function_estimates,
    "forward_marginal": forward_marginal,
}


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("as_pair", [tuple, list])
def test_a_pair_may_be_a_tuple_or_a_list(name, as_pair, capsys):
    CASES[name].check(lambda *args: as_pair(PAIRS[name](*args)))
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(PAIRS))
def test_a_pair_of_three_is_not_a_pair(name):
    with pytest.raises(ExerciseFeedback, match="must return a pair"):
        CASES[name].check(lambda *args: (*PAIRS[name](*args), None))


def test_an_error_in_the_students_code_is_shown_with_the_students_lines():
    with pytest.raises(ExerciseFeedback) as feedback:
        exercises.check_ppca_posterior(_ppca_eye_of_two)
    shown = "\n".join(feedback.value._render_traceback_())
    assert "Your function raised this error:" in shown and "in _ppca_eye_of_two" in shown  # the student's own lines
    assert "lvm/exercises" not in shown  # not the checker's
    assert "x of shape [9, 3]; W of shape [3, 1]; b of shape [3]; sigma, a 0-dim tensor" in shown
    assert shown.rstrip().endswith("assume particular sizes (a fixed number of components, points or dimensions).")


@pytest.mark.parametrize("name", list(CASES))
def test_a_check_is_fast_enough_for_a_notebook(name):
    start = time.process_time()
    CASES[name].check(CASES[name].reference)
    assert time.process_time() - start < 2.0  # CPU seconds; each takes well under 0.5 s on one core



@pytest.mark.parametrize("name", list(CASES))
def test_a_check_is_deterministic_and_leaves_the_global_generator_alone(name, capsys):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    CASES[name].check(CASES[name].reference)
    assert torch.equal(torch.rand(3), before)
    assert "✓" in capsys.readouterr().out


# --- the reference answers are what lvm itself computes ----------------------------------------------------------

def test_the_streamed_estimate_is_what_lvm_iwae_bound_computes(linear_gaussian):
    # Same draws (same seed), any chunking: the streamed estimate is lvm.iwae_bound's.
    model = linear_gaussian(d_x=6, d_z=2, sigma=0.5)
    x, _ = lvm.ancestral_sample(model, 4, generator=1)
    q = MultivariateNormal(model.posterior(x).mean, 4 * model.posterior(x).covariance_matrix)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        log_w = lvm.log_importance_weights(model, x, q, k=12, chunk_size=5)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        bound = lvm.iwae_bound(model, x, q, k=12, chunk_size=5)
    assert torch.allclose(log_mean_exp_stream(iter(log_w.split(5))), bound)
    assert torch.allclose(log_mean_exp_stream(iter(log_w.split(1))), bound)


def test_the_gaps_are_what_lvm_computes_from_data():
    gen = torch.Generator().manual_seed(1)
    codes, factors = torch.rand(500, 4, generator=gen), torch.rand(500, 3, generator=gen)
    codes[:, 0] = factors[:, 1] + 0.05 * codes[:, 0]
    info, entropy = lvm.diagnostics.mutual_information(codes, factors)
    torch.testing.assert_close(mutual_information_gap(info, entropy),
                               lvm.diagnostics.mutual_information_gap(codes, factors))


def test_the_forward_marginal_is_what_lvm_diffusion_uses():
    alphas = lvm.diffusion.signal_schedule(7, final=0.05)
    scale, variance = forward_marginal(alphas)
    marginal = lvm.diffusion.forward_marginal(torch.ones(7, dtype=torch.float64), lvm.diffusion.alpha_bars(alphas))
    torch.testing.assert_close(marginal.mean, scale)
    torch.testing.assert_close(marginal.variance, variance)

# --- the chapters' own solutions ---------------------------------------------------------------------------------

def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def chapter_solutions() -> list[tuple[str, str, str]]:
    """(notebook, solution cell, check call) for every check call in the chapters, with the solution it checks."""
    found = []
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            call = re.search(r"lvm\.exercises\.(check_\w+)\((\w+)\)", _source(cell))
            if cell["cell_type"] != "code" or not call:
                continue
            solution = next(_source(c) for c in reversed(cells[:i]) if c["cell_type"] == "code"
                            and "solution" in c.get("metadata", {}).get("tags", [])
                            and re.search(rf"def {call.group(2)}\(", _source(c)))
            found.append((notebook.name, solution, _source(cell)))
    return found


SOLUTIONS = chapter_solutions()


def test_every_check_has_a_chapter_solution():
    called = {re.search(r"check_\w+", check).group(0) for _, _, check in SOLUTIONS}
    assert called == {n for n in exercises.__all__ if n.startswith("check_")}


@pytest.mark.parametrize("notebook, solution, check", SOLUTIONS, ids=[f"{n}: {c.strip()}" for n, _, c in SOLUTIONS])
def test_the_chapters_solution_passes_its_check(notebook, solution, check, capsys):
    namespace = {"lvm": lvm, "torch": torch, "math": math, "F": F, "Normal": Normal, "Bernoulli": Bernoulli,
                 "MultivariateNormal": MultivariateNormal}
    exec(solution, namespace)
    exec(check, namespace)
    assert "✓" in capsys.readouterr().out


# --- more right answers, written the ways students write them --------------------------------------------------

def _stream_total_stacked_on_each_chunk(chunks):
    # The running total stacked on the chunk as one more row: one chunk and one row at a time, a stream.
    total, count = None, 0
    for log_w in chunks:
        rows = log_w if total is None else torch.cat([total[None], log_w])
        total = torch.logsumexp(rows, dim=0)
        count += log_w.shape[0]
    return total - math.log(count)


def _stream_first_chunk_apart(chunks):
    chunks = iter(chunks)
    first = next(chunks)  # held to the end: two chunks alive at once, still a stream
    total, count = torch.logsumexp(first, 0), len(first)
    for log_w in chunks:
        total = torch.logaddexp(total, log_w.logsumexp(0))
        count += len(log_w)
    return total - math.log(count)


def _stream_from_minus_infinity(chunks):
    total, count = None, 0
    for log_w in chunks:
        if total is None:
            total = torch.full(log_w.shape[1:], -math.inf, dtype=log_w.dtype)
        total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
        count += log_w.shape[0]
    return total - math.log(count)


def _vae_loss_with_torch_kl(x, logits, mu, sigma):
    kl_div = torch.distributions.kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), torch.ones_like(sigma)))
    return (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") + kl_div.sum()) / len(x)


def _stream_in_numpy(chunks):
    # One chunk at a time in NumPy: a stream too.
    total, count = None, 0
    for log_w in chunks:
        a = log_w.numpy()
        peak = a.max(0)
        chunk = peak + np.log(np.exp(a - peak).sum(0))
        total = chunk if total is None else np.logaddexp(total, chunk)
        count += len(a)
    return torch.from_numpy(total - math.log(count))


def _stream_online_max_shift(chunks):
    # A running maximum, the running sum rescaled whenever it grows.
    peak, total, count = None, None, 0
    for log_w in chunks:
        chunk_peak = log_w.max(0).values
        if peak is None:
            peak, total = chunk_peak, (log_w - chunk_peak).exp().sum(0)
        else:
            new_peak = torch.maximum(peak, chunk_peak)
            total = total * (peak - new_peak).exp() + (log_w - new_peak).exp().sum(0)
            peak = new_peak
        count += len(log_w)
    return peak + total.log() - math.log(count)


def _stream_each_chunk_as_python_floats(chunks):
    # Odd, but a stream: one chunk at a time as Python floats.
    total, count = None, 0
    for log_w in chunks:
        rows = log_w.tolist()
        chunk = torch.logsumexp(torch.tensor(rows, dtype=torch.float64), 0)
        total = chunk if total is None else torch.logaddexp(total, chunk)
        count += len(rows)
    return total - math.log(count)


def _gaussian_kl_times_the_precision_in_float32(mu_q, std_q, mu_p, std_p):
    a, b, c, d = mu_q.float(), std_q.float(), mu_p.float(), std_p.float()
    return (torch.log(d / b) + 0.5 * (b**2 + (a - c) ** 2) * d.pow(-2) - 0.5).sum(-1)  # KL(q ‖ q) = -6e-8


def _ppca_posterior_as_a_distribution(x, W, b, sigma):
    mean, cov = ppca_posterior(x, W, b, sigma)
    return MultivariateNormal(mean, covariance_matrix=cov)


def _ppca_posterior_one_covariance_per_point(x, W, b, sigma):
    mean, cov = ppca_posterior(x, W, b, sigma)
    return mean, cov.expand(x.shape[0], -1, -1)


def _ppca_posterior_by_solve_in_float32(x, W, b, sigma):
    # solve instead of inv, float32 on the way: still within tolerance
    M = _m(W, sigma)
    mean = torch.linalg.solve(M, W.T @ (x - b).T).T
    return mean.float(), (sigma**2 * torch.linalg.inv(M)).float()


def _score_function_by_autograd(f, z, mu, std):
    # The scores from autograd of torch's log-density, one sample at a time.
    mu, std = mu.clone().requires_grad_(True), std.clone().requires_grad_(True)
    scores = [torch.autograd.grad(Normal(mu, std).log_prob(z_s).sum(), (mu, std)) for z_s in z]
    values = f(z)[:, None]
    return values * torch.stack([g for g, _ in scores]), values * torch.stack([g for _, g in scores])


def _mutual_information_gap_reciprocal_in_place(info, entropy):
    best, second = info.topk(2, dim=0).values
    return (best - second) * entropy.reciprocal_()  # in place: fine, the check hands out copies


MORE_RIGHT = {
    "ppca_posterior": [_ppca_posterior_as_a_distribution, _ppca_posterior_one_covariance_per_point,
                       _ppca_posterior_by_solve_in_float32],
    "importance_estimate": [lambda m, x, r, s: importance_estimate(m, x, r, s).float()],  # its model is float64
    "score_function_estimator": [_score_function_by_autograd],
    "log_mean_exp_stream": [_stream_total_stacked_on_each_chunk, _stream_first_chunk_apart,
                            _stream_from_minus_infinity, _stream_in_numpy, _stream_online_max_shift,
                            _stream_each_chunk_as_python_floats],
    "vae_loss": [_vae_loss_with_torch_kl,
                 lambda x, l, m, s: -((x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)).sum(-1)
                                      - _kl_term(m, s)).mean(),
                 lambda x, l, m, s: ((F.softplus(l) - x * l).sum(-1) + _kl_term(m, s)).mean(),
                 lambda x, l, m, s: (F.binary_cross_entropy_with_logits(l, x, reduction="none").sum(-1)
                                     + _kl_term(m, s)).mean()],
    "gaussian_kl": [lambda a, b, c, d: torch.distributions.kl_divergence(Normal(a, b), Normal(c, d)).sum(-1),
                    _gaussian_kl_times_the_precision_in_float32,
                    lambda a, b, c, d: _gaussian_kl_times_the_precision_in_float32(a, b, c, d).double(),
                    lambda a, b, c, d: (lambda a, b, c, d: (d.log() - b.log()).sum(-1) + ((b**2 + (a - c) ** 2)
                                        / (2 * d**2)).sum(-1) - 0.5 * a.shape[-1])(a.float(), b.float(), c.float(),
                                                                                   d.float())],
    "mixture_log_density": [lambda x, w, m, s: torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=w), Normal(m, s)).log_prob(x)],
    "reparameterised_sample": [lambda m, L, e: m + torch.einsum("ij,sj->si", L, e), lambda m, L, e: m + (L @ e.T).T],
    "responsibilities": [lambda x, w, m, s: torch.distributions.Categorical(
        logits=w.log() + Normal(m, s).log_prob(x[:, None])).probs],
    "mutual_information_gap": [lambda i, h: torch.diff(i.topk(2, dim=0).values.flip(0), dim=0)[0] / h,
                               _mutual_information_gap_reciprocal_in_place],
    "forward_marginal": [lambda a: (torch.exp(0.5 * torch.cumsum(a.log(), 0)), -torch.expm1(torch.cumsum(a.log(), 0)))],
}
MORE = [(name, i) for name, answers in MORE_RIGHT.items() for i in range(len(answers))]


@pytest.mark.parametrize("name, i", MORE, ids=[f"{n} {i}" for n, i in MORE])
def test_more_right_answers_pass(name, i, capsys):
    CASES[name].check(MORE_RIGHT[name][i])
    assert "✓" in capsys.readouterr().out


# --- right answers in float32 ----------------------------------------------------------------------------------

def _in_float32(answer: Callable) -> Callable:
    """The same answer computed in float32, as a student's notebook usually computes (gradients still flow)."""
    def to32(a):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a.float()
        if hasattr(a, "__next__"):
            return (to32(c) for c in a)
        return a

    return lambda *args: answer(*(to32(a) for a in args))


FLOAT32 = [n for n in CASES if n != "importance_estimate"]  # its model is float64: a float32 result is in MORE_RIGHT


@pytest.mark.parametrize("name", FLOAT32)
def test_a_right_answer_in_float32_passes(name, capsys):
    CASES[name].check(_in_float32(CASES[name].reference))
    assert "✓" in capsys.readouterr().out
