"""Chapter 6: the VAE loss of a mini-batch."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._feedback import ExerciseFeedback, _call, _close, _invoke, _passed, _start, _tensor

__all__ = ["check_vae_loss"]


def _vae_loss_parts(x, logits, mu, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example Bernoulli log-likelihood and KL to N(0, I), each ``[B]`` (eqs. ``bernoulli-loglik``, ``vae-kl``)."""
    from torch.distributions import Bernoulli

    recon = Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1)
    kl = 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2)).sum(-1)
    return recon, kl


def check_vae_loss(fn: Callable, n_trials: int = 10, seed: int = 7) -> None:
    """Check ``fn(x, logits, mu, sigma) -> loss``, the VAE loss of a minibatch with one sample (eq. ``vae-loss``).

    ``x`` is ``[B, D]`` binary, ``logits`` ``[B, D]`` the decoder's outputs for one reparameterised z per image,
    ``mu`` and ``sigma`` ``[B, D_z]`` the encoder's; the answer is the scalar
    −(1/B) Σ_i [log p(x_i | z_i) − KL(q_i ‖ N(0, I))], and its gradients with respect to ``logits``, ``mu``
    and ``sigma`` must be the loss's (training follows them). Last tests use a confident decoder: logits of ±60 in
    float64, and of 100 and −120 in float32, where exp and sigmoid overflow or round to 0 and 1.
    """
    n_trials, gen = _start(fn, seed, n_trials)
    f64 = torch.float64
    gradient_problem = None  # told after the confident decoder: a wrong value is the first thing to fix
    for _ in range(n_trials):
        # B >= 3: with B = 2, summing the KL over the batch (and averaging the rest) doubles it, as forgetting its ½
        # does, and the two could not be told apart.
        b = int(torch.randint(3, 8, (1,), generator=gen))
        d = b + int(torch.randint(3, 9, (1,), generator=gen))  # D != B, so a mean over the wrong axis shows
        d_z = int(torch.randint(1, 5, (1,), generator=gen))
        x = torch.bernoulli(torch.full((b, d), 0.4, dtype=f64), generator=gen)
        logits = 3 * torch.randn(b, d, generator=gen, dtype=f64)
        mu = torch.randn(b, d_z, generator=gen, dtype=f64)
        sigma = (0.5 * torch.randn(b, d_z, generator=gen, dtype=f64)).exp()
        # Leaves for the gradients; the function gets non-leaf copies, as the encoder's and decoder's outputs are,
        # so a right answer that works in place (sigma.pow_(2)) still runs.
        leaves = [t.clone().requires_grad_(True) for t in (logits, mu, sigma)]
        out = _invoke(fn, "vae_loss", x.clone(), *(t.clone() for t in leaves), copies=False,
                      explain=_explain_probabilities)
        got = _tensor(out, "vae_loss")
        recon, kl = _vae_loss_parts(x, logits, mu, sigma)
        want = -(recon - kl).mean()
        if got.shape == (b,):
            raise ExerciseFeedback(f"You returned one value per image, shape [{b}]: the loss is one number, the "
                                   "mean over the batch of −(reconstruction − KL).")
        if got.numel() != 1:
            raise ExerciseFeedback(f"The loss must be a scalar (a 0-dim tensor); got shape {list(got.shape)}.")
        got = got.reshape(())
        if torch.isnan(got):
            raise ExerciseFeedback("Your loss is NaN. Did you treat the logits as probabilities? They are "
                                   "unconstrained reals: use Bernoulli(logits=logits) or "
                                   "F.binary_cross_entropy_with_logits.")
        if not _close(got, want):
            _diagnose_vae_loss(fn, got, want, recon, kl, b, d, mu, sigma)
        if gradient_problem is None:
            try:
                _check_vae_gradients(out, leaves, x)
            except ExerciseFeedback as problem:
                gradient_problem = problem
    _check_confident_decoder(fn)
    _check_confident_decoder_float32(fn)
    if gradient_problem is not None:
        raise gradient_problem
    _passed(f"✓ vae_loss agrees with lvm on {n_trials} random batches and on confident decoders in float64 and "
            "float32.")


_LOGITS_NOT_PROBABILITIES = (
    "Did you treat the logits as probabilities? The decoder's outputs are logits, any real numbers: "
    "use Bernoulli(logits=logits) or F.binary_cross_entropy_with_logits, not Bernoulli(probs=...) or "
    "F.binary_cross_entropy, which need numbers in [0, 1].")


def _explain_probabilities(err: Exception) -> str | None:
    """Bernoulli(probs=logits) and F.binary_cross_entropy(logits, x) refuse values outside [0, 1]."""
    text = str(err)
    if "probs" in text or "between 0 and 1" in text or "Interval(lower_bound=0.0, upper_bound=1.0)" in text:
        return _LOGITS_NOT_PROBABILITIES
    return None


def _diagnose_vae_loss(fn, got, want, recon, kl, b, d, mu, sigma) -> None:
    def matches(value) -> bool:
        return _close(got, torch.as_tensor(value, dtype=torch.float64))

    if matches(b * want):
        raise ExerciseFeedback(f"Your loss is B = {b} times too large: you summed over the batch. Take the mean "
                               "over the images (the sum over pixels and latent dimensions stays a sum).")
    if matches(-want):
        raise ExerciseFeedback("Your loss has the wrong sign: the loss is MINUS the ELBO, −(reconstruction − KL), "
                               "so that minimising it maximises the ELBO.")
    if matches(-recon.mean()):
        raise ExerciseFeedback("The KL term is missing: the loss is −(reconstruction − KL), averaged over the "
                               "batch.")
    if matches(-(recon + kl).mean()):
        raise ExerciseFeedback("The KL term has the wrong sign: the ELBO SUBTRACTS KL(q ‖ p(z)), so the loss "
                               "adds it: −reconstruction + KL.")
    if matches(-(recon / d - kl).mean()):
        raise ExerciseFeedback("The reconstruction term is averaged over the pixels: the log-likelihood of an "
                               "image is the SUM over its pixels. (F.binary_cross_entropy averages by default: "
                               "use reduction='none' and .sum(-1).)")
    if matches(-(b * recon.mean() - kl.mean())):
        raise ExerciseFeedback("The reconstruction term is summed over the batch but the KL term is averaged "
                               "(reduction='sum' over everything?): average both over the images.")
    if matches(-(recon.mean() - kl.sum())):
        raise ExerciseFeedback(f"The KL term is summed over the batch but the reconstruction term is averaged: with "
                               f"B = {b} the KL counts B times. Average both over the images (the sums over pixels "
                               "and over latent dimensions stay sums).")
    if matches(-(recon - 2 * kl).mean()):
        raise ExerciseFeedback("The KL term is twice too large: it is ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), "
                               "with the ½.")
    kl_log_sigma = 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma)).sum(-1)
    if matches(-(recon - kl_log_sigma).mean()):
        raise ExerciseFeedback("The KL term uses log σ where it needs log σ² = 2 log σ: sigma holds standard "
                               "deviations, not variances.")
    kl_sigma_as_var = 0.5 * (mu**2 + sigma - 1 - torch.log(sigma)).sum(-1)
    if matches(-(recon - kl_sigma_as_var).mean()):
        raise ExerciseFeedback("The KL term treats sigma as a variance: sigma holds standard deviations, so the "
                               "variance is sigma**2.")
    kl_sigma_twice_squared = 0.5 * (mu**2 + sigma**4 - 1 - torch.log(sigma**4)).sum(-1)
    if matches(-(recon - kl_sigma_twice_squared).mean()):
        raise ExerciseFeedback("The KL term uses σ⁴ where it needs σ²: the standard deviation was squared twice. "
                               "Two usual ways: Normal(mu, sigma**2), whose second argument is a standard deviation "
                               "(pass sigma); or sigma.pow_(2) (sigma **= 2), which squares sigma in place, so that a "
                               "later sigma**2 squares it again (put the square in a new variable: var = sigma**2).")
    if abs(got - want) <= 1e-3 * abs(want):
        # A near miss, for which the confident decoder below names the mistake: an ε inside a log moves these
        # losses (logits 3 N(0, 1)) by a small fraction, now and then just past the tolerance (measured over
        # 200 seeds of 10 batches: at most 2.6e-5 of the loss for ε = 1e-8, 2.6e-4 for 1e-7), while at logit 60
        # log(0 + 1e-8) = −18.4 stands where the log-likelihood is −60. The wrong formulas named above are off by
        # 1e-3 of the loss or more (Normal(mu, sigma**2) in the KL, the closest: 1.0e-3; the KL without its ½: 8e-3).
        _check_confident_decoder(fn)
    raise ExerciseFeedback(f"Wrong value: expected {want.item():.6f}, got {got.item():.6f}. The loss is "
                           "−mean_i [Σ_d log Bernoulli(x_id | logits_id) "
                           "− ½ Σ_j (μ_ij² + σ_ij² − 1 − log σ_ij²)].")


def _check_vae_gradients(out: torch.Tensor, leaves: list[torch.Tensor], x: torch.Tensor) -> None:
    """The loss has the right value; its gradients must be the loss's, or training follows something else."""
    if not out.requires_grad:
        raise ExerciseFeedback("Your loss has the right value but no gradient: .item(), float(), torch.tensor(...), "
                               ".detach() or torch.no_grad() cut it off from the logits, mu and sigma, so training "
                               "would not change the encoder or the decoder.")
    try:
        got = torch.autograd.grad(out.reshape(()), leaves, allow_unused=True)
    except RuntimeError as err:
        raise ExerciseFeedback(f"Your loss has the right value, but its gradient cannot be computed ({err}). An "
                               "in-place operation on a tensor that autograd still needs is the usual cause.") from err
    ref_leaves = [t.detach().clone().requires_grad_(True) for t in leaves]
    recon, kl = _vae_loss_parts(x, *ref_leaves)
    want = torch.autograd.grad(-(recon - kl).mean(), ref_leaves)
    parts = (("logits", "reconstruction term"), ("mu", "KL term"), ("sigma", "KL term"))
    for g, w, (name, term) in zip(got, want, parts):
        if g is None or not g.any():
            raise ExerciseFeedback(f"Your loss has the right value, but no gradient reaches {name}: the {term} was "
                                   "cut from the graph (a stray .detach(), .item(), .data or torch.no_grad()), so "
                                   f"training would ignore it.")
        # A looser tolerance than for values: a float32 answer, or an ε inside a log, moves gradients a little.
        if not torch.allclose(g.to(torch.float64), w, rtol=1e-3, atol=1e-6):
            raise ExerciseFeedback(f"Your loss has the right value, but its gradient with respect to {name} is wrong: "
                                   f"part of the {term} is detached or replaced by a constant. Compute the loss "
                                   "from the tensors you are given, with torch operations only.")


def _check_confident_decoder(fn: Callable) -> None:
    # sigmoid(60) rounds to exactly 1 in float64, so log(1 − sigmoid(60)) is log 0 = −inf for a pixel x = 0 at
    # logit 60, and F.binary_cross_entropy clamps it to −100; log(p + 1e-8) gives −18.4 there. (sigmoid(−60) =
    # 8.8e-27 does not round to 0: log sigmoid(−60) = −60 is right.) From the logits the log-likelihood of a wrong
    # pixel is exactly −60 (to 1e-26).
    f64 = torch.float64
    x = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=f64)
    logits = torch.tensor([[60.0, -60.0, 60.0], [-60.0, 60.0, 60.0]], dtype=f64)
    mu, sigma = torch.zeros(2, 1, dtype=f64), torch.ones(2, 1, dtype=f64)
    got = _call(fn, "vae_loss", x, logits, mu, sigma)
    recon, kl = _vae_loss_parts(x, logits, mu, sigma)
    want = -(recon - kl).mean()
    if got.numel() != 1 or not torch.isfinite(got).all() or not _close(got.reshape(()), want):
        raise ExerciseFeedback(
            f"With a confident decoder (logits ±60, pixels that disagree) the loss is {want.item():.4f}; you "
            f"returned {got.flatten().tolist()}. sigmoid(60) rounds to exactly 1, so log(1 − sigmoid(60)) is "
            "log 0; a small constant inside the log (log(p + 1e-8)) or a clamp makes it finite but wrong. "
            "Compute the log-likelihood from the logits: Bernoulli(logits=logits).log_prob(x) or "
            "−F.binary_cross_entropy_with_logits(logits, x, reduction='none').")


def _check_confident_decoder_float32(fn: Callable) -> None:
    # In float32 exp(100) overflows to inf (the largest float32 is e^88.7) and sigmoid(-120) = e^-120 rounds to 0
    # (the smallest is e^-103.3): log(1 + exp(l)) is inf at l = 100, and log(sigmoid(l)) is -inf at l = -120, where
    # x = 0 multiplies it into NaN, even for pixels the decoder gets right. From the logits the log-likelihood is
    # -100 for the pixel it gets wrong and about -e^-100 for the others.
    f32 = torch.float32
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=f32)
    logits = torch.tensor([[100.0, -120.0, 100.0], [-120.0, 100.0, 100.0]], dtype=f32)
    mu, sigma = torch.zeros(2, 1, dtype=f32), torch.ones(2, 1, dtype=f32)
    got = _call(fn, "vae_loss", x, logits, mu, sigma)
    recon, kl = _vae_loss_parts(x.double(), logits.double(), mu.double(), sigma.double())
    want = -(recon - kl).mean()  # 50: one wrong pixel at logit 100, in a batch of two
    if got.numel() == 1 and torch.isfinite(got).all() and _close(got.reshape(()), want):
        return
    raise ExerciseFeedback(
        f"With a confident decoder in float32 (logits 100 and -120) the loss is {want.item():.4f}; you returned "
        f"{got.flatten().tolist()}. In float32 exp(100) overflows to inf and sigmoid(-120) rounds to 0, so "
        "log(1 + exp(l)) is inf and log(sigmoid(l)) is -inf (and 0 × (-inf) is NaN) even for pixels the decoder gets "
        "right. Compute the log-likelihood from the logits with a stable function: "
        "Bernoulli(logits=logits).log_prob(x), −F.binary_cross_entropy_with_logits(logits, x, reduction='none'), "
        "or F.logsigmoid / F.softplus.")
