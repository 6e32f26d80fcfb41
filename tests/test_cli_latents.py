"""`vaegen encode` and `vaegen decode` (vaegen/cli/latents.py): the printed
and written latents, the round trip through .npy and .json files, and latent
files that are refused. Runs the tiny_bundle fixture (made with torch) on
ONNX Runtime.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from tests.support import assert_one_line_error, grid_size, grid_tiles, png_size


def test_encode_json_gives_latent_dim_numbers_per_image(vaegen, digits):
    result = vaegen("encode", *digits[:3], "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["image"] for r in records] == [str(p) for p in digits[:3]]
    for record in records:
        assert len(record["mu"]) == 4 and len(record["logvar"]) == 4
        assert all(isinstance(v, float) and math.isfinite(v) for v in record["mu"] + record["logvar"])


def test_encode_plain_output_is_one_line_per_image(vaegen, digits):
    result = vaegen("encode", *digits[:2])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    name, values = lines[0].split("\t")
    assert name == str(digits[0])
    assert len(values.split()) == 4


def test_encode_npy_then_decode_round_trips(vaegen, digits, tmp_path):
    latents = tmp_path / "x.npy"
    result = vaegen("encode", *digits, "-o", latents)
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Wrote 4 latent vectors to {latents}\n"  # stdout stays the latents alone
    assert len(result.stdout.splitlines()) == 4
    mu = np.load(latents, allow_pickle=False)
    assert mu.shape == (4, 4) and mu.dtype == np.float32
    printed = json.loads(vaegen("encode", *digits, "--json").stdout)
    np.testing.assert_allclose(mu, [r["mu"] for r in printed], atol=1e-6)

    result = vaegen("decode", latents, "--out-dir", tmp_path / "decoded", "--scale", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote 4 decoded images to {tmp_path / 'decoded'}\n"
    # decode(encode(x)) is what reconstruct draws: the same pixels, byte for byte.
    assert vaegen("reconstruct", *digits, "--out-dir", tmp_path / "recon", "--scale", 1).exit_code == 0
    for i, path in enumerate(digits):
        decoded = np.asarray(Image.open(tmp_path / "decoded" / f"decoded_{i:06d}.png"))
        np.testing.assert_array_equal(decoded, np.asarray(Image.open(tmp_path / "recon" / path.name)))


def test_encode_json_file_then_decode(vaegen, digits, tmp_path):
    latents = tmp_path / "z.json"
    assert vaegen("encode", *digits[:2], "-o", latents).exit_code == 0
    assert np.asarray(json.loads(latents.read_text())).shape == (2, 4)
    out = tmp_path / "d.png"
    result = vaegen("decode", latents, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(2, 1)


def test_encode_quiet_says_nothing_on_stderr(vaegen, digits, tmp_path):
    result = vaegen("encode", digits[0], "-o", tmp_path / "z.npy", "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert (tmp_path / "z.npy").is_file()


def test_encode_names_every_bad_file_and_writes_nothing(vaegen, digits, tmp_path):
    missing, text = tmp_path / "missing.png", tmp_path / "notes.png"
    text.write_text("not an image\n")
    result = vaegen("encode", missing, digits[0], text, "-o", tmp_path / "z.npy")
    assert_one_line_error(result, 1, "2 of 3 images cannot be used: ", f"Image {missing} does not exist",
                          f"{text} is not an image Pillow can read", "--skip-bad writes the other 1.")
    assert result.stdout == ""
    assert not (tmp_path / "z.npy").exists()


def test_encode_skip_bad_encodes_the_rest(vaegen, digits, tmp_path):
    missing = tmp_path / "missing.png"
    result = vaegen("encode", digits[0], missing, digits[1], "--skip-bad", "--json", "-o", tmp_path / "z.npy")
    assert result.exit_code == 0, result.output
    assert [r["image"] for r in json.loads(result.stdout)] == [str(digits[0]), str(digits[1])]
    assert result.stderr.splitlines() == [f"Skipped: Image {missing} does not exist.",
                                          f"Wrote 2 latent vectors to {tmp_path / 'z.npy'}"]
    assert np.load(tmp_path / "z.npy").shape == (2, 4)


def test_decode_one_latent_is_one_decoded_image(vaegen, tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((1, 4), np.float32))
    result = vaegen("decode", tmp_path / "one.npy", "-o", tmp_path / "d.webp")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote 1 decoded image to {tmp_path / 'd.webp'}\n"
    with Image.open(tmp_path / "d.webp") as img:
        assert img.format == "WEBP"


def test_decode_accepts_encode_json_output(vaegen, digits, tmp_path):
    records = tmp_path / "records.json"
    records.write_text(vaegen("encode", *digits[:3], "--json").stdout)
    result = vaegen("decode", records, "-o", tmp_path / "d.png", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 3


def test_decode_json_list(vaegen, tmp_path):
    latents = tmp_path / "list.json"
    latents.write_text(json.dumps([[0, 0, 0, 0], [1, -1, 0.5, 2], [0, 0, 0, 0]]))
    out = tmp_path / "d.png"
    result = vaegen("decode", latents, "-o", out, "--scale", 1, "--nrow", 3)
    assert result.exit_code == 0, result.output
    tiles = grid_tiles(out, cols=3, rows=1)
    np.testing.assert_array_equal(tiles[0], tiles[2])


def test_decode_single_vector_npy(vaegen, tmp_path):
    latents = tmp_path / "one.npy"
    np.save(latents, np.zeros(4, np.float32))
    result = vaegen("decode", latents, "-o", tmp_path / "d.png", "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "d.png") == grid_size(1, 1)


@pytest.mark.parametrize(("content", "fragment"), [
    (np.zeros((2, 3), np.float32), "shape (2, 3); this model takes [N, 4]"),
    (np.zeros((2, 2, 4), np.float32), "shape (2, 2, 4); this model takes [N, 4]"),
    (np.zeros((0, 4), np.float32), "shape (0, 4)"),
    (np.array([[np.nan, 0, 0, 0]], np.float32), "not finite numbers"),
])
def test_decode_bad_latent_file_is_an_error(vaegen, tmp_path, content, fragment):
    latents = tmp_path / "bad.npy"
    np.save(latents, content)
    result = vaegen("decode", latents, "-o", tmp_path / "d.png")
    assert_one_line_error(result, 1, str(latents), fragment)
    assert not (tmp_path / "d.png").exists()


@pytest.mark.parametrize("text", ["{not json", '[["a", "b", "c", "d"]]', '{"mu": [1, 2, 3, 4]}'])
def test_decode_unreadable_json_is_an_error(vaegen, tmp_path, text):
    latents = tmp_path / "bad.json"
    latents.write_text(text)
    result = vaegen("decode", latents, "-o", tmp_path / "d.png")
    assert_one_line_error(result, 1, str(latents))


def test_decode_pickled_npy_is_refused(vaegen, tmp_path):
    latents = tmp_path / "objects.npy"
    np.save(latents, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = vaegen("decode", latents, "-o", tmp_path / "d.png")
    assert_one_line_error(result, 1, "not a readable latent file")


def test_decode_missing_file_is_an_error(vaegen, tmp_path):
    result = vaegen("decode", tmp_path / "none.npy", "-o", tmp_path / "d.png")
    assert_one_line_error(result, 1, "does not exist")


def test_truncated_png(vaegen, digits, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(digits[0].read_bytes()[:60])
    result = vaegen("encode", broken)
    assert_one_line_error(result, 1, str(broken))
