"""Chapter 5: score-function and reparameterised gradient estimates."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._feedback import ExerciseFeedback, _close, _invoke, _pair, _passed, _start, _tensor

__all__ = ["check_score_function_estimator", "check_reparameterised_sample"]


def _test_integrands() -> list[tuple[str, Callable]]:
    return [("Σ z²", lambda z: (z**2).sum(-1)),
            ("Σ sin z + 1", lambda z: torch.sin(z).sum(-1) + 1),
            ("Σ exp(0.3 z)", lambda z: torch.exp(0.3 * z).sum(-1))]


def check_score_function_estimator(fn: Callable, n_trials: int = 12, seed: int = 5) -> None:
    """Check ``fn(f, z, mu, std) -> (grad_mu, grad_std)``, per-sample score-function estimates (eq. ``score-function``).

    ``z`` is ``[S, d]``, drawn from q = N(mu, diag std²) with ``mu`` and ``std`` of shape ``[d]``; ``f`` maps
    ``z`` to ``[S]``. The answer is f(z_s) ∇_μ log q(z_s) and f(z_s) ∇_σ log q(z_s) for each sample: two
    tensors of shape ``[S, d]``.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    integrands = _test_integrands()
    for trial in range(n_trials):
        name, f = integrands[trial % len(integrands)]
        d = int(torch.randint(2, 5, (1,), generator=gen))
        s = d + 3 + int(torch.randint(0, 5, (1,), generator=gen))  # S != d
        mu = torch.randn(d, generator=gen, dtype=torch.float64)
        std = 0.3 + torch.rand(d, generator=gen, dtype=torch.float64)
        eps = torch.randn(s, d, generator=gen, dtype=torch.float64)
        z = mu + std * eps
        out = _invoke(fn, "score_function_estimates", f, z, mu, std, explain=_explain_broadcast)
        got_mu, got_std = (o.detach().to(torch.float64)
                           for o in _pair(out, "score_function_estimates", ("grad_mu", "grad_std")))
        values = f(z)[:, None]
        score_mu = eps / std  # (z − μ) / σ²
        score_std = (eps**2 - 1) / std  # (z − μ)² / σ³ − 1 / σ
        want_mu, want_std = values * score_mu, values * score_std
        for got, want in ((got_mu, want_mu), (got_std, want_std)):
            if got.shape != want.shape:
                hint = (" It looks averaged over the samples: return one estimate per sample, the average "
                        "comes later." if got.shape == want.shape[1:] else "")
                raise ExerciseFeedback(f"Expected shape [S, d] = {list(want.shape)}, got {list(got.shape)}."
                                       + hint)
        right = _close(got_mu, want_mu) and _close(got_std, want_std)
        shifted = f(z - mu)[:, None]  # f evaluated after an in-place z -= mu
        if not right and (_close(got_mu, shifted * score_mu) or _close(got_std, shifted * score_std)):
            raise ExerciseFeedback("f was evaluated at z − μ, not at z: an in-place z -= mu (or z.sub_(mu)) changed "
                                   "z before f(z) read it. Compute f(z) first, or write d = z - mu.")
        if not _close(got_mu, want_mu):
            if _close(got_mu, -want_mu):
                raise ExerciseFeedback("grad_mu has the wrong sign: "
                                       "∂/∂μ log N(z | μ, σ²) = +(z − μ) / σ².")
            if _close(got_mu, values * eps):
                raise ExerciseFeedback("grad_mu: ∂/∂μ log N(z | μ, σ²) = (z − μ) / σ², divided by the "
                                       "variance σ², not by σ.")
            if _close(got_mu, score_mu):
                raise ExerciseFeedback("grad_mu is the score alone: multiply it by f(z) for each sample.")
            if _close(got_mu, 2 * z) and name == "Σ z²":
                raise ExerciseFeedback("grad_mu is ∂f/∂z, the pathwise (reparameterised) gradient. The score "
                                       "function uses only the values f(z), times ∇_μ log q(z).")
            raise ExerciseFeedback(f"grad_mu is wrong for f(z) = {name}: expected f(z) (z − μ) / σ², e.g. "
                                   f"{want_mu[0].tolist()} for the first sample, got {got_mu[0].tolist()}.")
        if not _close(got_std, want_std):
            if _close(got_std, values * eps**2 / std):
                raise ExerciseFeedback("grad_std misses the −1/σ that comes from the normaliser: log q has a "
                                       "term −log σ, so ∂/∂σ log q = (z − μ)² / σ³ − 1 / σ.")
            if _close(got_std, -want_std):
                raise ExerciseFeedback("grad_std has the wrong sign: ∂/∂σ log q = (z − μ)² / σ³ − 1 / σ.")
            if _close(got_std, score_std):
                raise ExerciseFeedback("grad_std is the score alone: multiply it by f(z) for each sample.")
            by_variance = values * (eps**2 - 1) / (2 * std**2)  # ∂/∂σ² log q
            if _close(got_std, by_variance) or _close(got_std, 2 * by_variance):
                raise ExerciseFeedback("That is the gradient with respect to the variance σ²; the exercise asks for "
                                       "the standard deviation σ: ∂/∂σ log q = (z − μ)² / σ³ − 1 / σ.")
            raise ExerciseFeedback(f"grad_std is wrong for f(z) = {name}: expected "
                                   "f(z) ((z − μ)² / σ³ − 1 / σ), "
                                   f"e.g. {want_std[0].tolist()} for the first sample, got {got_std[0].tolist()}.")
    _passed(f"✓ score_function_estimates = f(z) ∇ log q(z)\n  on {n_trials} random Gaussians.")


def _explain_broadcast(err: Exception) -> str | None:
    if isinstance(err, RuntimeError) and "must match the size" in str(err):
        return ("If you multiplied f(z), shape [S], by a tensor of shape [S, D_z]: broadcasting lines up the LAST "
                "dimensions, so give f(z) a column first, f(z)[:, None] (or .unsqueeze(-1)).")
    return None


def check_reparameterised_sample(fn: Callable, n_trials: int = 12, seed: int = 6) -> None:
    """Check ``fn(mu, scale_tril, eps) -> z = mu + L eps``, differentiable in mu and L (eq. ``reparam``).

    ``mu`` is ``[d]``, ``scale_tril`` a lower-triangular ``L`` with positive diagonal (``[d, d]``, the
    covariance is L Lᵀ), ``eps`` is ``[S, d]`` standard normal noise, one row per sample; z must be
    ``[S, d]`` and gradients must flow from z back to ``mu`` and ``scale_tril``.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    for _ in range(n_trials):
        d = int(torch.randint(2, 5, (1,), generator=gen))
        s = d + 2 + int(torch.randint(0, 5, (1,), generator=gen))
        mu = torch.randn(d, generator=gen, dtype=torch.float64)
        raw = torch.randn(d, d, generator=gen, dtype=torch.float64).tril(-1)
        diag = 0.5 + torch.rand(d, generator=gen, dtype=torch.float64)
        scale_tril = raw + torch.diag(diag)
        eps = torch.randn(s, d, generator=gen, dtype=torch.float64)
        # Leaves for the gradients; the function gets non-leaf copies of them, as an encoder's outputs are, so a
        # right answer that works in place on its arguments still runs.
        mu_leaf, l_leaf = mu.clone().requires_grad_(True), scale_tril.clone().requires_grad_(True)
        out = _invoke(fn, "reparameterised_sample", mu_leaf.clone(), l_leaf.clone(), eps.clone(), copies=False,
                      explain=_explain_cholesky)
        got = _tensor(out, "reparameterised_sample")
        want = mu + eps @ scale_tril.T
        if got.shape != want.shape:
            raise ExerciseFeedback(f"Expected one sample per row of eps, shape [S, d] = {list(want.shape)}; "
                                   f"got {list(got.shape)}.")
        if not _close(got, want):
            if _close(got, mu + eps @ scale_tril):
                raise ExerciseFeedback("z = μ + L ε uses L, but you applied Lᵀ: with the samples ε as rows of "
                                       "eps, L ε for every row is eps @ L.T.")
            if _close(got, mu + eps @ (scale_tril @ scale_tril.T).T):
                raise ExerciseFeedback("You multiplied ε by the covariance L Lᵀ: use its Cholesky factor L "
                                       "(a 'square root'), so that Cov[z] = L Lᵀ.")
            if _close(got, mu + eps * diag):
                raise ExerciseFeedback("You used only the diagonal of L: with a full covariance the noise of "
                                       "one coordinate also moves the others (eps @ L.T).")
            _diagnose_factor(got, mu, scale_tril, eps)
            if not out.requires_grad:
                raise ExerciseFeedback("Your z is not μ + L ε for the eps you were given, and it carries no gradient: "
                                       "that is what .sample() returns (fresh noise, cut off from mu and "
                                       "scale_tril). Build z from eps yourself: mu + eps @ scale_tril.T.")
            again = _tensor(_invoke(fn, "reparameterised_sample", mu, scale_tril, eps), "reparameterised_sample")
            if not torch.equal(again, got):
                raise ExerciseFeedback("Called twice with the same mu, scale_tril and eps, your function returned "
                                       "two different z: it draws its own noise (rsample(), torch.randn). Use the eps "
                                       "you are given: z = mu + eps @ scale_tril.T.")
            raise ExerciseFeedback(f"Wrong values: expected z = μ + L ε, e.g. {want[0].tolist()} for the first "
                                   f"row of eps, got {got[0].tolist()}. With the samples ε as the rows of eps, "
                                   "z = mu + eps @ scale_tril.T: L itself, no other factor of the covariance.")
        if not out.requires_grad:
            raise ExerciseFeedback("z has the right values but no gradient: it is cut off from mu and "
                                   "scale_tril. Build it with torch operations on them (no .sample(), .detach(), "
                                   "torch.no_grad() or conversion to NumPy): that is the point of the trick.")
        weights = torch.randn(s, d, generator=gen, dtype=torch.float64)
        grad_mu, grad_l = torch.autograd.grad((out * weights).sum(), (mu_leaf, l_leaf), allow_unused=True)
        if grad_mu is None or grad_l is None:
            missing = "mu" if grad_mu is None else "scale_tril"
            raise ExerciseFeedback(f"z has the right values, but no gradient flows back to {missing}: a stray "
                                   f".detach() (or .data, torch.no_grad(), a trip through NumPy) cut {missing} off. "
                                   "Without that gradient the encoder would not learn it.")
        want_l = (weights.T @ eps).tril()  # ∂/∂L of Σ w·(L ε): w εᵀ summed over samples, lower triangle
        if not (_close(grad_mu, weights.sum(0)) and _close(grad_l.tril(), want_l)):
            raise ExerciseFeedback("z has the right values, but its gradients with respect to mu and "
                                   "scale_tril are wrong: compute it directly as mu + eps @ scale_tril.T.")
    _passed(f"✓ reparameterised_sample gives μ + L ε,\n  with gradients, on {n_trials} Gaussians.")


def _explain_cholesky(err: Exception) -> str | None:
    """torch.linalg.cholesky(scale_tril) fails where L, read as a symmetric matrix, is not positive definite."""
    if isinstance(err, torch.linalg.LinAlgError) or "cholesky" in str(err):
        return ("scale_tril is already the Cholesky factor L of the covariance (Σ = L Lᵀ): use it as it is, "
                "z = mu + eps @ scale_tril.T. torch.linalg.cholesky expects a covariance matrix, and L is not one.")
    return None


def _diagnose_factor(got, mu, scale_tril, eps) -> None:
    """Some other matrix used in place of L: its inverse, the Cholesky factor of L, an elementwise square root."""
    if not torch.isfinite(got).all():
        raise ExerciseFeedback("Your z contains NaN or inf. If you took a square root of the covariance L Lᵀ "
                               "element by element (.sqrt()), that is not a matrix square root, and negative entries "
                               "give NaN. L is already the factor you need: z = mu + eps @ scale_tril.T.")
    if _close(got, mu + eps @ torch.linalg.inv(scale_tril).T) or _close(got, mu + eps @ torch.linalg.inv(scale_tril)):
        raise ExerciseFeedback("You used L⁻¹, a factor of the precision Σ⁻¹ = L⁻ᵀ L⁻¹, not of the covariance: "
                               "z = μ + L ε, with L itself (eps @ scale_tril.T).")
    factor, info = torch.linalg.cholesky_ex(scale_tril)
    if int(info) == 0 and _close(got, mu + eps @ factor.T):
        raise ExerciseFeedback("You took the Cholesky factor of scale_tril, but it is already the Cholesky factor L "
                               "of the covariance (Σ = L Lᵀ): use it as it is, z = mu + eps @ scale_tril.T.")
