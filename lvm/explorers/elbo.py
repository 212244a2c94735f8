"""Chapter 4's explorer: move a Gaussian q(z) and watch ELBO = log p(x) − KL(q ‖ p(z | x)).

:func:`elbo_gap_explorer` takes a model whose log-evidence and posterior are exact (a
:class:`~lvm.LinearGaussian` with a one-dimensional latent variable) and one data point x. Two sliders set the
mean m and the standard deviation s of q(z) = N(m, s²), each in steps of 0.01 from its minimum. The figure
shows, above, the densities q(z) and p(z | x); below, on one axis in nats, log p(x) (which q cannot move), the
ELBO, and the gap between them, the KL divergence from q to the posterior. The gap closes only when q is the
posterior.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal, kl_divergence

from ..models.linear import LinearGaussian
from ..plot import COLORS
from ..widgets import Explorer

__all__ = ["elbo_gap_explorer"]

GAP_SHOWN = 4.0  # nats of the number line left of log p(x): a gap larger than this runs off its left edge


def elbo_gap_explorer(model: LinearGaussian, x, m_range=None, s_range=(0.05, 2.0),
                      figsize=(6.4, 4.2)) -> Explorer:
    """Sliders for q(z) = N(m, s²); the figure shows q(z), p(z | x), log p(x), the ELBO and their gap.

    Args:
        model: a :class:`~lvm.LinearGaussian` with ``z_dim == 1``: its ``log_marginal``, ``posterior`` and
            ``elbo_exact`` are exact, so every number drawn is exact too.
        x: one data point, shape ``[d_x]`` or ``[1, d_x]``.
        m_range: the mean slider's ``(min, max)``; by default the posterior mean ± 2, rounded to one decimal.
        s_range: the standard-deviation slider's ``(min, max)``, both positive. Both sliders move in steps of
            0.01 from their minimum, so that with minima written to two decimals, every setting written to two
            decimals in the range can be set, and their readouts show two decimals.
        figsize: the live figure's size in inches.

    The bottom panel's artists carry gid labels that a test can find: the KL bar (``"kl"``, from the ELBO to
    log p(x)) and the markers at the ELBO (``"elbo"``) and at log p(x) (``"log_px"``); when the ELBO lies left of
    the axis, an arrow head at its left end (``"elbo_off_axis"``).
    """
    import ipywidgets as widgets

    if not isinstance(model, LinearGaussian) or model.z_dim != 1:
        got = f"a LinearGaussian with z_dim = {model.z_dim}" if isinstance(model, LinearGaussian) \
            else type(model).__name__
        raise ValueError(f"model must be an lvm.LinearGaussian with a one-dimensional latent variable "
                         f"(z_dim = 1), got {got}")
    x = torch.as_tensor(x, dtype=model.W.dtype)
    if x.dim() == 1:
        x = x[None]
    if x.shape != (1, model.x_dim):
        raise ValueError(f"x must be one data point of shape [{model.x_dim}] or [1, {model.x_dim}], "
                         f"got {list(x.shape)}")
    with torch.no_grad():
        posterior = model.posterior(x)
        log_px = float(model.log_marginal(x)[0])
    post_mean, post_std = float(posterior.mean[0, 0]), float(posterior.stddev[0, 0])
    if m_range is None:
        m_range = (round(post_mean - 2, 1), round(post_mean + 2, 1))
    m_lo, m_hi = _check_range(m_range, "m_range")
    s_lo, s_hi = _check_range(s_range, "s_range")
    if not s_lo > 0:
        raise ValueError(f"s_range must hold two positive standard deviations, got {tuple(s_range)}")

    z = torch.linspace(m_lo - 1.0, m_hi + 1.0, 400, dtype=model.W.dtype)
    post_density = (-0.5 * ((z - post_mean) / post_std) ** 2).exp() / (post_std * math.sqrt(2 * math.pi))
    post_peak = float(post_density.max())

    controls = {
        "m": widgets.FloatSlider(value=min(max(round(post_mean + 1.0, 2), m_lo), m_hi), min=m_lo, max=m_hi,
                                 step=0.01, description="m", continuous_update=True),
        "s": widgets.FloatSlider(value=min(max(1.0, s_lo), s_hi), min=s_lo, max=s_hi, step=0.01,
                                 description="s", continuous_update=True),
    }

    def draw(fig, m, s):
        q = MultivariateNormal(torch.tensor([[m]], dtype=model.W.dtype),
                               scale_tril=torch.tensor([[[s]]], dtype=model.W.dtype))
        with torch.no_grad():
            elbo = float(model.elbo_exact(x, q)[0])
            kl = float(kl_divergence(q, posterior)[0])
        q_density = (-0.5 * ((z - m) / s) ** 2).exp() / (s * math.sqrt(2 * math.pi))

        top, bottom = fig.subplots(2, 1, height_ratios=(4, 3))
        top.plot(z, post_density, color="black", lw=2, label=r"$p(z \mid x)$")
        top.plot(z, q_density, "--", color=COLORS[0], lw=2, label=r"$q(z)$")
        top.fill_between(z, q_density, color=COLORS[0], alpha=0.15)
        top.set_xlim(float(z[0]), float(z[-1]))
        top.set_ylim(0, max(2.5 * post_peak, 1.1 * float(q_density.max())))
        top.set_xlabel("$z$")
        top.set_yticks([])
        top.legend(loc="upper right")

        # Below: one number line in nats, a row for each quantity, with dotted guides joining the rows.
        left = log_px - GAP_SHOWN
        for value, color in ((log_px, "black"), (elbo, COLORS[0])):
            bottom.axvline(value, color=color, lw=0.8, ls=":")
        bottom.barh(0, kl, left=elbo, height=0.55, color=COLORS[1], hatch="//", edgecolor="white", gid="kl")
        bottom.plot([log_px], [2], "D", color="black", ms=7, gid="log_px")
        bottom.plot([elbo], [1], "o", color=COLORS[0], ms=7, gid="elbo")
        if elbo < left:  # off the left edge: an arrow head at the edge says which way it went
            bottom.plot([left], [1], "<", color=COLORS[0], ms=8, clip_on=False, gid="elbo_off_axis")
        bottom.set_xlim(left, log_px + 0.5)
        bottom.set_ylim(-0.6, 2.6)
        bottom.set_yticks([2, 1, 0], [f"log p(x) {_num(log_px)}", f"ELBO {_num(elbo)}", f"KL {_num(kl)}"])
        bottom.set_xlabel("nats")
        bottom.set_title("ELBO = log p(x) − KL", fontsize=10)

    return Explorer(draw, controls, figsize=figsize)


def _num(value: float) -> str:
    """``value`` to two decimals with a true minus sign, as the axes write it."""
    return f"{value:.2f}".replace("-", "\u2212")


def _check_range(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (min, max), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be two finite numbers with min < max, got {value!r}")
    return lo, hi
