"""lvm.diffusion: the forward process, its closed-form posterior, and the ELBO of the best Gaussian decoder."""

import math

import pytest
import torch
from torch.distributions import Normal

import lvm
from lvm import diffusion

MIXTURE = lvm.GaussianMixture([0.3, 0.5, 0.2], [-2.5, 0.5, 3.0], [0.6, 0.9, 0.5]).double().requires_grad_(False)
GRID = torch.linspace(-12, 12, 24_001, dtype=torch.float64)


def test_schedule_keeps_the_asked_for_signal():
    alphas = diffusion.signal_schedule(20, final=0.01)
    bars = diffusion.alpha_bars(alphas)
    assert bars.shape == (20,) and torch.all(bars.diff() < 0)
    torch.testing.assert_close(bars[-1], torch.tensor(0.01, dtype=torch.float64))
    torch.testing.assert_close(bars, torch.cumprod(alphas, 0))


def test_forward_marginal_matches_running_the_chain():
    alphas = torch.tensor([0.9, 0.7, 0.95, 0.5], dtype=torch.float64)
    x0 = torch.tensor([-2.0, 1.5], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = x0.expand(200_000, 2)
    for alpha in alphas:  # x_t = sqrt(α_t) x_{t-1} + sqrt(1 - α_t) ε_t
        x = alpha.sqrt() * x + (1 - alpha).sqrt() * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    marginal = diffusion.forward_marginal(x0, diffusion.alpha_bars(alphas)[-1])
    se = marginal.stddev / math.sqrt(x.shape[0])
    assert torch.all((x.mean(0) - marginal.mean).abs() < 4 * se)
    torch.testing.assert_close(x.var(0), marginal.variance, rtol=0.02, atol=0)


def test_forward_posterior_is_bayes_rule_on_a_grid():
    alpha, before = torch.tensor(0.8, dtype=torch.float64), torch.tensor(0.6, dtype=torch.float64)
    x0, xt = torch.tensor(1.3, dtype=torch.float64), torch.tensor(-0.4, dtype=torch.float64)
    # q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0)
    unnormalised = (Normal(alpha.sqrt() * GRID, (1 - alpha).sqrt()).log_prob(xt)
                    + diffusion.forward_marginal(x0, before).log_prob(GRID)).exp()
    by_bayes = unnormalised / torch.trapezoid(unnormalised, GRID)
    closed = diffusion.forward_posterior(x0, xt, alpha, before).log_prob(GRID).exp()
    torch.testing.assert_close(closed, by_bayes, atol=1e-8, rtol=1e-6)


def test_diffused_mixture_is_the_convolution_and_the_denoised_moments_are_the_posterior_ones():
    keep = 0.3
    noisy = diffusion.diffused_mixture(MIXTURE, keep)
    data = MIXTURE.log_marginal(GRID).exp()
    for xt in (-1.0, 0.2, 2.5):
        xt = torch.tensor(xt, dtype=torch.float64)
        joint = data * diffusion.forward_marginal(GRID, keep).log_prob(xt).exp()  # p(x_0) q(x_t | x_0)
        evidence = torch.trapezoid(joint, GRID)
        torch.testing.assert_close(noisy.log_marginal(xt[None]).exp()[0], evidence, rtol=1e-7, atol=0)
        mean = torch.trapezoid(joint * GRID, GRID) / evidence
        variance = torch.trapezoid(joint * GRID**2, GRID) / evidence - mean**2
        got_mean, got_variance = diffusion.denoised_moments(MIXTURE, xt[None], keep)
        torch.testing.assert_close(got_mean[0], mean, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(got_variance[0], variance, rtol=1e-5, atol=1e-8)


def test_elbo_lies_below_the_exact_log_density_and_closes_in_as_steps_get_finer():
    # log q(x_0) - ELBO(x_0) averaged over the data, as chapter 9 (cell 14) does: a fixed grid of x_0 weighted by
    # the mixture's density (trapezoid rule), and 400 whole forward chains (the low-variance "chain" estimator),
    # one data average per chain, so the standard error is that of the average itself, not of the spread of the
    # gap across x_0 (±0.9 nats, which let an ELBO 0.03 nats above log q(x_0) pass). SEs: 2e-5, 0.0015, 0.0006.
    x0 = torch.linspace(-7, 7, 141, dtype=torch.float64)
    weights = MIXTURE.log_marginal(x0).exp() * (x0[1] - x0[0])
    weights[[0, -1]] /= 2
    assert abs(weights.sum() - 1) < 1e-9  # the grid holds the data's mass; on [-4, 4] it would hold 0.9936
    exact = MIXTURE.log_marginal(x0)
    # the data-averaged gap by quadrature over x_t of eq. (diffusion-elbo) (chapter 9, cell 14), no Monte Carlo
    by_quadrature = {1: 0.166186, 5: 0.117672, 50: 0.006383}
    gaps, ses = [], []
    for steps, reference in by_quadrature.items():
        draws = diffusion.diffusion_elbo(MIXTURE, x0, diffusion.signal_schedule(steps), n_samples=400,
                                         generator=torch.Generator().manual_seed(steps), estimator="chain",
                                         per_draw=True)  # [400 chains, grid]
        draws = (exact - draws) @ weights  # [400], independent, each an unbiased data-averaged gap
        gap, se = draws.mean().item(), (draws.std() / math.sqrt(len(draws))).item()
        # a lower bound, by 11 SEs or more (0.0063 ± 0.0006 at T = 50). An ELBO slightly too high, by the true gap
        # at T = 50 (0.0064 nats), gives a gap of 0 and fails here; the old per-point check let 0.03 nats through
        assert gap > 4 * se
        # 0.1662, 0.1199, 0.0063 against the quadrature, each within 1.5 SEs; a decoder that peeks at x_0 (the
        # encoder's own step for t >= 2) gives -0.33 at T = 5; an ELBO 0.003 nats too high is 5 SEs off at T = 50
        assert abs(gap - reference) < 4 * se
        gaps.append(gap)
        ses.append(se)
    # each refinement closes it, by far more than the noise: 0.046 and 0.114 nats against 4 SEs of 0.006 and 0.006
    for i in range(len(gaps) - 1):
        assert gaps[i] - gaps[i + 1] > 4 * math.hypot(ses[i], ses[i + 1])
    assert gaps[0] > 0.1 and gaps[-1] < 0.01  # one step is poor (0.166); fifty nearly close it (0.0063)


def test_one_step_elbo_by_hand():
    # T = 1: ELBO = E_{x_1}[log N(x_0; E[x_0|x_1], Var[x_0|x_1])] - KL(N(sqrt(a) x_0, 1 - a) || N(0, 1))
    alphas = torch.tensor([0.4], dtype=torch.float64)
    x0 = torch.tensor([0.7, -2.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    elbo = diffusion.diffusion_elbo(MIXTURE, x0, alphas, n_samples=5, generator=gen)
    gen = torch.Generator().manual_seed(3)
    x1 = 0.4**0.5 * x0 + 0.6**0.5 * torch.randn(5, 2, generator=gen, dtype=torch.float64)
    mean, variance = diffusion.denoised_moments(MIXTURE, x1, 0.4)
    recon = Normal(mean, variance.sqrt()).log_prob(x0).mean(0)
    kl = 0.5 * (0.4 * x0**2 + 0.6 - 1 - math.log(0.6))  # KL(N(m, v) || N(0, 1)) = (m² + v - 1 - log v) / 2
    torch.testing.assert_close(elbo, recon - kl)


@pytest.mark.parametrize("call, message", [
    (lambda: diffusion.signal_schedule(0), "steps"),
    (lambda: diffusion.signal_schedule(5, final=1.5), "final"),
    (lambda: diffusion.alpha_bars(torch.tensor([0.5, 1.0])), "alphas must be"),
    (lambda: diffusion.diffusion_elbo(lvm.GaussianMixture([1.0], torch.zeros(1, 2), torch.ones(1, 2)),
                                      torch.zeros(3), torch.tensor([0.5])), "1-D"),
    (lambda: diffusion.diffusion_elbo(MIXTURE, torch.tensor([float("nan")]), torch.tensor([0.5])), "x0"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_reverse_step_is_the_true_reverse_step_on_a_grid():
    # q(x_{t-1} | x_t) ∝ q(x_t | x_{t-1}) q(x_{t-1}), with q(x_{t-1}) the diffused mixture (ᾱ_{t-1} = 1: the data)
    for alpha, before, xt in ((0.7, 0.5, 0.4), (0.3, 1.0, -1.2)):
        alpha = torch.tensor(alpha, dtype=torch.float64)
        xt = torch.tensor([xt], dtype=torch.float64)
        behind = MIXTURE if before == 1.0 else diffusion.diffused_mixture(MIXTURE, before)
        joint = (behind.log_marginal(GRID) + Normal(alpha.sqrt() * GRID, (1 - alpha).sqrt()).log_prob(xt)).exp()
        mass = torch.trapezoid(joint, GRID)
        mean = torch.trapezoid(joint * GRID, GRID) / mass
        variance = torch.trapezoid(joint * (GRID - mean)**2, GRID) / mass
        step = diffusion.reverse_step(MIXTURE, xt, alpha, before)
        torch.testing.assert_close(step.mean[0], mean, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(step.variance[0], variance, rtol=1e-6, atol=1e-8)


def test_chain_and_per_step_estimators_agree_and_per_draw_rows_average_to_the_estimate():
    x0 = torch.tensor([-2.4, 0.3, 2.9], dtype=torch.float64)
    alphas = diffusion.signal_schedule(4, final=0.01)
    draws = {}
    for estimator in ("steps", "chain"):
        rows = diffusion.diffusion_elbo(MIXTURE, x0, alphas, n_samples=4000, estimator=estimator, per_draw=True,
                                        generator=torch.Generator().manual_seed(4))
        assert rows.shape == (4000, 3)
        mean = diffusion.diffusion_elbo(MIXTURE, x0, alphas, n_samples=4000, estimator=estimator,
                                        generator=torch.Generator().manual_seed(4))
        torch.testing.assert_close(rows.mean(0), mean)
        draws[estimator] = rows
    se = (draws["steps"].var(0) / 4000 + draws["chain"].var(0) / 4000).sqrt()
    assert torch.all((draws["steps"].mean(0) - draws["chain"].mean(0)).abs() < 4 * se)
    # No check of ELBO(x0) < log q(x0) here: the ELBO bounds the decoder's log p(x0), not the data's log q(x0), and
    # at a single point it can exceed log q(x0) (by 0.89 nats at x0 = -1.25 with this schedule). The bound holds on
    # average over x0 ~ q: see test_elbo_lies_below_the_exact_log_density_and_closes_in_as_steps_get_finer.


def test_unknown_estimator_is_named():
    with pytest.raises(ValueError, match="estimator"):
        diffusion.diffusion_elbo(MIXTURE, torch.zeros(2), torch.tensor([0.5]), estimator="path")


def _per_step_terms(x0, xt, alpha, before, step_index):
    """The term of eq. (diffusion-elbo) for one step, given x_t, written out from the formulas (no lvm but the
    decoder's reverse step): log p(x_0 | x_1) for the first step, -KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
    for the others."""
    model = diffusion.reverse_step(MIXTURE, xt, alpha, before)
    if step_index == 0:
        return model.log_prob(x0)
    now = alpha * before
    mean = (before.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - before) * xt) / (1 - now)
    variance = (1 - alpha) * (1 - before) / (1 - now)
    # KL(N(m, v) || N(m', v')) = (log(v'/v) + (v + (m - m')²) / v' - 1) / 2
    return -0.5 * ((model.variance / variance).log() + (variance + (mean - model.mean)**2) / model.variance - 1)


def test_per_step_estimator_is_eq_diffusion_elbo_on_its_own_draws():
    # T = 5 with the book's schedule: every term of eq. (diffusion-elbo), written out by hand on the same draws of
    # x_t. Exact to 1e-12; leaving out the last KL puts it 0.0029 and 0.0042 off at x_0 = -2.4 and 2.9, ending the
    # sum at t = T - 1 0.009 and 0.012 off (the sizes of the data-averaged slips in chapter 9: 0.0022 and 0.0065).
    x0 = torch.tensor([-2.4, 0.3, 2.9], dtype=torch.float64)
    alphas = diffusion.signal_schedule(5, final=1e-3)
    bars = diffusion.alpha_bars(alphas)
    rows = diffusion.diffusion_elbo(MIXTURE, x0, alphas, n_samples=7, estimator="steps", per_draw=True,
                                    generator=torch.Generator().manual_seed(6))
    gen = torch.Generator().manual_seed(6)  # the estimator takes one [S, n] draw of noise per step, in order
    total = torch.zeros(7, 3, dtype=torch.float64)
    for t in range(5):
        before = bars[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
        xt = bars[t].sqrt() * x0 + (1 - bars[t]).sqrt() * torch.randn(7, 3, generator=gen, dtype=torch.float64)
        total += _per_step_terms(x0, xt, alphas[t], before, t)
    total -= 0.5 * (bars[-1] * x0**2 - bars[-1] - torch.log1p(-bars[-1]))  # KL(q(x_T | x_0) || N(0, 1))
    torch.testing.assert_close(rows, total, rtol=0, atol=1e-10)


def test_per_step_estimator_averages_to_the_quadrature_of_eq_diffusion_elbo():
    # T = 5, each expectation over x_t ~ q(x_t | x_0) by the trapezoid rule (601 or 1801 points agree to 1e-6),
    # against 20,000 draws per point; the sum over the three points has an SE of about 0.011 (seed 7: 1.5 SEs off).
    # ᾱ_T = 0.01 makes the slips large enough to see on the sum: leaving out the last KL (0.029 + 0.0005 + 0.042)
    # puts it 8 SEs off, ending the sum at t = T - 1 (0.044 + 0.003 + 0.055) 11 SEs off.
    x0 = torch.tensor([-2.4, 0.3, 2.9], dtype=torch.float64)
    alphas = diffusion.signal_schedule(5, final=1e-2)
    bars = diffusion.alpha_bars(alphas)
    grid = torch.linspace(-9, 9, 601, dtype=torch.float64)
    by_quadrature = torch.zeros(3, dtype=torch.float64)
    for t in range(5):
        before = bars[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
        density = Normal(bars[t].sqrt() * x0[:, None], (1 - bars[t]).sqrt()).log_prob(grid).exp()  # [3, grid]
        by_quadrature += torch.trapezoid(density * _per_step_terms(x0[:, None], grid, alphas[t], before, t), grid)
    by_quadrature -= 0.5 * (bars[-1] * x0**2 - bars[-1] - torch.log1p(-bars[-1]))
    rows = diffusion.diffusion_elbo(MIXTURE, x0, alphas, n_samples=20_000, estimator="steps", per_draw=True,
                                    generator=torch.Generator().manual_seed(7))
    # the sum, not each point: the per-draw terms are skewed, and single points at 20,000 draws stray to 3 SEs
    se = (rows.var(0) / 20_000).sum().sqrt()
    assert abs((rows.mean(0) - by_quadrature).sum()) < 4 * se


@pytest.mark.parametrize("call, message", [
    (lambda: diffusion.forward_marginal(torch.zeros(3), 1.5), r"alpha_bar must lie in \(0, 1\)"),
    (lambda: diffusion.forward_marginal(torch.zeros(3), 0.0), r"alpha_bar must lie in \(0, 1\)"),
    (lambda: diffusion.forward_posterior(torch.zeros(3), torch.zeros(3), 0.5, 1.0),
     r"alpha_bar_before must lie in \(0, 1\)"),
    (lambda: diffusion.forward_posterior(torch.zeros(3), torch.zeros(3), -0.5, 0.5), r"alpha must lie in \(0, 1\)"),
    (lambda: diffusion.reverse_step(MIXTURE, torch.zeros(3), 1.2, 1.0), r"alpha must lie in \(0, 1\)"),
    (lambda: diffusion.diffusion_elbo(MIXTURE, torch.zeros(2), torch.tensor([0.5]), generator="seed"),
     "generator must be a torch.Generator, an integer seed or None"),
])
def test_step_functions_name_levels_outside_their_range(call, message):
    # Each gave a NaN or a wrong step without a word (an alpha_bar of 1.5 is a typo, not a noise level).
    with pytest.raises(ValueError, match=message):
        call()


def test_step_functions_take_lists_and_an_integer_seed():
    marginal = diffusion.forward_marginal([0.0, 1.0], 0.25)
    torch.testing.assert_close(marginal.mean, torch.tensor([0.0, 0.5]))
    by_seed = diffusion.diffusion_elbo(MIXTURE, [0.3, 1.0], torch.tensor([0.9, 0.5]), n_samples=5, generator=3)
    by_generator = diffusion.diffusion_elbo(MIXTURE, [0.3, 1.0], torch.tensor([0.9, 0.5]), n_samples=5,
                                            generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(by_seed, by_generator)


def test_a_float32_mixture_with_steps_close_to_one_gives_finite_elbos():
    # alpha = 1 - 1e-8 rounds to 1 in float32, where the steps' variances came out 0 and the ELBO NaN.
    alphas = torch.tensor([1 - 1e-8, 0.5, 0.1], dtype=torch.float64)
    single = lvm.GaussianMixture([0.3, 0.5, 0.2], [-2.5, 0.5, 3.0], [0.6, 0.9, 0.5]).requires_grad_(False)
    assert single.means.dtype == torch.float32  # (MIXTURE.float() would turn the shared MIXTURE itself)
    elbo32 = diffusion.diffusion_elbo(single, torch.tensor([0.3, 1.0]), alphas, n_samples=50,
                                      generator=torch.Generator().manual_seed(0))
    elbo64 = diffusion.diffusion_elbo(MIXTURE, torch.tensor([0.3, 1.0], dtype=torch.float64), alphas,
                                      n_samples=50, generator=torch.Generator().manual_seed(0))
    assert elbo32.dtype == torch.float32 and torch.isfinite(elbo32).all()
    torch.testing.assert_close(elbo32.double(), elbo64, rtol=1e-6, atol=1e-5)
