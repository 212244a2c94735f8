"""lvm.explorers.iwae: the K-sample bound's distribution over repeated runs, on a model with an exact log p(x)."""

from __future__ import annotations

import math
import re
import time

import matplotlib
import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

import lvm
from lvm.explorers import iwae
from tests.test_widgets import assert_control_changes_drawing

matplotlib.use("Agg")

REPEATS = 200
KS = (1, 4, 16, 64)


def small_model():
    """A 3-d linear-Gaussian model with 2 latent dimensions, one point x, its exact log p(x) and ELBO, and a
    deliberately mismatched diagonal q: one posterior standard deviation off the posterior mean in each
    coordinate, and 0.8 times as wide (too narrow, as an ELBO-trained q tends to be)."""
    generator = torch.Generator().manual_seed(3)
    W = torch.randn(3, 2, generator=generator, dtype=torch.float64)
    model = lvm.LinearGaussian(W, torch.zeros(3, dtype=torch.float64), 0.5)
    x = torch.tensor([[1.0, -0.5, 2.0]], dtype=torch.float64)
    with torch.no_grad():
        posterior = model.posterior(x)
        std = posterior.covariance_matrix[0].diagonal().sqrt()
        q = Independent(Normal(posterior.mean + std, 0.8 * std), 1)  # batch [1]
        log_px, elbo = model.log_marginal(x)[0], model.elbo_exact(x, q)[0]
    return model, x, q, float(log_px), float(elbo)  # ELBO 1.10 nats below log p(x)


LOG_PX = r"exact $\log p(\mathbf{x})$"
# How the caption, the chapter's text and the docstring tell the three lines apart: the mean dashed, the
# ELBO dotted, log p(x) solid black. (line style, colour or None)
STYLES = {"mean": ("--", None), "ELBO": (":", None), LOG_PX: ("-", "black")}


def plotted(explorer, label: str) -> float:
    """The position of the vertical line labelled ``label`` in the explorer's current figure, after checking
    that it is drawn in the style the text names it by."""
    (ax,) = explorer.figure.axes
    (line,) = [line for line in ax.lines if line.get_label() == label]
    style, colour = STYLES[label]
    # Swapping the mean's and the ELBO's styles, or dashing log p(x), gives "--" for ":" or the reverse.
    assert line.get_linestyle() == style, (label, line.get_linestyle())
    if colour is not None:
        # log p(x) in a colour of the cycle instead would not be the "solid black" line the text names.
        assert matplotlib.colors.same_color(line.get_color(), colour), (label, line.get_color())
    return float(line.get_xdata()[0])


@pytest.fixture(scope="module")
def built():
    model, x, q, log_px, elbo = small_model()
    start = time.perf_counter()
    explorer = iwae.iwae_explorer(model, x, q, log_px, ks=KS, repeats=REPEATS, seed=0)
    seconds = time.perf_counter() - start
    return explorer, model, x, q, log_px, elbo, seconds


def test_iwae_explorer_builds_fast_on_its_slider(built):
    explorer, *_, seconds = built
    assert seconds < 5  # under a second: 200 runs of 64 draws on a 3-d model
    assert list(explorer.controls) == ["k"] and explorer.controls["k"].options == KS
    assert_control_changes_drawing(explorer, "k", 16)
    assert_control_changes_drawing(explorer, "k", 1)


def test_moving_the_slider_draws_nothing_new(built, monkeypatch):
    explorer, model, *_ = built

    def refuse(*args, **kwargs):
        raise AssertionError("the redraw made new draws of the log-weights")

    # Every way to the log-weights, closed once the explorer is built: a redraw that called iwae_weights,
    # lvm's log_importance_weights (as this module or lvm.bounds holds it) or the model's log p(x, z)
    # again would raise here. A redraw is a histogram of the estimates made when the explorer was built.
    monkeypatch.setattr(iwae, "iwae_weights", refuse)
    monkeypatch.setattr(iwae, "log_importance_weights", refuse)
    monkeypatch.setattr(lvm.bounds, "log_importance_weights", refuse)
    monkeypatch.setattr(model, "joint_log_prob", refuse)
    for k in (64, 4, 1):
        assert_control_changes_drawing(explorer, "k", k)
    assert plotted(explorer, "mean") == pytest.approx(explorer.estimates[1].mean().item())


def test_the_plotted_mean_is_lvms_bound_on_the_same_draws_and_lies_below_the_exact_log_px(built):
    explorer, model, x, q, log_px, _elbo, _ = built
    # The same draws, made independently: R copies of x, lvm's log-weights after the explorer's seed.
    x_rep, q_rep = x.expand(REPEATS, -1), q.expand(torch.Size([REPEATS]))
    torch.manual_seed(0)
    log_w = lvm.log_importance_weights(model, x_rep, q_rep, max(KS))  # [64, R]
    assert torch.equal(explorer.log_weights, log_w)
    torch.manual_seed(0)
    bound = lvm.iwae_bound(model, x_rep, q_rep, max(KS))  # [R], streamed, on the same draws
    means = {}
    for k in KS:
        explorer.controls["k"].value = k
        shown = plotted(explorer, "mean")
        # log of the mean weight, written out (weights here are near e^-8, no overflow): [R]
        expected = log_w[:k].exp().mean(0).log().mean().item()
        # Dropping the - log K would put it log K higher: 2.8 nats at K = 16.
        assert shown == pytest.approx(expected, abs=1e-9)
        if k == max(KS):
            assert shown == pytest.approx(bound.mean().item(), abs=1e-9)
        estimates = explorer.estimates[k]
        se = estimates.std().item() / math.sqrt(REPEATS)
        # A lower bound within Monte Carlo error (at K = 64, 0.03 below, one standard error); without the
        # - log K it would lie 4.1 nats, over 100 standard errors, above log p(x).
        assert shown < log_px + 3 * se
        means[k] = shown
        assert plotted(explorer, LOG_PX) == pytest.approx(log_px)
    # The mismatched q leaves a gap at K = 1, the ELBO's: 1.05 nats (exactly 1.10), which larger K close
    # (0.03 at K = 64). The mean of the log-weights in place of the log of their mean would stay about
    # 1.1 for every K (1.05, 1.15, 1.08, 1.08 at K = 1, 4, 16, 64).
    assert log_px - means[1] > 0.5
    assert log_px - means[max(KS)] < 0.5 * (log_px - means[1])
    # The spread shrinks, from 1.28 to 0.50 nats; estimates that took only the first log-weight of each
    # run at every K would keep 1.28.
    assert explorer.estimates[64].std() < 0.6 * explorer.estimates[1].std()


def test_the_mean_is_drawn_thinner_than_both_reference_lines(built):
    explorer, *_ = built
    # At large K the mean sits on log p(x), and at K = 1 near the ELBO: the module draws both reference lines
    # wide and the mean thin over them, so that each stays visible (the chapter's alt text says so). A mean
    # drawn as wide as them, lw=2.6, would cover the line it sits on.
    for k in (1, max(KS)):
        explorer.controls["k"].value = k
        (ax,) = explorer.figure.axes
        width = {line.get_label(): line.get_linewidth() for line in ax.lines}
        assert width["mean"] < width[LOG_PX] and width["mean"] < width["ELBO"], width
        # One legend under the panel names the three lines (the caption says so; live, it is their only key).
        (legend,) = explorer.figure.legends
        assert [text.get_text() for text in legend.get_texts()] == [line.get_label() for line in ax.lines]
        assert {text.get_text() for text in legend.get_texts()} == {LOG_PX, "ELBO", "mean"}
        (mean,) = [line for line in ax.lines if line.get_label() == "mean"]
        # Over them: drawn later, or above them in z-order.
        assert all((mean.get_zorder(), ax.lines.index(mean)) > (line.get_zorder(), ax.lines.index(line))
                   for line in ax.lines if line is not mean)


def bars(explorer) -> tuple[np.ndarray, np.ndarray]:
    """The heights and the edges of the histogram bars in the explorer's current figure."""
    (ax,) = explorer.figure.axes
    patches = ax.patches
    heights = np.array([patch.get_height() for patch in patches])
    edges = np.array([patch.get_x() for patch in patches] + [patches[-1].get_x() + patches[-1].get_width()])
    return heights, edges


def test_the_histogram_and_title_show_each_ks_estimates_on_one_axis(built):
    explorer, model, x, q, log_px, *_ = built
    # The K-sample estimates computed independently, from lvm's log-weights on the explorer's draws.
    torch.manual_seed(0)
    log_w = lvm.log_importance_weights(model, x.expand(REPEATS, -1), q.expand(torch.Size([REPEATS])), max(KS))
    limits, all_edges = [], []
    for k in KS:
        explorer.controls["k"].value = k
        estimates = (torch.logsumexp(log_w[:k], 0) - math.log(k)).numpy()
        heights, edges = bars(explorer)
        assert len(heights) == 80  # the default number of bins
        # Every run counted in its bin; a histogram left at K = 1 would differ at every other K (its sd is
        # 1.28 nats against 0.50 at K = 64).
        assert heights.sum() == REPEATS
        assert np.array_equal(heights, np.histogram(estimates, bins=edges)[0])
        (ax,) = explorer.figure.axes
        # The tallest bar fits, and fills the axis: its top at 1.05 times it. A fixed ylim (0, 60) would leave
        # the tallest bar here, 10 to 26 runs, under half the axis, and cut off the chapter's spike at K = 1024
        # (516 of 1000 runs in one bar); a ylim of exactly the tallest bar would touch the frame with it.
        assert ax.get_ylim() == pytest.approx((0, 1.05 * heights.max()))
        title = ax.get_title().replace("\N{MINUS SIGN}", "-")
        match = re.search(r"= ([+-]?\d+\.\d{3}), sd (\d+\.\d{3})$", title)
        assert match, title
        # The mean minus log p(x), -1.047 at K = 1 and -0.029 at K = 64 (a reversed sign would show
        # +1.047 and +0.029), and the sd of the K estimates (1.276 at K = 1, 0.495 at K = 64; the sd at
        # K = 1 shown for every K would be 0.78 too high at K = 64). Both to the title's 3 decimals.
        assert float(match[1]) == pytest.approx(estimates.mean() - log_px, abs=6e-4)
        assert float(match[2]) == pytest.approx(estimates.std(ddof=1), abs=6e-4)
        limits.append(ax.get_xlim())
        all_edges.append(edges)
    # One horizontal axis and one set of bins for every K, so that the narrowing shows; limits fitted to
    # each K's estimates would shrink from 6.9 nats wide at K = 1 to 4.0 at K = 64.
    assert all(limit == limits[0] for limit in limits)
    assert all(np.array_equal(edges, all_edges[0]) for edges in all_edges)
    assert limits[0][0] <= all_edges[0][0] and all_edges[0][-1] <= limits[0][1]


@pytest.mark.parametrize("shift", ["elbo far below", "log p(x) far above"])
def test_the_axis_holds_both_lines_and_every_estimate_with_a_margin(shift):
    model, x, q, log_px, elbo = small_model()
    # In the test model both lines sit among the K = 1 estimates, so an axis fitted to the estimates alone
    # would hold them anyway. Here one line lies 20 nats outside every estimate (a stand-in for an ELBO far
    # below the estimates of large K, or a log p(x) far above them).
    if shift == "elbo far below":
        elbo = log_px - 20
    else:
        log_px = log_px + 20
    explorer = iwae.iwae_explorer(model, x, q, log_px, ks=(1, 8), repeats=50, seed=0, elbo=elbo)
    everything = torch.cat(list(explorer.estimates.values()))
    low = min(everything.min().item(), log_px, elbo)
    high = max(everything.max().item(), log_px, elbo)
    for k in (1, 8):
        explorer.controls["k"].value = k
        (ax,) = explorer.figure.axes
        left, right = ax.get_xlim()
        # An axis from the estimates alone (min/max of the estimates only) ends about 17 nats short of the
        # shifted line, which matplotlib then draws outside the axes, where it is clipped away.
        for label in ("ELBO", LOG_PX):
            assert left < plotted(explorer, label) < right, (label, left, right)
        # A margin of 5% of the range on each side, as the docstring says: with no margin the extreme
        # line would sit on the frame (the limits would be low and high exactly, about 1.1 nats closer).
        margin = 0.05 * (high - low)
        assert (left, right) == pytest.approx((low - margin, high + margin), abs=1e-6)
        assert bars(explorer)[0].sum() == 50  # every estimate inside the bins


def test_the_title_shows_a_difference_that_rounds_to_zero_without_a_sign():
    # The chapter's K = 1024 panel: the mean 0.0001 below log p(x). Formatted with "+.3f" alone it would read
    # "-0.000", a sign the number shown does not have.
    assert iwae.signed(-0.0001) == "0.000" and iwae.signed(0.0004) == "0.000"
    # Other differences keep their sign, with a true minus sign: -0.401 at K = 1 in the chapter.
    assert iwae.signed(-0.4013) == "\N{MINUS SIGN}0.401" and iwae.signed(0.0296) == "+0.030"
    # Just past the rounding boundary the sign stays: a title that showed 0.000 for 0.0006 would hide a mean
    # 0.001 above log p(x).
    assert iwae.signed(0.0006) == "+0.001" and iwae.signed(-0.0006) == "\N{MINUS SIGN}0.001"


def test_building_the_explorer_leaves_the_callers_random_state_alone():
    model, x, q, log_px, _ = small_model()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    explorer = iwae.iwae_explorer(model, x, q, log_px, ks=(1, 8), repeats=10, seed=0)
    # Seeding the global generator without fork_rng would leave it where the explorer's draws ended.
    assert torch.equal(torch.get_rng_state(), before)
    # And the seed still fixes the draws: a second explorer, built from another random state, draws the
    # same log-weights.
    torch.manual_seed(7)
    again = iwae.iwae_explorer(model, x, q, log_px, ks=(1, 8), repeats=10, seed=0)
    assert torch.equal(again.log_weights, explorer.log_weights)


def test_a_cpu_build_leaves_every_cuda_generator_alone(monkeypatch):
    model, x, q, log_px, _ = small_model()

    def refuse(*args, **kwargs):
        raise AssertionError("a CPU build reseeded a CUDA generator")

    # torch.manual_seed(seed) inside fork_rng(devices=[]) would call torch.cuda.manual_seed_all, resetting
    # the caller's CUDA generators on a GPU machine (fork_rng restores only the CPU one): it raises here.
    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed", refuse)
    explorer = iwae.iwae_explorer(model, x, q, log_px, ks=(1, 8), repeats=10, seed=1)
    monkeypatch.undo()
    # Still torch.manual_seed(1)'s CPU draws (the same as in test_the_seed_picks_the_draws).
    torch.manual_seed(1)
    expected = lvm.log_importance_weights(model, x.expand(10, -1), q.expand(torch.Size([10])), 8)
    assert torch.equal(explorer.log_weights, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_build_draws_torch_manual_seeds_draws_and_restores_every_generator():
    model, x, q, _log_px, _ = small_model()
    device = torch.device("cuda", torch.cuda.current_device())
    model, x = model.to(device), x.to(device)
    q = Independent(Normal(q.base_dist.loc.to(device), q.base_dist.scale.to(device)), 1)
    torch.manual_seed(123)
    cpu, cuda = torch.get_rng_state(), torch.cuda.get_rng_state_all()
    log_w = iwae.iwae_weights(model, x, q, 8, repeats=10, seed=1)
    # Both generators as they were; seeding without forking this device would leave its generator moved.
    assert torch.equal(torch.get_rng_state(), cpu)
    assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), cuda))
    # The draws torch.manual_seed(1) gives on this device; a CUDA generator left unseeded would differ.
    torch.manual_seed(1)
    expected = lvm.log_importance_weights(model, x.expand(10, -1), q.expand(torch.Size([10])), 8)
    assert torch.equal(log_w, expected.cpu())


def test_x_on_another_device_is_refused_by_name():
    model, x, q, _log_px, _ = small_model()
    with pytest.raises(ValueError, match="x must be on the CPU or a CUDA device"):
        iwae.iwae_weights(model, x.to("meta"), q, 4, repeats=2)


def test_the_seed_picks_the_draws():
    model, x, q, log_px, _ = small_model()
    ks, repeats = (1, 8), 10
    zero = iwae.iwae_explorer(model, x, q, log_px, ks=ks, repeats=repeats, seed=0)
    one = iwae.iwae_explorer(model, x, q, log_px, ks=ks, repeats=repeats, seed=1)
    # Another seed, other draws; a seed ignored (torch.manual_seed(0) whatever the argument) would draw
    # the same log-weights for both.
    assert not torch.equal(one.log_weights, zero.log_weights)
    # The same draws as lvm's, on R copies of x, after torch.manual_seed(1).
    torch.manual_seed(1)
    expected = lvm.log_importance_weights(model, x.expand(repeats, -1), q.expand(torch.Size([repeats])), max(ks))
    assert torch.equal(one.log_weights, expected)


def test_the_elbo_line_is_the_mean_at_k_1_or_the_exact_elbo_when_given(built):
    explorer, model, x, q, log_px, elbo, _ = built
    assert plotted(explorer, "ELBO") == pytest.approx(explorer.estimates[1].mean().item())
    # 200 one-sample ELBOs average to the exact ELBO within Monte Carlo error (1.05 against 1.10 nats
    # below log p(x), 0.6 standard errors); log-weights without their log p(z) would be 3.2 nats higher.
    se = explorer.estimates[1].std().item() / math.sqrt(REPEATS)
    assert abs(explorer.estimates[1].mean().item() - elbo) < 4 * se
    exact = iwae.iwae_explorer(model, x, q, log_px, ks=(1, 8), repeats=10, elbo=elbo)
    assert plotted(exact, "ELBO") == pytest.approx(elbo)


def test_k_1_is_always_estimated_and_gives_the_elbo_line():
    model, x, q, log_px, elbo = small_model()
    repeats = 50
    explorer = iwae.iwae_explorer(model, x, q, log_px, ks=(2, 8), repeats=repeats, seed=0)
    # The slider offers only the given K; the estimates hold K = 1 as well, for the ELBO line. Estimates
    # made only for the slider's K (for k in ks) would hold 2 and 8 and fail to build: no K = 1 to average.
    assert explorer.controls["k"].options == (2, 8)
    assert sorted(explorer.estimates) == [1, 2, 8]
    # The first log-weight of each run, the same as the K = 1 estimates of an explorer whose ks hold 1.
    assert torch.equal(explorer.estimates[1], explorer.log_weights[0])
    for k in (2, 8):
        explorer.controls["k"].value = k
        # The mean at K = 1 (1.03 nats below log p(x) on these 50 runs; exactly 1.10), not the mean at
        # the slider's K: 0.35 nats higher at K = 2, 0.72 at K = 8.
        assert plotted(explorer, "ELBO") == pytest.approx(explorer.estimates[1].mean().item())
    se = explorer.estimates[1].std().item() / math.sqrt(repeats)
    assert abs(explorer.estimates[1].mean().item() - elbo) < 4 * se


def test_the_stand_in_titles_each_k_and_keeps_the_text_readable(built):
    explorer, *_ = built
    lvm.plot.use_course_style()
    figure = explorer.stand_in([{"k": 1}, {"k": 64}], panel_size=(3.3, 2.6))
    titles = [sub._suptitle.get_text() for sub in figure.subfigs]
    assert titles == ["$K$ = 1", "$K$ = 64"]  # K in italics, as in the text
    figure.draw_without_rendering()
    assert lvm.plot.figure_record(figure)["smallest_text_pt"] >= 9
    matplotlib.pyplot.close(figure)


@pytest.mark.parametrize("change, name", [
    ({"ks": (4, 2)}, "ks"), ({"ks": (0, 2)}, "ks"), ({"ks": (1.5,)}, "ks"), ({"ks": ()}, "ks"),
    ({"repeats": 1}, "repeats"), ({"seed": -1}, "seed"), ({"log_px": float("nan")}, "log_px"),
    ({"log_px": "high"}, "log_px"), ({"elbo": float("inf")}, "elbo"), ({"bins": 0}, "bins"),
    ({"bins": 2.5}, "bins"),
])
def test_bad_arguments_are_refused_by_name(change, name):
    model, x, q, log_px, _ = small_model()
    arguments = {"ks": (1, 2), "repeats": 4, "seed": 0, "log_px": log_px, **change}
    with pytest.raises((ValueError, TypeError), match=name):
        iwae.iwae_explorer(model, x, q, **arguments)


def test_x_and_q_must_describe_one_point():
    model, x, q, log_px, _ = small_model()
    two = torch.cat([x, x])
    with pytest.raises(ValueError, match="x must be one data point"):
        iwae.iwae_explorer(model, two, q, log_px, ks=(1, 2), repeats=4)
    q_two = q.expand(torch.Size([2]))
    with pytest.raises(ValueError, match="q must be the proposal for one point"):
        iwae.iwae_explorer(model, x, q_two, log_px, ks=(1, 2), repeats=4)
    with pytest.raises(ValueError, match="k must be at most"):
        iwae.bound_estimates(torch.zeros(4, 3), 5)
