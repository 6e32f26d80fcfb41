"""vaegen.plot: the latent map's scatter, drawn with Pillow."""

from __future__ import annotations

import numpy as np

from vaegen.plot import PALETTE, class_colors, scatter_map


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
