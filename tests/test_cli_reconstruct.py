"""`vaegen reconstruct` (vaegen/cli/reconstruct.py): the grid of inputs
above reconstructions, --out-dir names, odd but valid image files the resize
and the MNIST way, and unreadable inputs. Runs the tiny_bundle fixture (made
with torch) on ONNX Runtime.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import (
    assert_one_line_error,
    grid_size,
    grid_tiles,
    odd_16_bit,
    odd_cmyk_jpeg,
    odd_dark_on_white,
    odd_huge,
    odd_palette,
    odd_rgba,
    odd_tiny,
    png_size,
)
from vaegen.runtime import CPU


@pytest.fixture
def mnist_bundle(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle that preprocesses user images the MNIST way
    (vaegen.json is not checksummed; only the graphs are)."""
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "mnist-model"))
    meta = json.loads((copy / "vaegen.json").read_text())
    meta["preprocessing"] = "mnist"
    (copy / "vaegen.json").write_text(json.dumps(meta))
    return copy


def test_reconstruct_grid_has_inputs_above_reconstructions(vaegen, digits, tmp_path):
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", *digits[:3], "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(3, 2)
    tiles = grid_tiles(out, cols=3, rows=2)
    # The top row is the inputs as the model saw them: the drawn digits themselves.
    for tile, path in zip(tiles[:3], digits[:3], strict=True):
        np.testing.assert_allclose(tile.astype(int), np.asarray(Image.open(path)).astype(int), atol=1)
    assert result.stdout == f"Wrote 3 reconstructions to {out}\n"


def test_one_reconstruction_is_one_reconstruction(vaegen, digits, tmp_path):
    result = vaegen("reconstruct", digits[0], "-o", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote 1 reconstruction to {tmp_path / 'r.png'}\n"


@pytest.mark.parametrize(("name", "fmt"), [("r.jpg", "JPEG"), ("r.webp", "WEBP"), ("r.gif", "GIF")])
def test_reconstruct_format_follows_the_extension(vaegen, digits, tmp_path, name, fmt):
    result = vaegen("reconstruct", *digits[:2], "-o", tmp_path / name, "--scale", 1)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / name) as img:
        assert img.format == fmt and img.size == grid_size(2, 2)


def test_reconstruct_more_images_than_nrow_pairs_rows(vaegen, digits, tmp_path):
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", *digits, digits[0], "-o", out, "--nrow", 2, "--scale", 1)
    assert result.exit_code == 0, result.output
    # 5 images, 2 per row: 3 pairs of rows (input row above reconstruction row).
    assert png_size(out) == grid_size(2, 6)
    tiles = grid_tiles(out, cols=2, rows=6)
    np.testing.assert_allclose(tiles[4].astype(int), np.asarray(Image.open(digits[2])).astype(int), atol=1)
    assert np.all(tiles[9] == 0)  # the odd image's row is padded with blank tiles


def test_reconstruct_default_output_and_json(vaegen, digits, tmp_path):
    result = vaegen("reconstruct", digits[0], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == "reconstructions.png"
    assert data["images"] == [str(digits[0])]
    assert data["provider"] == CPU
    assert png_size(tmp_path / "reconstructions.png") == grid_size(1, 2, scale=2)


def test_reconstruct_out_dir_names_files_after_the_inputs(vaegen, digits, tmp_path):
    jpeg = tmp_path / "photo.jpg"
    Image.open(digits[1]).convert("RGB").save(jpeg)
    folder = tmp_path / "recon"
    result = vaegen("reconstruct", digits[0], jpeg, "--out-dir", folder, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["digit0.png", "photo.png"]
    assert png_size(folder / "digit0.png") == (28, 28)


def test_reconstruct_out_dir_refuses_clashing_names(vaegen, digits, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    clash = other / digits[0].name
    shutil.copy(digits[1], clash)
    result = vaegen("reconstruct", digits[0], clash, "--out-dir", tmp_path / "recon")
    assert result.exit_code == 2
    assert "Two inputs share a file name" in result.stderr


# Odd but valid files (see tests/support.py); test_hardening.py reconstructs and encodes them all.
ODD_INPUTS = [odd_rgba, odd_palette, odd_16_bit, odd_cmyk_jpeg, odd_huge, odd_tiny, odd_dark_on_white]


@pytest.mark.parametrize("make", ODD_INPUTS, ids=lambda f: f.__name__)
def test_reconstruct_odd_inputs(vaegen, tmp_path, make):
    path = make(tmp_path / make.__name__)
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", path, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(1, 2)
    seen = grid_tiles(out, cols=1, rows=2)[0]
    assert int(seen.max()) - int(seen.min()) > 100  # the mark survived the conversion and the resize


@pytest.mark.parametrize("make", ODD_INPUTS, ids=lambda f: f.__name__)
def test_reconstruct_odd_inputs_the_mnist_way(vaegen, mnist_bundle, tmp_path, make):
    path = make(tmp_path / make.__name__)
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", path, "-o", out, "--scale", 1, "--model", mnist_bundle)
    assert result.exit_code == 0, result.output
    seen = grid_tiles(out, cols=1, rows=2)[0]
    # Whatever the mode or the paper, the model sees bright ink on black, centred.
    assert seen.max() > 200
    assert seen.mean() < 80
    assert np.all(seen[:2] == 0) and np.all(seen[-2:] == 0)


def test_reconstruct_blank_image_the_mnist_way_is_an_error(vaegen, mnist_bundle, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (28, 28), 255).save(blank)
    result = vaegen("reconstruct", blank, "-o", tmp_path / "r.png", "--model", mnist_bundle)
    assert_one_line_error(result, 1, f"{blank}: the image is blank: its pixels differ by at most 0.00")
    assert not (tmp_path / "r.png").exists()


def colourful_picture(path: Path) -> Path:
    """A picture that is no digit and not blank: colour gradients and noise, edge to edge."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 80)[None, :]
    rgb[..., 1] = np.linspace(255, 0, 60)[:, None]
    rgb[..., 2] = rng.integers(0, 256, (60, 80))
    Image.fromarray(rgb).save(path)
    return path


def test_a_colourful_picture_is_not_called_blank(vaegen, mnist_bundle, tmp_path):
    picture = colourful_picture(tmp_path / "sunset.png")
    result = vaegen("reconstruct", picture, "-o", tmp_path / "r.png", "--model", mnist_bundle)
    assert_one_line_error(result, 1, f"{picture}: no stroke stands out from the background", "(the contrast is 0.")
    assert "blank" not in result.stderr
    assert not (tmp_path / "r.png").exists()


# ---------------------------------------------------------------- a batch with bad files


@pytest.fixture
def blank(tmp_path) -> Path:
    path = tmp_path / "blank.png"
    Image.new("L", (28, 28), 255).save(path)
    return path


def test_a_bad_file_fails_the_batch_and_nothing_is_written(vaegen, mnist_bundle, digits, blank, tmp_path):
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", blank, digits[0], "-o", out, "--model", mnist_bundle)
    assert_one_line_error(result, 1, f"1 of 2 images cannot be used: {blank}: the image is blank",
                          "Nothing was written; --skip-bad writes the other 1.")
    assert not out.exists()


def test_every_bad_file_is_named_at_once(vaegen, mnist_bundle, digits, blank, tmp_path):
    missing, text = tmp_path / "missing.png", tmp_path / "notes.png"
    text.write_text("not an image\n")
    result = vaegen("reconstruct", digits[0], blank, missing, text, digits[1], "-o", tmp_path / "r.png",
                    "--model", mnist_bundle)
    assert_one_line_error(result, 1, "3 of 5 images cannot be used: ", f"{blank}: the image is blank",
                          f"Image {missing} does not exist", f"{text} is not an image Pillow can read",
                          "--skip-bad writes the other 2.")
    assert not (tmp_path / "r.png").exists()


def test_skip_bad_writes_the_rest_and_names_what_it_skipped(vaegen, mnist_bundle, digits, blank, tmp_path):
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", blank, digits[0], "-o", out, "--model", mnist_bundle, "--skip-bad", "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(1, 2)
    assert result.stderr == f"Skipped: {blank}: the image is blank: its pixels differ by at most 0.00 on a 0-1 scale.\n"
    assert result.stdout == f"Wrote 1 reconstruction to {out}\n"


def test_skip_bad_json_lists_the_skipped_files(vaegen, digits, tmp_path):
    missing = tmp_path / "missing.png"
    folder = tmp_path / "recon"
    result = vaegen("reconstruct", digits[0], missing, digits[1], "--skip-bad", "--json", "--out-dir", folder)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["images"] == [str(digits[0]), str(digits[1])]
    assert data["skipped"] == [{"image": str(missing), "reason": f"Image {missing} does not exist."}]
    assert sorted(p.name for p in folder.iterdir()) == [digits[0].name, digits[1].name]


def test_skip_bad_fails_when_no_image_is_usable(vaegen, tmp_path):
    missing, text = tmp_path / "missing.png", tmp_path / "notes.png"
    text.write_text("not an image\n")
    result = vaegen("reconstruct", missing, text, "--skip-bad", "-o", tmp_path / "r.png")
    assert_one_line_error(result, 1, "None of the 2 images can be used: ", str(missing), str(text))
    assert "--skip-bad" not in result.stderr
    assert not (tmp_path / "r.png").exists()


def test_missing_input_image(vaegen, tmp_path):
    result = vaegen("reconstruct", tmp_path / "missing.png", "-o", tmp_path / "r.png")
    assert_one_line_error(result, 1, f"Image {tmp_path / 'missing.png'} does not exist.")


def test_text_file_named_png(vaegen, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n")
    result = vaegen("reconstruct", fake, "-o", tmp_path / "r.png")
    assert_one_line_error(result, 1, f"{fake} is not an image Pillow can read")
