"""Argument checks, devices, run profiles, plots and widgets."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import lvm
from lvm import _checks, profiles
from lvm.device import default_device, resolve_device


def test_check_shape_message_shows_expected_and_got():
    with pytest.raises(ValueError, match=r"W must have shape \[3, \*\].*got \[2, 2\]"):
        _checks.check_shape(torch.zeros(2, 2), "W", [3, None])


@pytest.mark.parametrize("value", [0.5, 2, np.float32(-1.5), torch.tensor(3.0), torch.tensor([4.0])])
def test_check_real_accepts_one_real_number_in_any_form(value):
    assert _checks.check_real(value, "mu") == pytest.approx(float(value))


@pytest.mark.parametrize("value, error, said", [
    (True, TypeError, "mu must be one real number, got True"),
    ("0.5", TypeError, "mu must be one real number, got str"),
    (torch.tensor([1.0, 2.0]), TypeError, "mu must be one real number, got Tensor"),
    (float("nan"), ValueError, "mu must be finite, got nan"),
    (-np.inf, ValueError, "mu must be finite, got -inf"),
])
def test_check_real_names_the_argument_and_says_what_was_wrong(value, error, said):
    with pytest.raises(error, match=re.escape(said)):
        _checks.check_real(value, "mu")


def test_probability_vector_tolerates_rounding_only():
    _checks.check_probability_vector(torch.tensor([1 / 3] * 3), "weights")
    with pytest.raises(ValueError, match="sum to 1"):
        _checks.check_probability_vector(torch.tensor([0.3, 0.3]), "weights")


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    # Whatever this machine has: the availability of each backend is what the test sets.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert default_device() == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)


def test_resolve_and_describe_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="device must be None, 'cpu', 'cuda', 'mps' or a torch.device, got 'tpu"):
        resolve_device("tpu-please")
    threads = torch.get_num_threads()
    try:  # one thread is "1 thread", not "1 threads"
        torch.set_num_threads(1)
        assert lvm.describe_device("cpu") == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert lvm.describe_device("cpu") == "cpu (2 threads)"
    finally:
        torch.set_num_threads(threads)
    assert lvm.describe_device("mps") == "mps (Apple GPU)"


def test_profiles(monkeypatch):
    profiles.current_profile.cache_clear()
    monkeypatch.setenv("LVM_PROFILE", "full")
    assert profiles.current_profile().name == "full"
    profiles.current_profile.cache_clear()
    monkeypatch.setenv("LVM_PROFILE", "fast")
    with pytest.raises(ValueError, match="LVM_PROFILE"):
        profiles.current_profile()
    profiles.current_profile.cache_clear()
    monkeypatch.delenv("LVM_PROFILE")
    assert profiles.current_profile().name == ("full" if torch.cuda.is_available() else "quick")
    profiles.current_profile.cache_clear()
    quick, full = profiles.profile_named("quick"), profiles.profile_named("full")
    assert quick.mnist_train + quick.mnist_val <= 10_000  # the quick profile lives inside the test split
    assert full.vae_epochs > quick.vae_epochs and full.eval_k >= 5000


def test_mixture_figures_draw_what_they_say():
    model = lvm.GaussianMixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.0])
    _, ax = plt.subplots()
    lvm.plot.plot_mixture(model, ax=ax, x_range=(-4, 5))
    lines = ax.get_lines()
    assert len(lines) == 3  # two weighted components and the marginal
    x, y = lines[-1].get_data()
    assert torch.allclose(torch.as_tensor(y), model.log_marginal(torch.as_tensor(x)).exp(), atol=1e-6)
    _fig, ax = plt.subplots()
    lvm.plot.plot_responsibilities(model, ax=ax)
    assert len(ax.collections) == 2
    assert ax.get_ylim() == (0, 1)  # the stacked areas fill the interval from 0 to 1, no band above
    with pytest.raises(ValueError, match="model"):
        lvm.plot.plot_mixture(lvm.GaussianMixture([1.0], torch.zeros(1, 2), torch.ones(1, 2)))
    plt.close("all")


def test_image_grid_tiles_images():
    _fig, ax = plt.subplots()
    lvm.plot.plot_image_grid(torch.rand(10, 784), nrow=5, ax=ax)
    assert ax.images[0].get_array().shape == (2 * 29 + 1, 5 * 29 + 1)
    plt.close("all")


def test_samples_vs_density_draws_a_normalised_histogram_under_the_density():
    model = lvm.GaussianMixture([0.5, 0.5], [-2.0, 2.0], [0.5, 0.5])
    x, _ = lvm.ancestral_sample(model, 2000, generator=0)
    _fig, ax = plt.subplots()
    lvm.plot.plot_samples_vs_density(model, x, ax=ax, bins=40, label="fitted $p(x)$")
    heights = [patch.get_height() for patch in ax.patches]
    widths = [patch.get_width() for patch in ax.patches]
    assert len(heights) == 40 and abs(sum(h * w for h, w in zip(heights, widths)) - 1) < 1e-6
    assert ax.get_lines()[-1].get_label() == "fitted $p(x)$"
    grid = ax.get_lines()[-1].get_xdata()  # the density over all the samples, not part of them
    assert grid.min() <= float(x.min()) and grid.max() >= float(x.max())
    plt.close("all")


def test_history_plot_shows_both_curves():
    history = lvm.History(epoch=[1, 2, 3], train_elbo=[-200.0, -150.0, -120.0], val_elbo=[-190.0, -160.0, -130.0])
    _, ax = plt.subplots()
    lvm.plot.plot_history(history, ax=ax)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train", "validation"]
    assert list(lines[1].get_ydata()) == history.val_elbo
    _fig, ax = plt.subplots()
    lvm.plot.plot_history(lvm.History(epoch=[1], train_elbo=[-1.0]), ax=ax)  # no validation set
    assert len(ax.get_lines()) == 1
    plt.close("all")


def test_integer_like_arguments_are_accepted_everywhere():
    import numpy as np

    mixture = lvm.GaussianMixture([0.5, 0.5], [-2.0, 2.0], [1.0, 1.0])
    x, _ = lvm.ancestral_sample(mixture, np.int64(50), generator=np.int64(0))
    assert x.shape == (50,)
    assert lvm.ancestral_sample(mixture, torch.tensor(3), generator=torch.tensor(1))[0].shape == (3,)
    result = lvm.fit_em(x, np.int64(2), n_iter=torch.tensor(3), generator=torch.Generator().manual_seed(0))
    assert len(result.log_likelihood) == 4
    data = torch.randn(30, 4, generator=torch.Generator().manual_seed(0))
    linear = lvm.LinearGaussian.fit(data, np.int64(2), ddof=np.int64(1))
    q = linear.posterior(data)
    assert lvm.iwae_bound(linear, data, q, k=np.int64(3), chunk_size=torch.tensor(2)).shape == (30,)
    assert lvm.elbo(linear, data, q, n_samples=np.int32(2)).shape == (30,)
    vae = lvm.VAE(np.int64(4), np.int64(2), hidden=(np.int64(8),))
    assert vae.z_dim == 2 and isinstance(vae.x_dim, int)


@pytest.mark.parametrize("bad, shown", [(2.5, "2.5 (a float)"), ("3", "'3' (a str)"), (True, "True (a bool)"),
                                        (torch.tensor(2.0), "(a Tensor)"), (0, "got 0")])
def test_non_integers_are_refused_with_a_message_that_says_why(bad, shown):
    mixture = lvm.GaussianMixture([1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="n must be a positive integer, got") as info:
        lvm.ancestral_sample(mixture, bad)
    assert shown in str(info.value)


def test_a_number_held_in_a_0d_tensor_or_numpy_scalar_is_a_number():
    # lr=torch.tensor(1e-3), beta=np.float32(4) and threshold=torch.tensor(0.01) were refused as "must be a number".
    x = (torch.rand(16, 8) > 0.5).float()
    model = lvm.VAE(8, 2, hidden=(8,))
    history = lvm.fit(model, x, epochs=1, lr=torch.tensor(1e-3), progress=False, device="cpu",
                      objective=lvm.objectives.elbo(beta=np.float32(4.0), free_bits=torch.tensor(0.1)))
    assert history.lr == [pytest.approx(1e-3)]
    assert lvm.diagnostics.active_units(model, x, threshold=torch.tensor(0.01)) >= 0
    for not_a_number in (torch.tensor([1e-3, 2e-3]), torch.tensor(True), "0.001"):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            lvm.fit(model, x, epochs=1, lr=not_a_number, progress=False, device="cpu")
