"""Latent-space arithmetic (vaegen.latent.sampling): prior draws, lerp and slerp paths,
traversals and the 2-D manifold grid. numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from vaegen.latent.sampling import lerp, manifold_2d, sample_prior, slerp, traversal


def test_sample_prior_shape_dtype_and_seed():
    z = sample_prior(7, 5, seed=3)
    assert z.shape == (7, 5) and z.dtype == np.float32
    np.testing.assert_array_equal(z, sample_prior(7, 5, seed=3))
    assert not np.array_equal(z, sample_prior(7, 5, seed=4))
    big = sample_prior(20000, 4, seed=0)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1.0) < 0.02


def test_sample_prior_temperature_scales_the_draws():
    base = sample_prior(50, 3, seed=1)
    for temperature in (0.5, 2.0):
        z = sample_prior(50, 3, seed=1, temperature=temperature)
        assert z.dtype == np.float32
        np.testing.assert_allclose(z, base * temperature, rtol=1e-6)
    zero = sample_prior(50, 3, seed=1, temperature=0.0)
    assert zero.dtype == np.float32 and np.all(zero == 0)


@pytest.mark.parametrize("path", [lerp, slerp])
def test_paths_start_and_end_at_the_given_points(path):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    for steps in (2, 5, 11):
        out = path(a, b, steps)
        assert out.shape == (steps, 8) and out.dtype == np.float32
        np.testing.assert_allclose(out[0], a, atol=1e-6, rtol=0)
        np.testing.assert_allclose(out[-1], b, atol=1e-6, rtol=0)


def test_lerp_is_evenly_spaced():
    a, b = np.zeros(3, np.float32), np.array([1.0, 2.0, -4.0], np.float32)
    np.testing.assert_allclose(lerp(a, b, 5)[2], b / 2, atol=1e-7)
    np.testing.assert_allclose(np.diff(lerp(a, b, 5), axis=0), np.tile(b / 4, (4, 1)), atol=1e-6)


def test_slerp_keeps_the_norm_and_leaves_the_chord():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)  # equal norms, a wide angle apart
    a, b = a.astype(np.float32), b.astype(np.float32)
    norm = np.linalg.norm(a)
    spherical, straight = slerp(a, b, 9), lerp(a, b, 9)
    np.testing.assert_allclose(np.linalg.norm(spherical, axis=1), norm, rtol=1e-4)
    # The straight line cuts inside the sphere; the spherical path does not.
    assert np.linalg.norm(straight[4]) < 0.95 * norm
    assert np.linalg.norm(spherical[4] - straight[4]) > 0.05 * norm


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    a = np.array([1.0, -2.0, 0.5], np.float32)
    for b in (a.copy(), 3 * a, -a, np.zeros(3, np.float32)):
        out = slerp(a, b, 6)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, lerp(a, b, 6), atol=1e-6)


def test_traversal_varies_only_the_chosen_dimension():
    base = np.array([0.3, -1.0, 2.0, 0.7], np.float32)
    steps = 5
    out = traversal(base, steps, span=2.0, dims=[1, 3])
    assert out.shape == (2 * steps, 4) and out.dtype == np.float32
    for row, dim in enumerate([1, 3]):
        block = out[row * steps : (row + 1) * steps]
        np.testing.assert_allclose(block[:, dim], np.linspace(-2.0, 2.0, steps), atol=1e-6)
        others = [d for d in range(4) if d != dim]
        np.testing.assert_array_equal(block[:, others], np.tile(base[others], (steps, 1)))
    # Without dims, every dimension gets a row.
    assert traversal(base, 3).shape == (4 * 3, 4)


@pytest.mark.parametrize("steps", [4, 5, 20])
def test_manifold_2d_is_a_symmetric_grid(steps):
    points = manifold_2d(steps)
    assert points.shape == (steps * steps, 2) and points.dtype == np.float32
    for axis in (0, 1):
        values = np.unique(points[:, axis])
        assert len(values) == steps
        np.testing.assert_allclose(values, -values[::-1], atol=1e-5)
    np.testing.assert_allclose(points.mean(axis=0), 0.0, atol=1e-5)
    # Every (x, y) pair appears once.
    assert len({tuple(p) for p in points.tolist()}) == steps * steps
    # Gaussian quantiles: the grid is denser near 0 than at the edges.
    values = np.unique(points[:, 0])
    gaps = np.diff(values)
    assert gaps[0] > gaps[len(gaps) // 2]
