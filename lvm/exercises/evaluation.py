"""Chapter 7: a streaming log-mean-exp, the core of the importance-sampled log-likelihood."""

from __future__ import annotations

import math
import tracemalloc
import weakref
from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from ._feedback import ExerciseFeedback, _close, _invoke, _passed, _start, _tensor

__all__ = ["check_log_mean_exp_stream"]


def _log_mean_exp_reference(chunks: list[torch.Tensor]) -> torch.Tensor:
    all_w = torch.cat(chunks, dim=0)
    return torch.logsumexp(all_w, dim=0) - math.log(all_w.shape[0])


class ChunkStream:
    """The chunks as an iterator that can be read once, as lvm's chunked evaluation produces them.

    Each chunk is a copy made in advance, so an answer that shifts a chunk in place (c -= c.max(0).values) leaves
    the check's reference alone; the stream lets go of a chunk once it has handed it out. A chunk's memory belongs
    to a NumPy array that the stream watches by a weak reference: the array lives as long as anything still
    uses that memory (the chunk, a view or slice of it, .detach(), .numpy()), so ``alive`` counts the chunks an
    answer still holds by any route that does not copy. The stream records whether it was read again after it
    ended (two passes over a stream: the second finds nothing), and calls ``on_next`` before handing out each
    chunk and at the end.
    """

    def __init__(self, chunks: list[torch.Tensor], on_next: Callable[[ChunkStream], None] | None = None):
        arrays = [c.detach().cpu().numpy().copy() for c in chunks]
        self._chunks = [(a, torch.from_numpy(a)) for a in arrays]  # the tensor's storage keeps its array alive
        self._handed: list[weakref.ref] = []
        self._on_next = on_next
        self.ended = False
        self.read_again = False

    def __iter__(self) -> ChunkStream:
        if self.ended:
            self.read_again = True
        return self

    def __next__(self) -> torch.Tensor:
        if self._on_next is not None:
            self._on_next(self)
        if not self._chunks:
            if self.ended:
                self.read_again = True
            self.ended = True
            raise StopIteration
        array, chunk = self._chunks.pop(0)
        self._handed.append(weakref.ref(array))
        return chunk

    def alive(self) -> int:
        """How many of the chunks handed out so far still have their memory in use."""
        return sum(r() is not None for r in self._handed)

    def handed(self) -> int:
        return len(self._handed)


_READ_ONCE = ("The chunks come as a stream (an iterator, as lvm's chunked evaluation produces them), which can be "
              "read only once: it has no len(), no indexing, and a second pass over it finds nothing. Read it in ONE "
              "loop: count the draws as they come (count += log_w.shape[0]) and fold each chunk into a running "
              "total (torch.logsumexp within the chunk, torch.logaddexp across chunks).")


def _explain_stream(stream: ChunkStream) -> Callable[[Exception], str | None]:
    def explain(err: Exception) -> str | None:
        if stream.read_again:
            return "Your function read the stream a second time after it had ended. " + _READ_ONCE
        if isinstance(err, TypeError) and type(stream).__name__ in str(err):
            return _READ_ONCE
        return None

    return explain


def _call_stream(fn: Callable, chunks: list[torch.Tensor], stream: ChunkStream | None = None) -> torch.Tensor:
    stream = ChunkStream(chunks) if stream is None else stream
    out = _invoke(fn, "log_mean_exp_stream", stream, copies=False, explain=_explain_stream(stream))
    got = _tensor(out, "log_mean_exp_stream")
    if stream.read_again and not (got.shape == (chunks[0].shape[1],) and _close(got, _log_mean_exp_reference(chunks))):
        raise ExerciseFeedback("Your function read the stream a second time after it had ended. " + _READ_ONCE)
    return got


def check_log_mean_exp_stream(fn: Callable, n_trials: int = 10, seed: int = 8) -> None:
    """Check ``fn(chunks) -> [n]``: log (1/K) Σ_k w_k over all the log-weights in ``chunks`` (eq. ``iwae``).

    ``chunks`` is an iterable, read once, of ``[K_b, n]`` tensors of log importance weights
    log p(x_i, z_k) − log q(z_k | x_i); K = Σ_b K_b is the total number of draws. The answer is the
    importance-sampled estimate of log p(x_i) from all K draws, as
    :func:`lvm.iwae_bound <lvm.bounds.iwae_bound>` computes it.
    The answer must stream: over 48 chunks a test counts how many chunks are alive at once, how much memory
    copies of them take (tensors, NumPy arrays, Python lists), and how large a tensor is built from them, and
    rejects an answer that keeps every chunk, copies of them, or concatenates them (the memory the exercise saves);
    the stream can be read once. Other tests use log-weights near −800 (a 784-pixel image), where every weight is
    0 in floating point, a chunk whose log-weights sit 1000 nats above the first chunk's (e^1000 overflows, even
    in float64), and log-weights on very different scales across points and across chunks.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for trial in range(n_trials):
        n = int(torch.randint(2, 5, (1,), generator=gen))
        sizes = torch.randint(1, 7, (int(torch.randint(2, 5, (1,), generator=gen)),), generator=gen).tolist()
        if trial == 0:
            # Unequal sizes, so averaging per chunk and per draw differ; and K = 13, the counts one off (12, 14),
            # the number of chunks (3), the last size (5) and the first and last sizes times the number of chunks
            # (6, 15) all differ, so each wrong count gets its own feedback. (With [2, 5, 4], K + 1 = 12 = 4 × 3:
            # a count one too many read as "every chunk has 4 draws".)
            sizes = [2, 6, 5]
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
        for wrong_k in (big_k + 1, big_k - 1):
            if _close(got, want + math.log(big_k) - math.log(wrong_k)):
                raise ExerciseFeedback(f"Your K is off by one: you divided by {wrong_k}, but the chunks hold "
                                       f"{big_k} draws (sizes {sizes}). Start the count at 0 and add each "
                                       "chunk's size, count += log_w.shape[0], so that K = Σ_b K_b.")
        for assumed in dict.fromkeys((sizes[0], sizes[-1])):
            if assumed * len(sizes) != big_k and _close(got, want + math.log(big_k) - math.log(assumed * len(sizes))):
                raise ExerciseFeedback(f"Your K assumes that every chunk has {assumed} draws, but the sizes differ "
                                       f"(here {sizes}): count the draws as they come, K = Σ_b K_b = {big_k}.")
        if sizes[-1] not in (big_k, len(sizes)) and _close(got, want + math.log(big_k) - math.log(sizes[-1])):
            raise ExerciseFeedback(f"Your K is the size of the last chunk only ({sizes[-1]} of the sizes {sizes}): "
                                   "count = log_w.shape[0] replaces the count at every chunk. Add each chunk's size "
                                   f"to it, count += log_w.shape[0], so that K = Σ_b K_b = {big_k}.")
        if _close(got, want - math.log(n)):
            raise ExerciseFeedback(f"Your estimates are too small by log n = log {n}: you counted the log-weights of "
                                   "all points (log_w.numel()), where K counts the draws, log_w.shape[0].")
        if _close(got, want + math.log(big_k) - math.log(len(sizes))):
            raise ExerciseFeedback("You divided by the number of chunks: K is the number of DRAWS, the sum of "
                                   "the chunk sizes, K = Σ_b K_b.")
        per_chunk = torch.stack([torch.logsumexp(c, 0) - math.log(c.shape[0]) for c in chunks]).mean(0)
        if _close(got, per_chunk):
            raise ExerciseFeedback("You averaged the chunks' estimates log (1/K_b) Σ w: that is the mean of "
                                   "smaller, looser bounds. Combine the chunks' log-sum-exps first "
                                   "(torch.logaddexp), and subtract log K once at the end.")
        if _close(got, torch.cat(chunks).mean(0)):
            raise ExerciseFeedback("You averaged the log-weights: that is the ELBO (the K = 1 bound), not the "
                                   "importance-sampled estimate. Average the weights themselves, in log space.")
        raise ExerciseFeedback(f"Wrong values. For chunk sizes {sizes} expected {want.tolist()}, "
                               f"got {got.tolist()}.")
    _check_stream_underflow(fn, gen)
    _check_later_chunk_far_above(fn)
    _check_scales(fn, gen)
    _check_streaming(fn, gen)
    _passed(f"✓ log_mean_exp_stream agrees with lvm on {n_trials} streams, holds one chunk at a time, and is right "
            "at e^-800 and across scales.")


class _Watch(TorchFunctionMode):
    """While active, records every tensor a torch function returns: the largest, and (by weak references) those
    still alive.

    Together with tracemalloc (Python objects and NumPy arrays) it measures what an answer holds on to, whatever
    the route: a list of chunks, of their .clone() or .float() copies, of .numpy() or .tolist() copies. (A torch
    function mode costs a millisecond to enter; a dispatch mode would import torch._dynamo, seconds, the first
    time.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self._live: dict[int, tuple[weakref.ref, int]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in tree_leaves(out):
            if isinstance(o, torch.Tensor):
                self.largest = max(self.largest, o.numel())
                key = id(o)
                self._live[key] = (weakref.ref(o, lambda _, key=key: self._live.pop(key, None)), o.numel())
        return out

    def held(self) -> int:
        """Elements in the tensors made while watching that are still alive, each storage counted once."""
        storages = {}
        for ref, _ in list(self._live.values()):
            t = ref()
            if t is None:  # a tensor that died meanwhile
                continue
            try:
                storage = t.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes() // t.element_size()
            except (AttributeError, RuntimeError, NotImplementedError, ZeroDivisionError):
                continue  # gone, or a tensor without a plain storage (sparse, nested): not a copy of a chunk
        return sum(storages.values())


# What _check_streaming measured last, in chunks' worth ("alive", "held", "peak", "largest"), for the tests that
# measure the margins of its thresholds: a module-level record, its entries replaced by each measurement.
_streaming_measured: dict[str, float] = {}


def _check_streaming(fn: Callable, gen: torch.Generator) -> None:
    # 48 chunks of 128 draws for 32 points (4096 log-weights, 32 kB each). Streaming code holds the chunk it is
    # reading (the loop variable), a few tensors of about one chunk (the chunk shifted, its exponentials, or the
    # running total stacked on it: 129 rows; one chunk as Python floats from .tolist() is 4-9 chunks' worth) and
    # the running totals: measured, at most 9 chunks' worth at any time (3 for tensors). An answer that lists the
    # chunks holds all 48; one that keeps copies of them (.clone(), .float(), .numpy(), .tolist()) holds 48 chunks'
    # worth of copies or more (.float() 48 tensors of half the bytes, .tolist() about 200 chunks' worth of Python
    # floats); one that concatenates them builds a tensor or an array of 48 chunks.
    n, rows, n_chunks = 32, 128, 48
    per_chunk = rows * n
    chunks = [2 * torch.randn(rows, n, generator=gen, dtype=torch.float64) - 1 for _ in range(n_chunks)]
    # A first run, unwatched: its values, and anything done once (a lazy import, a cache) is done before the memory
    # is measured.
    got = _call_stream(fn, chunks)
    want = _log_mean_exp_reference(chunks)
    if not _close(got, want):
        raise ExerciseFeedback(f"Wrong values for {n_chunks} chunks of {rows} draws: expected {want[:3].tolist()} for "
                               f"the first points, got {got[:3].tolist()}.")
    alive, held = [], []
    watch = _Watch()

    def python_chunks() -> float:
        """Chunks' worth of memory in Python objects and NumPy arrays made since the start (8 bytes a float64 in
        NumPy, about 32 in a list)."""
        now = tracemalloc.get_traced_memory()[0] - base
        if tracing:  # the stream's own arrays were traced too: their release is not the answer's doing
            now += (stream.handed() - stream.alive()) * 8 * per_chunk
        return now / (8 * per_chunk)

    def record(stream: ChunkStream) -> None:
        alive.append(stream.alive())
        held.append(python_chunks() + watch.held() / per_chunk)

    stream = ChunkStream(chunks, on_next=record)  # its arrays are made before tracing starts, unless it already ran
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        with watch:
            out = _invoke(fn, "log_mean_exp_stream", stream, copies=False, explain=_explain_stream(stream))
        peak = (tracemalloc.get_traced_memory()[1] - base) / (8 * per_chunk)  # arrays made after the stream
    finally:
        if not tracing:
            tracemalloc.stop()
    largest = watch.largest
    # What the answer held, in chunks' worth, kept for the tests that measure the margins of the thresholds below.
    _streaming_measured.clear()
    _streaming_measured.update(alive=max(alive), held=max(held), peak=peak, largest=largest / per_chunk)
    got = _tensor(out, "log_mean_exp_stream")
    if not _close(got, want):
        raise ExerciseFeedback(f"Wrong values for {n_chunks} chunks of {rows} draws, the second time: expected "
                               f"{want[:3].tolist()} for the first points, got {got[:3].tolist()}. Does your "
                               "function keep something from one call to the next?")
    copies = (f"Your values are right, but at one point you held copies of about {{:.0f}} of the {n_chunks} chunks' "
              "draws at once: copies made with .clone(), .float(), .numpy() or .tolist() and kept in a list, or all "
              "of them gathered into one array (np.concatenate, torch.tensor of a list). That is the memory the "
              "stream is there to save. Fold each chunk into a running total as it arrives (torch.logsumexp within "
              "the chunk, torch.logaddexp across chunks) and keep nothing else of it.")
    if peak >= n_chunks / 3:  # 16 chunks' worth in NumPy arrays or Python lists; streaming code: 9 at most
        raise ExerciseFeedback(copies.format(min(peak, n_chunks)))
    if largest >= 2 * per_chunk:  # two chunks' draws in one tensor; a running total beside one chunk is less
        raise ExerciseFeedback(
            "Your values are right, but you built one tensor of the draws of several chunks (torch.cat or "
            "torch.stack of the chunks): with K = 5000 samples for each of 10,000 images that is the tensor that "
            "does not fit in memory. Keep a running total instead: torch.logsumexp within each chunk, "
            "torch.logaddexp across chunks, and a count of the draws.")
    if max(alive) >= 3:
        raise ExerciseFeedback(
            f"Your values are right, but you kept {max(alive)} of the {n_chunks} chunks in memory at once "
            "(list(chunks), or a list you append them, their views or their .numpy() arrays to): the point of the "
            "stream is to hold one chunk at a time. "
            "Fold each chunk into a running total as it arrives (torch.logsumexp, then torch.logaddexp) and let it "
            "go.")
    if max(held) >= n_chunks / 3:  # 16 chunks' worth of tensors or arrays; streaming code: 9 at most
        raise ExerciseFeedback(copies.format(min(max(held), n_chunks)))


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


def _check_later_chunk_far_above(fn: Callable) -> None:
    """A later chunk whose log-weights sit 1000 nats above the first chunk's, for every point.

    A running sum kept in ordinary space, shifted by the first chunk's maximum m_1 (total += (log_w − m_1).exp()
    .sum(0)), overflows here: exp(1000) is inf (exp overflows above 709.8 in float64, 88.7 in float32). The shift
    is the same for every point, so only this mistake shows; the first chunk's weights are e^-1000 of the second's
    and do not change the estimate.
    """
    gen = torch.Generator().manual_seed(1000)  # its own draws: the other tests' streams stay as they were
    offsets = torch.tensor([-1000.0, 0.0, -400.0], dtype=torch.float64)
    chunks = [torch.randn(size, 3, generator=gen, dtype=torch.float64) + offset
              for size, offset in zip((3, 4, 2), offsets)]
    got = _call_stream(fn, chunks)
    want = _log_mean_exp_reference(chunks)
    if got.shape == want.shape and torch.isfinite(got).all() and torch.allclose(got, want, rtol=1e-5):
        return
    shown = (f"For a stream whose first chunk has log-weights near −1000 and whose second has them near 0, 1000 nats "
             f"higher, the estimates are {[round(v, 4) for v in want.tolist()]}; you returned "
             f"{got.flatten().tolist()}. ")
    if got.shape == want.shape and (torch.isnan(got) | (got == math.inf)).any():
        raise ExerciseFeedback(shown + "Your running total overflows: you keep it in ordinary space, a sum of "
                               "exp(log_w − m) with m fixed by the first chunk, and the second chunk's weights are "
                               "e^1000 times that (exp overflows above 709.8 in float64, 88.7 in float32). The running "
                               "total must stay in log space: torch.logsumexp within each chunk, torch.logaddexp "
                               "across chunks.")
    raise ExerciseFeedback(shown + "Never leave log space, and shift by each point's own maximum: torch.logsumexp "
                           "within a chunk (dim=0), torch.logaddexp across chunks.")


def _check_scales(fn: Callable, gen: torch.Generator) -> None:
    """Log-weights on very different scales, across points within a chunk and across chunks for one point.

    Point 0 sits near −10 and point 1 near −1000 in every chunk: one shift for the whole chunk (log_w.max()
    without dim) leaves point 1 990 nats below it, where exp underflows to 0 and the log is −inf. Point 2 sits
    near −800 in the first chunk and near −5 in the second: a shift fixed by the first chunk's maximum leaves
    exp(795) = inf for the second.
    """
    first = torch.randn(3, 3, generator=gen, dtype=torch.float64) + torch.tensor([-10.0, -1000.0, -800.0],
                                                                                 dtype=torch.float64)
    second = torch.randn(4, 3, generator=gen, dtype=torch.float64) + torch.tensor([-10.0, -1000.0, -5.0],
                                                                                  dtype=torch.float64)
    chunks = [first, second]
    got = _call_stream(fn, chunks)
    want = _log_mean_exp_reference(chunks)
    if got.shape == want.shape and torch.isfinite(got).all() and torch.allclose(got, want, rtol=1e-5):
        return
    shown = (f"For three points whose log-weights sit near −10, −1000, and −800 in the first chunk but −5 in the "
             f"second, the estimates are {[round(v, 4) for v in want.tolist()]}; "
             f"you returned {got.flatten().tolist()}. ")
    if got.shape == want.shape and (got[1] == -math.inf) and torch.isfinite(got[0]):
        raise ExerciseFeedback(shown + "The point near −1000 gets −inf beside one near −10: you shift each chunk by "
                               "ONE number (log_w.max() without dim), and a point's log-weights far below the "
                               "chunk's largest still underflow after the shift. Shift each point by its own "
                               "maximum, log_w.max(dim=0).values, or use torch.logsumexp(log_w, dim=0).")
    if got.shape == want.shape and not torch.isfinite(got[2]) and got[2] != -math.inf:
        raise ExerciseFeedback(shown + "The third point overflows: your shift stays the first chunk's maximum (−800), "
                               "so the second chunk's log-weights near −5 give exp(795) = inf. When a chunk brings a "
                               "larger maximum, the running sum must be rescaled to it; simpler, keep the running "
                               "total as a log-sum-exp and combine chunks with torch.logaddexp.")
    raise ExerciseFeedback(shown + "Never leave log space, and shift by each point's own maximum: torch.logsumexp "
                           "within a chunk (dim=0), torch.logaddexp across chunks.")
