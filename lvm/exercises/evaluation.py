"""Chapter 7: a streaming log-mean-exp, the core of the importance-sampled log-likelihood."""

from __future__ import annotations

import math
import weakref
from typing import Callable, Iterable, Iterator

import torch

from ._feedback import ExerciseFeedback, _call, _close, _invoke, _start, _tensor

__all__ = ["check_log_mean_exp_stream"]


def _log_mean_exp_reference(chunks: list[torch.Tensor]) -> torch.Tensor:
    all_w = torch.cat(chunks, dim=0)
    return torch.logsumexp(all_w, dim=0) - math.log(all_w.shape[0])


def _call_stream(fn: Callable, chunks: list[torch.Tensor]) -> torch.Tensor:
    # A generator, as lvm's chunked evaluation produces them: it can be read once. Each chunk is a copy, so an
    # answer that shifts a chunk in place (c -= c.max(0).values) leaves the check's reference alone.
    return _call(fn, "log_mean_exp_stream", (c.clone() for c in chunks))


def check_log_mean_exp_stream(fn: Callable, n_trials: int = 10, seed: int = 8) -> None:
    """Check ``fn(chunks) -> [n]``: log (1/K) Σ_j w_j over all the log-weights in ``chunks`` (eq. ``iwae``).

    ``chunks`` is an iterable, read once, of ``[c_j, n]`` tensors of log importance weights
    log p(x_i, z_j) − log q(z_j | x_i); K = Σ_j c_j is the total number of draws. The answer is the
    importance-sampled estimate of log p(x_i) from all K draws, as
    :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>` computes it.
    The answer must stream: a test counts how many chunks are alive at once and how large a tensor is built from
    them, and rejects an answer that keeps every chunk or concatenates them (the memory the exercise saves).
    A last test uses log-weights near −800 (a 784-pixel image), where every weight is 0 in floating point.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for trial in range(n_trials):
        n = int(torch.randint(2, 5, (1,), generator=gen))
        sizes = torch.randint(1, 7, (int(torch.randint(2, 5, (1,), generator=gen)),), generator=gen).tolist()
        if trial == 0:
            sizes = [2, 5, 3]  # unequal sizes, so averaging per chunk and per draw differ
        chunks = [2 * torch.randn(c, n, generator=gen, dtype=torch.float64) - 1 for c in sizes]
        big_k = sum(sizes)
        got = _call_stream(fn, chunks)
        want = _log_mean_exp_reference(chunks)
        if got.shape != want.shape:
            hint = ""
            if got.shape == (big_k, n):
                hint = " You returned one value per draw: combine the draws of each point into one estimate."
            elif got.numel() == 1:
                hint = " You reduced over the data points too: keep one estimate per point."
            raise ExerciseFeedback(f"Expected one estimate per data point, shape [{n}]; got {list(got.shape)}."
                                   f"{hint}")
        if _close(got, want):
            continue
        if _close(got, want + math.log(big_k)):
            raise ExerciseFeedback("Your estimates are too large by log K: you summed the weights. Average them "
                                   "over all K draws: logsumexp − log K, with K the total over all chunks.")
        for assumed in dict.fromkeys((sizes[0], sizes[-1])):
            if assumed * len(sizes) != big_k and _close(got, want + math.log(big_k) - math.log(assumed * len(sizes))):
                raise ExerciseFeedback(f"Your K assumes that every chunk has {assumed} draws, but the sizes differ "
                                       f"(here {sizes}): count the draws as they come, K = Σ_j c_j = {big_k}.")
        if _close(got, want + math.log(big_k) - math.log(len(sizes))):
            raise ExerciseFeedback("You divided by the number of chunks: K is the number of DRAWS, the sum of "
                                   "the chunk sizes.")
        per_chunk = torch.stack([torch.logsumexp(c, 0) - math.log(c.shape[0]) for c in chunks]).mean(0)
        if _close(got, per_chunk):
            raise ExerciseFeedback("You averaged the chunks' estimates log (1/c) Σ w: that is the mean of "
                                   "smaller, looser bounds. Combine the chunks' log-sum-exps first "
                                   "(torch.logaddexp), and subtract log K once at the end.")
        if _close(got, torch.cat(chunks).mean(0)):
            raise ExerciseFeedback("You averaged the log-weights: that is the ELBO (the K = 1 bound), not the "
                                   "importance-sampled estimate. Average the weights themselves, in log space.")
        raise ExerciseFeedback(f"Wrong values. For chunk sizes {sizes} expected {want.tolist()}, "
                               f"got {got.tolist()}.")
    _check_stream_underflow(fn, gen)
    _check_streaming(fn, gen)
    print(f"✓ log_mean_exp_stream agrees with lvm on {n_trials} streams, holds one chunk at a time, and is right "
          "at e^-800.")


class _Chunk(torch.Tensor):
    """A chunk of log-weights that records the number of elements of the largest tensor computed from it."""

    largest = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor):
                _Chunk.largest = max(_Chunk.largest, o.numel())
        return out


def _tracked_stream(chunks: Iterable[torch.Tensor], alive: list[int]) -> Iterator[torch.Tensor]:
    """Yield copies of the chunks; before each one (and at the end) append how many earlier ones are still alive."""
    refs = []
    for c in chunks:
        alive.append(sum(r() is not None for r in refs))
        chunk = c.clone().as_subclass(_Chunk)
        refs.append(weakref.ref(chunk))
        yield chunk
        del chunk  # the generator itself must not keep the chunk alive
    alive.append(sum(r() is not None for r in refs))


def _check_streaming(fn: Callable, gen: torch.Generator) -> None:
    # Six chunks of eight draws. Streaming code holds the chunk it is reading (the loop variable) and tensors of
    # about one chunk (the chunk with the running total stacked on it, or one total per chunk: 9 or 6 rows at
    # most); an answer that lists the chunks holds all six, one that concatenates them builds a tensor of 16 or
    # more rows.
    n, rows, n_chunks = 3, 8, 6
    chunks = [2 * torch.randn(rows, n, generator=gen, dtype=torch.float64) - 1 for _ in range(n_chunks)]
    alive: list[int] = []
    _Chunk.largest = 0
    out = _invoke(fn, "log_mean_exp_stream", _tracked_stream(chunks, alive), copies=False)
    largest = _Chunk.largest
    got = _tensor(out.as_subclass(torch.Tensor) if isinstance(out, torch.Tensor) else out, "log_mean_exp_stream")
    want = _log_mean_exp_reference(chunks)
    if not _close(got, want):
        raise ExerciseFeedback(f"Wrong values for {n_chunks} chunks of {rows} draws: expected {want.tolist()}, got "
                               f"{got.tolist()}.")
    if largest >= 2 * rows * n:  # two chunks' draws in one tensor; a running total beside one chunk is less
        raise ExerciseFeedback(
            "Your values are right, but you built one tensor of the draws of several chunks (torch.cat or "
            "torch.stack of the chunks): with K = 5000 samples for each of 10,000 images that is the tensor that "
            "does not fit in memory. Keep a running total instead: torch.logsumexp within each chunk, "
            "torch.logaddexp across chunks, and a count of the draws.")
    if max(alive) >= 3:
        raise ExerciseFeedback(
            f"Your values are right, but you kept {max(alive)} of the {n_chunks} chunks in memory at once "
            "(list(chunks), or a list you append them to): the point of the stream is to hold one chunk at a time. "
            "Fold each chunk into a running total as it arrives (torch.logsumexp, then torch.logaddexp) and let it "
            "go.")


def _check_stream_underflow(fn: Callable, gen: torch.Generator) -> None:
    # exp(-800) is 0 even in float64 (the smallest positive double is about e^-745).
    chunks = [torch.randn(c, 3, generator=gen, dtype=torch.float64) - 800 for c in (4, 4, 2)]
    got = _call_stream(fn, chunks)
    want = _log_mean_exp_reference(chunks)
    if got.shape == want.shape and torch.isfinite(got).all() and _close(got, want):
        return
    if got.shape == want.shape and torch.isfinite(got).all():
        raise ExerciseFeedback(
            f"With log-weights near −800 (as for a 784-pixel image) you returned {got.tolist()} instead of "
            f"{want.tolist()}: finite, but wrong. exp(−800) underflows to 0, and a small constant added before the "
            "log (or clamp, or nan_to_num) hides the −inf without bringing back the value. Never leave log space: "
            "torch.logsumexp within a chunk, torch.logaddexp across chunks.")
    raise ExerciseFeedback(
        f"With log-weights near −800 (as for a 784-pixel image) you returned {got.flatten().tolist()} "
        f"instead of {want.tolist()}: exp(−800) underflows to 0 and its log is −inf. Never leave log "
        "space: torch.logsumexp within a chunk, torch.logaddexp across chunks.")
