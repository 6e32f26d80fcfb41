"""vaegen.plot: the latent map's scatter and the line chart, drawn with Pillow."""

from __future__ import annotations

import numpy as np

from vaegen.plot import PALETTE, axis_ticks, class_colors, line_chart, scatter_map


def test_class_colors_are_distinct_beyond_the_palette():
    assert class_colors(3) == list(PALETTE[:3])
    many = class_colors(25)
    assert len(set(many)) == 25 and all(c.startswith("#") and len(c) == 7 for c in many)


def test_scatter_map_draws_each_class_in_its_colour():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    xy = rng.normal(size=(400, 2)) * 0.3 + np.where(labels[:, None] == 0, -2.0, 2.0)
    picture = scatter_map(xy, labels, ["left", "right"], bounds=(-4, 4, -4, 4), size=300, title="two")
    assert picture.mode == "RGB" and picture.height > 300 and picture.width > 300
    pixels = np.asarray(picture).reshape(-1, 3).astype(int)
    for color in PALETTE[:2]:
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=1) < 30).sum() > 20  # dots (and the legend) in that colour


def test_scatter_map_without_labels_has_no_legend():
    xy = np.random.default_rng(1).normal(size=(50, 2))
    labelled = scatter_map(xy, np.zeros(50, int), ["only"], bounds=(-3, 3, -3, 3), size=200)
    plain = scatter_map(xy, np.full(50, -1), [], bounds=(-3, 3, -3, 3), size=200)
    assert plain.width < labelled.width


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])


def _near(region: np.ndarray, color: str) -> int:
    return int((np.abs(region.reshape(-1, 3).astype(int) - _rgb(color)).sum(axis=1) < 30).sum())


def test_line_chart_draws_each_series_where_its_points_are():
    """A falling series in the plot's left half, a flat one in its right
    half: each colour is found in its own half of the frame."""
    series = {"falls": [(0, 100), (10, 90), (20, 80)], "flat": [(30, 95), (40, 95), (50, 95)]}
    picture = line_chart(series, x_range=(0, 50), y_range=(70, 110), size=(500, 300), guides={"90": 90.0})
    pixels = np.asarray(picture)
    assert picture.mode == "RGB" and picture.width > 500 and picture.height > 300
    left_edge, width = 12 * 5, 500  # the frame starts after the y axis's labels (5 font sizes)
    left = pixels[:, left_edge : left_edge + width * 2 // 5]
    right = pixels[:, left_edge + width * 3 // 5 : left_edge + width]
    assert _near(left, PALETTE[0]) > 100 and _near(right, PALETTE[0]) == 0
    assert _near(right, PALETTE[1]) > 100 and _near(left, PALETTE[1]) == 0


def test_line_chart_clips_points_outside_its_ranges():
    picture = line_chart({"wild": [(-5, 1e6), (5, -1e6)]}, x_range=(0, 10), y_range=(0, 1), size=(300, 200))
    assert _near(np.asarray(picture), PALETTE[0]) > 20  # drawn, along the frame's edges, without error


def test_ticks_are_round_and_cover_the_range():
    assert axis_ticks(0, 600) == [0, 100, 200, 300, 400, 500, 600]
    assert axis_ticks(85, 110) == [85, 90, 95, 100, 105, 110]
    np.testing.assert_allclose(axis_ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
