"""`vaegen interpolate` (vaegen/cli/interpolate.py): the strip and the GIF,
lerp and slerp, the format by -o's extension, what it says it wrote, and bad
options. Runs the tiny_bundle fixture (made with torch) on ONNX Runtime.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support import assert_one_line_error, grid_size, grid_tiles, png_size
from vaegen.runtime import CPU


def test_interpolate_default_output_in_the_working_directory(vaegen, digits, tmp_path):
    result = vaegen("interpolate", digits[0], digits[1])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Wrote 10 interpolation steps to interpolation.png\n"
    # A, 10 decoded steps, B; scale 2.
    assert png_size(tmp_path / "interpolation.png") == grid_size(12, 1, scale=2)


@pytest.mark.parametrize("steps", [2, 5])
def test_interpolate_strip_is_steps_plus_two_wide(vaegen, digits, tmp_path, steps):
    out = tmp_path / "strip.png"
    result = vaegen("interpolate", digits[0], digits[1], "--steps", steps, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {steps} interpolation steps to {out}\n"
    assert png_size(out) == grid_size(steps + 2, 1)
    tiles = grid_tiles(out, cols=steps + 2, rows=1)
    np.testing.assert_allclose(tiles[0].astype(int), np.asarray(Image.open(digits[0])).astype(int), atol=1)
    np.testing.assert_allclose(tiles[-1].astype(int), np.asarray(Image.open(digits[1])).astype(int), atol=1)


def test_interpolate_gif_goes_there_and_back(vaegen, digits, tmp_path):
    result = vaegen("interpolate", digits[0], digits[1], "--gif", "--steps", 6)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Wrote 6 interpolation steps to interpolation.gif\n"
    with Image.open(tmp_path / "interpolation.gif") as gif:
        assert gif.format == "GIF"
        assert gif.is_animated
        assert gif.n_frames == 2 * 6 - 2
        assert gif.size == (28 * 4, 28 * 4)  # --scale 2, doubled for the GIF


def test_interpolate_gif_to_a_named_file(vaegen, digits, tmp_path):
    out = tmp_path / "walk.gif"
    result = vaegen("interpolate", digits[0], digits[1], "--gif", "-o", out, "--steps", 3, "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == 4


def test_interpolate_lerp_and_slerp(vaegen, digits, tmp_path):
    for method in ("lerp", "slerp"):
        result = vaegen("interpolate", digits[0], digits[2], "--method", method, "-o", tmp_path / f"{method}.png",
                        "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["method"] == method
        assert data["steps"] == 10
        assert data["provider"] == CPU
    # Both walks end at the same decoded images.
    lerp_tiles = grid_tiles(tmp_path / "lerp.png", 12, 1, scale=2)
    slerp_tiles = grid_tiles(tmp_path / "slerp.png", 12, 1, scale=2)
    for i in (0, 1, 10, 11):
        np.testing.assert_allclose(lerp_tiles[i].astype(int), slerp_tiles[i].astype(int), atol=2)


def test_interpolate_to_a_gif_name_animates_without_the_flag(vaegen, digits, tmp_path):
    out = tmp_path / "walk.GIF"
    result = vaegen("interpolate", digits[0], digits[1], "-o", out, "--steps", 4, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["animated"] is True
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.is_animated and gif.n_frames == 2 * 4 - 2


@pytest.mark.parametrize(("name", "fmt"), [("walk.jpg", "JPEG"), ("walk.jpeg", "JPEG"), ("walk.webp", "WEBP")])
def test_interpolate_strip_format_follows_the_extension(vaegen, digits, tmp_path, name, fmt):
    out = tmp_path / name
    result = vaegen("interpolate", digits[0], digits[1], "-o", out, "--steps", 3, "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.format == fmt and img.size == grid_size(5, 1)
    assert result.stdout == f"Wrote 3 interpolation steps to {out}\n"


@pytest.mark.parametrize(("flags", "name", "known"), [
    ([], "walk.bmp", ".png, .jpg, .jpeg, .webp or .gif"),
    ([], "walk", ".png, .jpg, .jpeg, .webp or .gif"),
    (["--gif"], "walk.png", ".gif"),
])
def test_interpolate_wrong_suffix_is_a_usage_error(vaegen, digits, tmp_path, flags, name, known):
    result = vaegen("interpolate", digits[0], digits[1], *flags, "-o", tmp_path / name)
    assert_one_line_error(result, 2, f"-o {tmp_path / name}: the file name must end in {known}")
    assert not (tmp_path / name).exists()


def test_interpolate_quiet_prints_nothing(vaegen, digits, tmp_path):
    result = vaegen("interpolate", digits[0], digits[1], "-q", "-o", tmp_path / "i.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""


def test_interpolate_steps_below_two_is_a_usage_error(vaegen, digits):
    result = vaegen("interpolate", digits[0], digits[1], "--steps", 1)
    assert result.exit_code == 2
    assert "Invalid value for '--steps'" in result.stderr


def test_interpolate_method_must_be_known(vaegen, digits):
    result = vaegen("interpolate", digits[0], digits[1], "--method", "cubic")
    assert result.exit_code == 2
    assert "Invalid value for '--method'" in result.stderr


def test_folder_given_as_an_image(vaegen, tmp_path):
    folder = tmp_path / "pics.png"
    folder.mkdir()
    result = vaegen("interpolate", folder, folder, "-o", tmp_path / "i.png")
    assert_one_line_error(result, 1, f"{folder} is a folder, not an image.")
