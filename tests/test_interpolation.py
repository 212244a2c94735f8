"""Tests of lvm.slerp: endpoints, constant norm between codes of equal norm, the textbook formula, the linear
fallback for parallel codes, shapes, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lvm


def codes(d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)


def test_the_path_starts_at_z0_and_ends_at_z1():
    z0, z1 = codes()
    torch.testing.assert_close(lvm.slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(lvm.slerp(z0, z1, 1.0), z1)


def test_codes_of_equal_norm_keep_their_norm_along_the_path():
    z0, z1 = codes(d=20, seed=1)
    z1 = z1 * z0.norm() / z1.norm()
    path = lvm.slerp(z0, z1, torch.linspace(0, 1, 11, dtype=torch.float64))
    assert path.shape == (11, 20)
    torch.testing.assert_close(path.norm(dim=-1), z0.norm().expand(11))
    # while the straight line cuts inside the sphere
    assert ((0.5 * (z0 + z1)).norm() < 0.99 * z0.norm())


@pytest.mark.parametrize("t", [0.1, 0.37, 0.5, 0.9])
def test_agrees_with_the_textbook_formula(t):
    z0, z1 = codes(d=5, seed=2)
    a, b = z0.numpy(), z1.numpy()
    omega = np.arccos(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    expected = np.sin((1 - t) * omega) / np.sin(omega) * a + np.sin(t * omega) / np.sin(omega) * b
    np.testing.assert_allclose(lvm.slerp(z0, z1, t).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_parallel_antiparallel_and_zero_codes_fall_back_to_the_straight_line():
    z0, _ = codes(d=4, seed=3)
    for z1 in (3 * z0, -2 * z0, torch.zeros(4, dtype=torch.float64), z0 * (1 + 1e-14)):
        for t in (0.25, 0.5):
            out = lvm.slerp(z0, z1, t)
            assert torch.isfinite(out).all()
            torch.testing.assert_close(out, (1 - t) * z0 + t * z1)


def test_batches_of_codes_and_of_t_broadcast():
    g = torch.Generator().manual_seed(4)
    z0, z1 = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    out = lvm.slerp(z0, z1, torch.tensor([0.0, 0.5, 1.0]))  # one t per pair
    assert out.shape == (3, 6) and out.dtype == torch.float32
    torch.testing.assert_close(out[0], z0[0])
    torch.testing.assert_close(out[2], z1[2])
    torch.testing.assert_close(out[1], lvm.slerp(z0[1], z1[1], 0.5))
    grid = lvm.slerp(z0, z1, torch.linspace(0, 1, 5)[:, None])  # a path for every pair: [T, n, d]
    assert grid.shape == (5, 3, 6)


@pytest.mark.parametrize("args, message", [
    ((torch.zeros(3), torch.ones(3), 1.5), r"t must lie in \[0, 1\]"),
    ((torch.zeros(3), torch.ones(3), -0.1), r"t must lie in \[0, 1\]"),
    ((torch.tensor(1.0), torch.tensor(2.0), 0.5), r"\[\.\.\., d\]"),
    ((torch.tensor([1.0, float("nan")]), torch.ones(2), 0.5), "z0 must be finite"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        lvm.slerp(*args)


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e20, 1e30])
def test_float32_codes_of_any_size_interpolate_without_overflow(scale):
    # Norms above about 1.8e19 overflowed when squared in float32, and the path was NaN.
    z0 = torch.tensor([3.0, 4.0]) * scale
    z1 = torch.tensor([-4.0, 3.0]) * scale  # orthogonal, equal norm 5 * scale
    mid = lvm.slerp(z0, z1, 0.5)
    assert torch.isfinite(mid).all()
    expected = (torch.tensor([3.0, 4.0]) + torch.tensor([-4.0, 3.0])) / 2**0.5  # the arc's midpoint, norm 5
    assert torch.allclose(mid / scale, expected, rtol=1e-5)


def test_codes_and_t_that_do_not_broadcast_are_refused_with_their_shapes():
    with pytest.raises(ValueError, match=r"z0 \[3\], z1 \[4\] and t \[\] must broadcast"):
        lvm.slerp(torch.ones(3), torch.ones(4), 0.5)
    with pytest.raises(ValueError, match=r"and t \[5\] must broadcast"):
        lvm.slerp(torch.ones(2, 3), torch.ones(2, 3), torch.linspace(0, 1, 5))
