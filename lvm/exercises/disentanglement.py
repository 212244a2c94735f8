"""Chapter 8: the mutual-information gap from a table of mutual informations."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._feedback import ExerciseFeedback, _close, _invoke, _passed, _start, _tensor

__all__ = ["check_mutual_information_gap"]


def _gap_reference(info: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
    top_two = info.topk(2, dim=0).values
    return (top_two[0] - top_two[1]) / entropy


def _answer(out: object) -> torch.Tensor:
    """The answer as a float64 tensor; a NumPy array or a list is told that a tensor is expected."""
    if not isinstance(out, torch.Tensor):
        raise ExerciseFeedback(f"mutual_information_gap must return a torch.Tensor of the gaps, one per factor; it "
                               f"returned {type(out).__name__}. Compute with torch operations on info and entropy "
                               "(torch.topk, sort), or convert at the end with torch.as_tensor.")
    return _tensor(out, "mutual_information_gap")


def check_mutual_information_gap(fn: Callable, n_trials: int = 10, seed: int = 9) -> None:
    """Check ``fn(info, entropy) -> [K]``, the gap of each factor (eq. ``mig``).

    ``info`` is ``[d_z, K]`` with info[j, k] = I(z_j; v_k) in nats, ``entropy`` is ``[K]`` with the factors'
    entropies H(v_k). The answer is (I(z_(1); v_k) − I(z_(2); v_k)) / H(v_k), where z_(1) and z_(2) are the two
    code dimensions that share the most information with v_k, as :func:`lvm.diagnostics.mutual_information_gap`
    computes it.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for trial in range(n_trials):
        # The first table is not square: a square one would hide a gap taken over the wrong axis.
        d_z, k = (6, 4) if trial == 0 else tuple(int(v) for v in torch.randint(2, 8, (2,), generator=gen))
        entropy = 0.5 + torch.rand(k, generator=gen, dtype=torch.float64)
        info = torch.rand(d_z, k, generator=gen, dtype=torch.float64) * entropy  # I(z; v) <= H(v)
        got = _answer(_invoke(fn, "mutual_information_gap", info, entropy))
        want = _gap_reference(info, entropy)
        if got.shape != want.shape:
            hint = ""
            if got.shape == (d_z,):
                hint = " You took the gap of each code dimension: rank the dimensions for each factor (dim=0)."
            elif got.numel() == 1:
                hint = " You averaged over the factors: return one gap per factor (their mean is the MIG)."
            raise ExerciseFeedback(f"Expected one gap per factor, shape [{k}]; got {list(got.shape)}.{hint}")
        if _close(got, want):
            continue
        top_two = info.topk(2, dim=0).values
        if _close(got, top_two[0] - top_two[1]):
            raise ExerciseFeedback("The gaps are not normalised: divide each by its factor's entropy H(v_k), so "
                                   "that a factor described by one dimension alone scores 1.")
        for normaliser, what in ((top_two[0], "the largest mutual information I(z_(1); v_k)"),
                                 (entropy.sum(), "the sum of all the factors' entropies"),
                                 (entropy.mean(), "the mean of the factors' entropies"),
                                 (info.sum(0), "the total mutual information of the factor")):
            if _close(got, (top_two[0] - top_two[1]) / normaliser):
                raise ExerciseFeedback(f"Wrong normaliser: you divided by {what}. Each gap is divided by its own "
                                       "factor's entropy H(v_k), so that a factor described by one dimension alone "
                                       "scores 1.")
        if _close(got, (top_two[0] - top_two[1]) * entropy):
            raise ExerciseFeedback("You multiplied the gaps by the entropies H(v_k); divide by them.")
        bottom_two = info.topk(2, dim=0, largest=False).values
        if _close(got, (bottom_two[0] - bottom_two[1]) / entropy) or _close(
                got, (bottom_two[1] - bottom_two[0]) / entropy):
            raise ExerciseFeedback("You took the two SMALLEST mutual informations (an ascending sort): the gap is "
                                   "between the largest and the second largest, torch.topk(info, 2, dim=0) or "
                                   "sort(dim=0, descending=True).")
        if _close(got, (top_two[0] - info.min(0).values) / entropy):
            raise ExerciseFeedback("You subtracted the smallest mutual information; the gap subtracts the SECOND "
                                   "largest (torch.topk(info, 2, dim=0)).")
        if _close(got, top_two[0] / entropy):
            raise ExerciseFeedback("You returned the largest mutual information over H(v_k), without subtracting "
                                   "the second largest: the gap rewards one dimension standing out alone.")
        if _close(got, (top_two[0] - info.mean(0)) / entropy):
            raise ExerciseFeedback("You subtracted the mean over the dimensions; the gap subtracts the SECOND "
                                   "largest mutual information (torch.topk(info, 2, dim=0)).")
        raise ExerciseFeedback(f"Wrong values: expected {want.tolist()}, got {got.tolist()}.")
    _passed(f"✓ the mutual-information gap agrees with lvm on {n_trials} tables.")
