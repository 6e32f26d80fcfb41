"""`vaegen traverse` (vaegen/cli/traverse.py): a row per dimension, most
active first by default, chosen --dims, a traversal from an image, and bad
--dims. Runs the tiny_bundle fixture (made with torch) on ONNX Runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support import assert_one_line_error, grid_size, pixel_change_along, png_size
from vaegen.api import load_model


def test_traverse_default_grid_has_a_row_per_dimension(vaegen, tiny_bundle, tmp_path):
    result = vaegen("traverse", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data["dims"]) == [0, 1, 2, 3]
    # The rows come most active dimension first: decoding z = -2 and z = +2 along each changes fewer pixels down the grid.
    change = pixel_change_along(load_model(tiny_bundle, provider="cpu"), data["dims"])
    assert np.all(np.diff(change) <= 1e-5 * change[0]), change
    assert data["steps"] == 11
    assert data["output"] == "traversal.png"
    assert png_size(tmp_path / "traversal.png") == grid_size(11, 4, scale=2)


def test_traverse_chosen_dims(vaegen, tmp_path):
    out = tmp_path / "t.png"
    result = vaegen("traverse", "--dims", "0,2", "--steps", 5, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(5, 2)
    assert result.stdout == f"Wrote 2 traversals of dimensions 0, 2 to {out}\n"


def test_traverse_from_an_image(vaegen, digits, tmp_path):
    out = tmp_path / "t.png"
    result = vaegen("traverse", "--image", digits[0], "--dims", 1, "--steps", 3, "--span", 1.5, "-o", out,
                    "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(3, 1)
    assert result.stdout == f"Wrote 1 traversal of dimension 1 to {out}\n"


def test_traverse_format_follows_the_extension(vaegen, tmp_path):
    out = tmp_path / "t.jpg"
    result = vaegen("traverse", "--dims", "0", "--steps", 3, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == grid_size(3, 1)


@pytest.mark.parametrize("dims", ["9", "0,4", "-1", "abc", "1;2", ","])
def test_traverse_bad_dims_is_a_usage_error(vaegen, tmp_path, dims):
    result = vaegen("traverse", "--dims", dims, "-o", tmp_path / "t.png")
    assert result.exit_code == 2, result.output
    assert "Invalid value for --dims" in result.stderr
    assert not (tmp_path / "t.png").exists()


def test_traverse_missing_image_is_an_error(vaegen, tmp_path):
    result = vaegen("traverse", "--image", tmp_path / "nope.png", "-o", tmp_path / "t.png")
    assert_one_line_error(result, 1, "nope.png does not exist")
