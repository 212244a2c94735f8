"""Chapter 3: an importance-sampling estimate of p(x)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from ..models.linear import LinearGaussian
from ._feedback import ExerciseFeedback, _close, _invoke, _passed, _start, _tensor

__all__ = ["check_importance_estimate"]


def check_importance_estimate(fn: Callable, seed: int = 3) -> None:
    """Check ``fn(model, x, proposal, n_samples) -> log p̂(x)``, shape ``[n]`` (eq. ``is-estimator``).

    ``proposal`` is a distribution over z with batch shape ``[n]``; the estimate is
    log (1/S) Σ_s p(x, z_s) / r(z_s) with z_s ~ r, computed in log space. The tests use linear-Gaussian models,
    whose log p(x) is exact: the exact posterior as proposal (every weight equals p(x), so the estimate must
    be exact), a broadened posterior (within six standard errors), a single draw on 1000 points (the answer must
    use the number of draws it is given), and D = 784 (p(x) underflows), with the posterior, with a point far
    from the others, and with a broadened posterior.
    """
    _, gen = _start(fn, seed)
    for trial in range(5):
        d_x = int(torch.randint(2, 7, (1,), generator=gen))
        model, x = _random_linear_gaussian(gen, d_x, int(torch.randint(1, d_x, (1,), generator=gen)))
        with torch.no_grad():
            proposal, exact = model.posterior(x), model.log_marginal(x)
        got = _call_estimator(fn, model, x, proposal, 50, seed + trial)
        if _close(got, exact):
            continue
        if got.shape == exact.shape and _close(got, exact.exp()):
            raise ExerciseFeedback("Your values are p̂(x), not log p̂(x): return the logarithm "
                                   "(and never leave log space: see the last test).")
        if got.shape == exact.shape and _close(got - exact, torch.full_like(exact, math.log(50))):
            raise ExerciseFeedback("Your estimate is log p(x) + log S: you summed the weights. Average them: "
                                   "logsumexp(log w, dim=0) − log S.")
        _diagnose_averaging(got, exact, 50)
        raise ExerciseFeedback(
            "With the exact posterior as proposal every weight p(x, z_s) / r(z_s) equals p(x), so the estimate "
            f"must equal log p(x) = {exact[:2].tolist()} whatever z_s you draw; you returned "
            f"{got[:2].tolist()}. Check the log-weight: log p(x, z) = log p(z) + log p(x | z) "
            "(model.joint_log_prob(x, z)) minus log r(z) (proposal.log_prob(z)).")
    _check_uses_n_samples(fn, gen, seed)  # first: an answer with its own number of draws is told so, by name
    _check_broad_proposal(fn, gen, seed)
    _check_high_dimension(fn, gen, seed)
    _check_high_dimension_broad(fn, gen, seed)
    _passed("✓ importance_estimate is exact with the posterior as proposal,\n"
            "  within six standard errors with a broad one, uses n_samples draws, and is right at D = 784.")


def _diagnose_averaging(got: torch.Tensor, exact: torch.Tensor, n_samples: int) -> None:
    """With the exact posterior as proposal every log-weight is log p(x): what the answer did with S copies of it."""
    if got.shape != exact.shape or not torch.isfinite(got).all():
        return
    log_sum = exact + math.log(n_samples)  # logsumexp of S equal log-weights
    if _close(got, log_sum / n_samples):
        raise ExerciseFeedback("You divided the log-sum-exp by S: the log of a mean is not the log of a sum divided "
                               "by S. Dividing the sum of the weights by S subtracts log S in log space: "
                               "torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
    if _close(got, log_sum - math.log(n_samples - 1)):
        raise ExerciseFeedback("You divided the sum of the weights by S − 1: the estimator is their plain mean, "
                               "(1/S) Σ_s w_s, so subtract log S: torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
    offset = got - exact
    if _close(offset, offset.mean().expand_as(offset)):
        raise ExerciseFeedback(
            f"With the exact posterior as proposal every log-weight equals log p(x), and your estimate is off by "
            f"the same {offset.mean().item():+.4f} at every point: the log-weights look right, the averaging does "
            "not. The mean of the S weights, in log space, is torch.logsumexp(log_w, dim=0) − math.log(n_samples) "
            "(and nothing added to it).")


def _random_linear_gaussian(gen: torch.Generator, d_x: int, d_z: int, n: int = 4, scale: float = 1.0,
                            sigma: float | None = None):
    f64 = torch.float64
    W = scale * torch.randn(d_x, d_z, generator=gen, dtype=f64)
    b = torch.randn(d_x, generator=gen, dtype=f64)
    if sigma is None:
        sigma = 0.4 + float(torch.rand(1, generator=gen))
    z = torch.randn(n, d_z, generator=gen, dtype=f64)
    x = z @ W.T + b + sigma * torch.randn(n, d_x, generator=gen, dtype=f64)
    return LinearGaussian(W, b, sigma).requires_grad_(False), x


def _call_estimator(fn: Callable, model, x, proposal, n_samples: int, seed: int) -> torch.Tensor:
    # The student's draws come from torch's global generator: fork it, so the check is deterministic and
    # leaves the notebook's random state alone.
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        got = _tensor(_invoke(fn, "importance_estimate", model, x, proposal, n_samples, explain=_explain_sample),
                      "importance_estimate")
    n = x.shape[0]
    if got.shape != (n,):
        hint = (" Average over the samples (dim 0) to get one estimate per point."
                if got.dim() == 2 and got.shape[1] == n else "")
        raise ExerciseFeedback(f"Expected one estimate per data point, shape [{n}]; got {list(got.shape)}.{hint}")
    return got


def _broadened(model, x, factor: float = 4.0):
    """The posterior with its covariance times ``factor`` (standard deviations √factor times wider), and the exact
    log p(x)."""
    posterior, exact = model.posterior(x), model.log_marginal(x)
    return posterior, MultivariateNormal(posterior.mean, covariance_matrix=factor * posterior.covariance_matrix), exact


def _relative_sd(d_z: int, factor: float = 4.0) -> float:
    """sd(w / p(x)) for z ~ r = N(m, c Σ) when p(z | x) = N(m, Σ): E_r[(w / p)²] = (c² / (2c − 1))^(d_z / 2)."""
    return math.sqrt((factor**2 / (2 * factor - 1)) ** (d_z / 2) - 1)


def _explain_sample(err: Exception) -> str | None:
    if isinstance(err, TypeError) and "not iterable" in str(err):
        return ("If it came from proposal.sample(n_samples): sample takes a shape, a tuple, "
                "proposal.sample((n_samples,)), which gives z of shape [S, n, D_z].")
    return None


def _check_broad_proposal(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """A proposal twice as wide as the posterior: the estimate is random, so compare within standard errors."""
    model, x = _random_linear_gaussian(gen, d_x=4, d_z=2)
    with torch.no_grad():
        posterior, broad, exact = _broadened(model, x)
        n_samples = 4000
        # Reference draws, independent of the student's, give the spread of the log-weights (for the ELBO below).
        with torch.random.fork_rng():
            torch.manual_seed(seed + 100)
            z_ref = broad.sample((n_samples,))
            log_w = model.joint_log_prob(x, z_ref) - broad.log_prob(z_ref)  # [S, n]
        # delta method: sd(log p̂) ≈ sd(w / p) / √S = 1.13 / √4000; six of them, 0.107
        tolerance = 6 * _relative_sd(2) / math.sqrt(n_samples) + 1e-6
        got = _call_estimator(fn, model, x, broad, n_samples, seed + 10)
        if torch.all((got - exact).abs() < tolerance):
            return
        elbo = exact - kl_divergence(broad, posterior)  # what averaging the log-weights converges to
        elbo_tolerance = 6 * log_w.std(0) / math.sqrt(n_samples)
        if torch.all((got - elbo).abs() < elbo_tolerance):
            raise ExerciseFeedback(
                "You averaged the log-weights: mean_s log w_s estimates E_r[log w], the evidence lower bound of "
                "chapter 4, which lies below log p(x) by KL(r ‖ p(z | x)). The estimator averages the weights "
                "themselves: logsumexp(log w, dim=0) − log S.")
        worst = int((got - exact).abs().argmax())
        raise ExerciseFeedback(
            f"With a proposal twice as wide as the posterior and S = {n_samples} draws, log p̂(x) should be within "
            f"{tolerance:.3f} (six standard errors) of log p(x) = {exact[worst]:.4f}; you returned "
            f"{got[worst]:.4f}. Draw S independent z for every point (proposal.sample((n_samples,)), shape "
            "[S, n, D_z]) and average the weights over them.")


def _check_uses_n_samples(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """n_samples = 1 on many points: the estimate is one log-weight, whose mean over the points is the ELBO.

    With the posterior as proposal any number of draws is exact, and with S = 4000 draws a few hundred give the
    same value within the tolerance: so an answer that ignores n_samples (a hard-coded S) passes both. With one
    draw, log p̂(x) − log p(x) = log w − log p(x) has mean −KL(r ‖ p(z | x)) = −2.42 (d_z = 3, a proposal twice
    as wide) and standard deviation 1.5 √6 = 3.67; averaged over 1000 points its standard error is 0.12, and the
    check allows six (0.70). An answer that draws S = 2 whatever it is told averages about −1.05, S = 10 about
    −0.13, S = 1000 about 0.00 (measured).
    """
    n_points, d_z = 1000, 3
    model, x = _random_linear_gaussian(gen, d_x=5, d_z=d_z, n=n_points)
    with torch.no_grad():
        posterior, broad, exact = _broadened(model, x)
        kl = kl_divergence(broad, posterior)  # [n], 2.42 for each point
        sd_one_draw = 1.5 * math.sqrt(2 * d_z)  # log(p(z|x) / r(z)) = const − (3/8) χ²_{d_z} × 4 in whitened z
    got = _call_estimator(fn, model, x, broad, 1, seed + 30)
    if not torch.isfinite(got).all():
        raise ExerciseFeedback(f"With n_samples = 1 you returned {got[~torch.isfinite(got)][:3].tolist()} for some "
                               "points: one draw must give one finite log-weight, log p(x, z) − log r(z).")
    mean_gap, want_gap = (got - exact).mean().item(), -kl.mean().item()
    tolerance = 6 * sd_one_draw / math.sqrt(n_points)  # 0.70
    if abs(mean_gap - want_gap) < tolerance:
        return
    if mean_gap > want_gap:
        raise ExerciseFeedback(
            f"With n_samples = 1 the estimate is a single log-weight, log w = log p(x, z) − log r(z), whose average "
            f"over many points is the ELBO, {-want_gap:.2f} below log p(x) here (KL(r ‖ p(z | x)) for a proposal twice "
            f"as wide as the posterior). Yours averaged {-mean_gap:.2f} below it over {n_points} points: you used more "
            "draws than n_samples (a number written into the function?). Draw exactly n_samples z: "
            "proposal.sample((n_samples,)).")
    raise ExerciseFeedback(
        f"With n_samples = 1 the estimate is a single log-weight, whose average over many points is "
        f"{-want_gap:.2f} below log p(x) here; yours averaged {-mean_gap:.2f} below it over {n_points} points. "
        "Check that you draw n_samples z per point (proposal.sample((n_samples,))) and average their weights.")


def _check_high_dimension(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """D = 784: p(x) ≈ e^-1000, so exponentiating any weight underflows to 0 even in float64."""
    # σ = 1: log p(x) ≈ −784 × 1.4, far below log of the smallest float64 (≈ −745). The third point is moved 3
    # standard deviations in every coordinate: its log p(x) is about 3500 nats below the others', so one shift for
    # all the points (log_w.max() without dim) underflows for it.
    model, x = _random_linear_gaussian(gen, d_x=784, d_z=5, n=3, scale=0.5, sigma=1.0)
    x[2] += 3.0
    with torch.no_grad():
        proposal, exact = model.posterior(x), model.log_marginal(x)
    got = _call_estimator(fn, model, x, proposal, 20, seed + 20)
    if torch.isfinite(got).all() and _close(got, exact):
        return
    right = torch.isfinite(got) & torch.isclose(got, exact, rtol=1e-5, atol=1e-6)
    if right.any() and not torch.isfinite(got).all():
        raise ExerciseFeedback(
            f"At D = 784 you are right for the points near the model (log p(x) ≈ {exact[0]:.0f}) but return "
            f"{got[~right][0].item()} for a point far from it (log p(x) = {exact[~right][0]:.0f}). That is the pattern "
            "of one shift for all the points (log_w.max() without dim): the log-weights of a point thousands of nats "
            "below the largest still underflow after the shift. Shift each point by its own maximum "
            "(log_w.max(dim=0).values), or use torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
    if torch.isfinite(got).all():
        raise ExerciseFeedback(
            f"At D = 784, log p(x) ≈ {exact[0]:.0f}; you returned {got.tolist()} instead of {exact.tolist()}: "
            "finite, but wrong. Every weight exp(log w) underflows to 0 there, and a small constant added before "
            "the log (or clamp, or nan_to_num) hides the −inf without bringing back the value. Stay in log "
            "space: torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
    raise ExerciseFeedback(
        f"At D = 784, log p(x) ≈ {exact[0]:.0f}: exp() of such a weight underflows to 0 and its log is −inf. "
        f"You returned {got.tolist()} instead of {exact.tolist()}. Stay in log space: "
        "torch.logsumexp(log_w, dim=0) − math.log(n_samples).")


def _check_high_dimension_broad(fn: Callable, gen: torch.Generator, seed: int) -> None:
    """D = 784 with a proposal twice as wide as the posterior: the log-weights differ, and still underflow.

    With the posterior as proposal every weight is p(x), so an answer that falls back to the largest log-weight
    where the mean of the weights underflows to 0 is exact there. With a broad proposal the largest of S = 250
    log-weights is 2.4 to 3.4 nats above log p(x) (40 seeds), outside six standard errors (1.0). S is kept small
    so that the check fits a grader's memory (1000 draws at D = 784 cost about 85 MiB more).
    """
    n_samples, d_z = 250, 5
    model, x = _random_linear_gaussian(gen, d_x=784, d_z=d_z, n=2, scale=0.5, sigma=1.0)
    with torch.no_grad():
        _, broad, exact = _broadened(model, x)
    tolerance = 6 * _relative_sd(d_z) / math.sqrt(n_samples)  # sd(w / p) = 2.63: 1.0
    got = _call_estimator(fn, model, x, broad, n_samples, seed + 40)
    if torch.isfinite(got).all() and torch.all((got - exact).abs() < tolerance):
        return
    worst = int((got - exact).abs().nan_to_num(math.inf).argmax())
    raise ExerciseFeedback(
        f"At D = 784 with a proposal twice as wide as the posterior and S = {n_samples} draws, log p̂(x) should be "
        f"within {tolerance:.2f} (six standard errors) of log p(x) = {exact[worst]:.2f}; you returned "
        f"{got[worst]:.2f}. Every weight exp(log w) underflows to 0 here: a value put in its place (the largest "
        "log-weight, a constant, clamp, nan_to_num) is not the estimate. Stay in log space: "
        "torch.logsumexp(log_w, dim=0) − math.log(n_samples).")
