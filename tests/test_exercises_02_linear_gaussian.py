"""Chapter 2's exercise check: the probabilistic-PCA posterior, right answers pass, usual mistakes explained."""

import pytest
import torch
from torch.distributions import MultivariateNormal

from lvm.exercises import ExerciseFeedback, check_ppca_posterior


def _m(W, sigma, extra=None):
    return W.T @ W + (sigma**2 if extra is None else extra) * torch.eye(W.shape[1], dtype=W.dtype)


def posterior(x, W, b, sigma):
    M_inv = torch.linalg.inv(_m(W, sigma))
    return (x - b) @ W @ M_inv, sigma**2 * M_inv


def test_right_answer_passes(capsys):
    check_ppca_posterior(posterior)
    assert "✓" in capsys.readouterr().out


def test_other_right_forms_pass():
    def as_distribution(x, W, b, sigma):
        mean, cov = posterior(x, W, b, sigma)
        return MultivariateNormal(mean, covariance_matrix=cov)

    def stacked_cov(x, W, b, sigma):
        mean, cov = posterior(x, W, b, sigma)
        return mean, cov.expand(x.shape[0], -1, -1)

    def with_solve(x, W, b, sigma):  # solve instead of inv, float32 on the way: still within tolerance
        M = _m(W, sigma)
        mean = torch.linalg.solve(M, W.T @ (x - b).T).T
        return mean.float(), (sigma**2 * torch.linalg.inv(M)).float()

    for fn in (as_distribution, stacked_cov, with_solve):
        check_ppca_posterior(fn)


def _mean_wrong(mean_fn):
    return lambda x, W, b, s: (mean_fn(x, W, b, s), posterior(x, W, b, s)[1])


def _cov_wrong(cov_fn):
    return lambda x, W, b, s: (posterior(x, W, b, s)[0], cov_fn(x, W, b, s))


@pytest.mark.parametrize("wrong, message", [
    (_mean_wrong(lambda x, W, b, s: posterior(x, W, b, s)[0].T), "transpose"),
    (_mean_wrong(lambda x, W, b, s: x @ W @ torch.linalg.inv(_m(W, s))), "subtract the offset b"),
    (_mean_wrong(lambda x, W, b, s: (x - b) @ W @ torch.linalg.inv(_m(W, s, 1.0))), "belongs inside M"),
    (_mean_wrong(lambda x, W, b, s: (x - b) @ W @ torch.linalg.inv(_m(W, s, s))), "not \\+ sigma I"),
    (_mean_wrong(lambda x, W, b, s: (x - b) @ W @ torch.linalg.inv(W.T @ W)), "least-squares"),
    (_mean_wrong(lambda x, W, b, s: (x - b) @ W @ _m(W, s)), "not by M itself"),
    (_mean_wrong(lambda x, W, b, s: posterior(x, W, b, s)[0] + 0.1), "Wrong posterior mean"),
    (_cov_wrong(lambda x, W, b, s: torch.linalg.inv(_m(W, s))), "multiply it by sigma"),
    (_cov_wrong(lambda x, W, b, s: _m(W, s) / s**2), "precision"),
    (_cov_wrong(lambda x, W, b, s: torch.eye(W.shape[1], dtype=W.dtype)), "prior's covariance"),
    (_cov_wrong(lambda x, W, b, s: s**2 * torch.linalg.inv(_m(W, s, 1.0))), "belongs inside M"),
    (_cov_wrong(lambda x, W, b, s: posterior(x, W, b, s)[1][None] * (1 + torch.arange(len(x)))[:, None, None]),
     "same for every x"),
    (_cov_wrong(lambda x, W, b, s: posterior(x, W, b, s)[1].diagonal()), "shape"),
    (_cov_wrong(lambda x, W, b, s: 1.1 * posterior(x, W, b, s)[1]), "Wrong posterior covariance"),
    (lambda x, W, b, s: posterior(x, W, b, s)[0], "pair"),
    (lambda x, W, b, s: (posterior(x, W, b, s)[0].tolist(), posterior(x, W, b, s)[1]), "torch.Tensor"),
])
def test_wrong_answers_get_specific_feedback(wrong, message):
    with pytest.raises(ExerciseFeedback, match=message):
        check_ppca_posterior(wrong)


def test_unwritten_exercise_says_so():
    def stub(x, W, b, sigma):
        raise NotImplementedError

    with pytest.raises(ExerciseFeedback, match="not written yet"):
        check_ppca_posterior(stub)
