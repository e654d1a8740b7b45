"""The plot helpers turn arrays into pictures without touching the numbers."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from sglrp import plot  # noqa: E402


def test_project_sums_channels():
    h = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(plot.project(h), h.sum(-1))
    np.testing.assert_array_equal(plot.project(h[..., 0]), h[..., 0])


def test_heatmap_is_symmetric_at_the_largest_magnitude():
    h = np.zeros((4, 4, 3))
    h[0, 0] = [1.0, 1.0, 1.0]
    h[1, 1] = [-0.5, 0, 0]
    image = plot.heatmap(h)
    assert image.get_clim() == (-3.0, 3.0)
    assert plot.heatmap(h, M=10).get_clim() == (-10, 10)
    assert plot.heatmap(np.zeros((2, 2))).get_clim() == (-1.0, 1.0)  # no division by zero


def test_to_rgb_maps_sign_to_red_and_blue():
    rgb = plot.to_rgb(np.array([[1.0, -1.0, 0.0]]))
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    red, blue, white = rgb[0]
    assert red[0] > red[2] and blue[2] > blue[0] and white.min() > 200


def test_grid_has_one_panel_per_method(tmp_path):
    image = np.random.default_rng(0).uniform(size=(8, 8, 3))
    maps = {name: np.random.default_rng(1).normal(size=(8, 8, 3)) for name in "abcde"}
    fig = plot.grid(image, maps, ncols=3, title="test")
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["input", *maps]
    fig.savefig(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0
    plot.overlay(image, maps["a"])


def test_overlay_rgb_blends_by_magnitude():
    pixels = np.full((1, 3, 3), 100.0)
    rgb = plot.overlay_rgb(pixels, np.array([[2.0, 0.0, -2.0]]), alpha=1.0)
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 1], [100, 100, 100])  # no relevance: the grey image
    np.testing.assert_array_equal(rgb[0, 0], plot.to_rgb(np.array([[2.0, -2.0]]))[0, 0])
