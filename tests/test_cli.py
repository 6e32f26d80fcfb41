"""The command-line interface (vaegen.cli), light commands only: every command
and option through click's CliRunner, the exact exit codes and one-line
`Error: ...` messages, atomic outputs, and `python -m vaegen` in a subprocess.

The tiny_bundle fixture (latent_dim 4, images 1x28x28, 'resize'
preprocessing) is made with torch; the commands under test run it with ONNX
Runtime. Every test runs in its own tmp_path as the working directory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from tests.conftest import draw_digits
from vaegen import __version__
from vaegen.cli import cli
from vaegen.runtime import CPU, cuda_driver_present

LIGHT_COMMANDS = ["sample", "reconstruct", "interpolate", "encode", "decode", "traverse", "info", "evaluate", "export"]
TILE, PAD = 28, 2

no_gpu = pytest.mark.skipif(cuda_driver_present(), reason="this machine has an NVIDIA driver")


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """Run in tmp_path, with no debug switch or default model from the caller's shell."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAEGEN_DEBUG", raising=False)
    monkeypatch.delenv("VAEGEN_MODEL", raising=False)


@pytest.fixture
def vaegen(tiny_bundle):
    """Invoke the CLI with --model pointing at the tiny bundle (unless given)."""

    def invoke(*args):
        args = [str(a) for a in args]
        if args and args[0] not in ("--help", "--version") and "--model" not in args:
            args += ["--model", str(tiny_bundle)]
        return CliRunner().invoke(cli, args)

    return invoke


@pytest.fixture
def mnist_bundle(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle that preprocesses user images the MNIST way
    (vaegen.json is not checksummed; only the graphs are)."""
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "mnist-model"))
    meta = json.loads((copy / "vaegen.json").read_text())
    meta["preprocessing"] = "mnist"
    (copy / "vaegen.json").write_text(json.dumps(meta))
    return copy


@pytest.fixture
def digits(tmp_path) -> list[Path]:
    """Four white-on-black digit PNGs."""
    images, _ = draw_digits(4, seed=1)
    paths = []
    for i, array in enumerate(images):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def grid_size(cols: int, rows: int, scale: int = 1) -> tuple[int, int]:
    """(width, height) of a grid of 28x28 tiles with 2-pixel padding."""
    return ((cols * (TILE + PAD) + PAD) * scale, (rows * (TILE + PAD) + PAD) * scale)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def grid_tiles(path: Path, cols: int, rows: int, scale: int = 1) -> list[np.ndarray]:
    """The tiles of a grid PNG, row by row, as uint8 arrays."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("L"))
    step, tile, edge = (TILE + PAD) * scale, TILE * scale, PAD * scale
    return [pixels[edge + r * step : edge + r * step + tile, edge + c * step : edge + c * step + tile]
            for r in range(rows) for c in range(cols)]


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    error = lines[0]
    assert error.startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in error, error


# ---------------------------------------------------------------- help and version


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    for name in ["train", *LIGHT_COMMANDS]:
        assert f"\n  {name} " in commands, name


@pytest.mark.parametrize("name", ["train", *LIGHT_COMMANDS])
def test_each_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert f"Usage: cli {name}" in result.output or f"Usage: vaegen {name}" in result.output
    assert "Example:" in result.output
    assert "Traceback" not in result.output


def test_short_help_option_works():
    assert CliRunner().invoke(cli, ["sample", "-h"]).exit_code == 0


def test_version_prints_the_package_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"vaegen, version {__version__}\n"


def test_python_dash_m_vaegen_version():
    done = subprocess.run([sys.executable, "-m", "vaegen", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"vaegen, version {__version__}\n"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["smaple"])
    assert result.exit_code == 2
    assert "No such command 'smaple'" in result.stderr


# ---------------------------------------------------------------- sample


@pytest.mark.parametrize(("n", "nrow", "scale", "cols", "rows"), [
    (16, None, 1, 4, 4),
    (10, None, 1, 4, 3),
    (10, 5, 1, 5, 2),
    (3, 8, 2, 3, 1),
    (1, None, 3, 1, 1),
])
def test_sample_grid_has_the_expected_size(vaegen, tmp_path, n, nrow, scale, cols, rows):
    out = tmp_path / "grid.png"
    args = ["sample", "-n", n, "-o", out, "--scale", scale] + (["--nrow", nrow] if nrow else [])
    result = vaegen(*args)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(cols, rows, scale)
    assert result.stdout == f"Wrote {n} samples to {out}\n"


def test_sample_default_output_goes_to_the_working_directory(vaegen, tmp_path):
    result = vaegen("sample", "-n", 4)
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "samples.png") == grid_size(2, 2)


def test_sample_same_seed_same_bytes_other_seed_other_bytes(vaegen, tmp_path):
    for name, seed in (("a.png", 7), ("b.png", 7), ("c.png", 8)):
        assert vaegen("sample", "-n", 9, "--seed", seed, "-o", tmp_path / name).exit_code == 0
    a, b, c = ((tmp_path / name).read_bytes() for name in ("a.png", "b.png", "c.png"))
    assert a == b
    assert a != c


def test_sample_temperature_zero_gives_identical_tiles(vaegen, tmp_path):
    out = tmp_path / "t0.png"
    assert vaegen("sample", "-n", 6, "--nrow", 3, "--temperature", 0, "-o", out).exit_code == 0
    tiles = grid_tiles(out, cols=3, rows=2)
    assert len(tiles) == 6
    for tile in tiles[1:]:
        np.testing.assert_array_equal(tile, tiles[0])
    warm = tmp_path / "t1.png"
    assert vaegen("sample", "-n", 6, "--nrow", 3, "--temperature", 1, "-o", warm).exit_code == 0
    assert any(not np.array_equal(t, grid_tiles(warm, 3, 2)[0]) for t in grid_tiles(warm, 3, 2)[1:])


def test_sample_out_dir_writes_one_file_per_image(vaegen, tmp_path):
    folder = tmp_path / "many"
    result = vaegen("sample", "-n", 5, "--out-dir", folder, "--scale", 2)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"sample_{i:06d}.png" for i in range(5)]
    assert all(png_size(folder / name) == (56, 56) for name in names)
    assert not (tmp_path / "samples.png").exists()


def test_sample_out_dir_may_exist_already(vaegen, tmp_path):
    folder = tmp_path / "there"
    folder.mkdir()
    assert vaegen("sample", "-n", 2, "--out-dir", folder).exit_code == 0
    assert len(list(folder.iterdir())) == 2


def test_sample_more_than_one_batch(vaegen, tmp_path):
    out = tmp_path / "big.png"
    result = vaegen("sample", "-n", 1500, "--nrow", 50, "-o", out, "--seed", 2)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(50, 30)
    tiles = grid_tiles(out, cols=50, rows=30)
    # The last tile comes from the second batch: it was filled, not left as padding grey.
    assert not np.all(tiles[-1] == 128)


def test_sample_more_than_one_batch_into_a_folder(vaegen, tmp_path):
    result = vaegen("sample", "-n", 1030, "--out-dir", tmp_path / "d", "-q")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "d").iterdir())) == 1030
    assert (tmp_path / "d" / "sample_001029.png").is_file()


def test_sample_json_summary(vaegen, tmp_path):
    out = tmp_path / "j.png"
    result = vaegen("sample", "-n", 3, "--seed", 5, "--json", "-o", out)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == str(out)
    assert data["n"] == 3
    assert data["seed"] == 5
    assert data["temperature"] == 1.0
    assert data["provider"] == CPU
    assert out.is_file()


def test_sample_provider_cpu_and_threads(vaegen, tmp_path):
    result = vaegen("sample", "-n", 2, "--provider", "cpu", "--threads", 1, "--json", "-o", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provider"] == CPU


def test_sample_quiet_prints_nothing(vaegen, tmp_path):
    result = vaegen("sample", "-n", 2, "-q", "-o", tmp_path / "q.png")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""


def test_sample_uses_vaegen_model_env_var(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEGEN_MODEL", str(tiny_bundle))
    result = CliRunner().invoke(cli, ["sample", "-n", 1, "-o", str(tmp_path / "e.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "e.png").is_file()


def test_sample_accepts_a_run_folder_as_model(tiny_bundle, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(tiny_bundle, run / "model")
    result = CliRunner().invoke(cli, ["sample", "-n", 1, "--json", "--model", str(run), "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(run / "model")


# ---------------------------------------------------------------- reconstruct


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


def odd_rgba(path: Path) -> None:
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([8, 8, 32, 32], fill=(0, 0, 0, 255), width=4)
    img.save(path.with_suffix(".png"))


def odd_palette(path: Path) -> None:
    img = Image.new("P", (30, 30), 0)
    img.putpalette([255, 255, 255, 20, 20, 20] + [0] * 762)
    ImageDraw.Draw(img).ellipse([6, 6, 24, 24], outline=1, width=3)
    img.save(path.with_suffix(".png"))


def odd_16_bit(path: Path) -> None:
    array = np.zeros((28, 28), np.uint16)
    array[6:22, 12:16] = 60000
    img = Image.fromarray(array)
    assert img.mode == "I;16"
    img.save(path.with_suffix(".png"))


def odd_cmyk_jpeg(path: Path) -> None:
    img = Image.new("CMYK", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([16, 4, 16, 28], fill=(0, 0, 0, 255), width=4)
    img.save(path.with_suffix(".jpg"), format="JPEG")


def odd_huge(path: Path) -> None:
    img = Image.new("L", (3000, 2000), 0)
    ImageDraw.Draw(img).ellipse([1200, 500, 1800, 1500], outline=255, width=120)
    img.save(path.with_suffix(".png"))


def odd_tiny(path: Path) -> None:
    img = Image.new("L", (5, 5), 0)
    img.putpixel((2, 2), 255)
    img.putpixel((2, 3), 255)
    img.save(path.with_suffix(".png"))


def odd_dark_on_white(path: Path) -> None:
    Image.fromarray(255 - draw_digits(1, seed=4)[0][0]).save(path.with_suffix(".png"))


ODD_IMAGES = [odd_rgba, odd_palette, odd_16_bit, odd_cmyk_jpeg, odd_huge, odd_tiny, odd_dark_on_white]


def make_odd(make, tmp_path: Path) -> Path:
    make(tmp_path / make.__name__)
    (path,) = [p for p in tmp_path.iterdir() if p.stem == make.__name__]
    return path


@pytest.mark.parametrize("make", ODD_IMAGES, ids=lambda f: f.__name__)
def test_reconstruct_odd_inputs(vaegen, tmp_path, make):
    path = make_odd(make, tmp_path)
    out = tmp_path / "r.png"
    result = vaegen("reconstruct", path, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(1, 2)
    seen = grid_tiles(out, cols=1, rows=2)[0]
    assert int(seen.max()) - int(seen.min()) > 100  # the mark survived the conversion and the resize


@pytest.mark.parametrize("make", ODD_IMAGES, ids=lambda f: f.__name__)
def test_reconstruct_odd_inputs_the_mnist_way(vaegen, mnist_bundle, tmp_path, make):
    path = make_odd(make, tmp_path)
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
    assert_one_line_error(result, 1, str(blank), "blank")
    assert not (tmp_path / "r.png").exists()


# ---------------------------------------------------------------- interpolate


def test_interpolate_default_output_in_the_working_directory(vaegen, digits, tmp_path):
    result = vaegen("interpolate", digits[0], digits[1])
    assert result.exit_code == 0, result.output
    assert result.stdout == "interpolation.png\n"
    # A, 10 decoded steps, B; scale 2.
    assert png_size(tmp_path / "interpolation.png") == grid_size(12, 1, scale=2)


@pytest.mark.parametrize("steps", [2, 5])
def test_interpolate_strip_is_steps_plus_two_wide(vaegen, digits, tmp_path, steps):
    out = tmp_path / "strip.png"
    result = vaegen("interpolate", digits[0], digits[1], "--steps", steps, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert png_size(out) == grid_size(steps + 2, 1)
    tiles = grid_tiles(out, cols=steps + 2, rows=1)
    np.testing.assert_allclose(tiles[0].astype(int), np.asarray(Image.open(digits[0])).astype(int), atol=1)
    np.testing.assert_allclose(tiles[-1].astype(int), np.asarray(Image.open(digits[1])).astype(int), atol=1)


def test_interpolate_gif_goes_there_and_back(vaegen, digits, tmp_path):
    result = vaegen("interpolate", digits[0], digits[1], "--gif", "--steps", 6)
    assert result.exit_code == 0, result.output
    assert result.stdout == "interpolation.gif\n"
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


@pytest.mark.parametrize(("flags", "name"), [([], "walk.gif"), (["--gif"], "walk.png"), ([], "walk")])
def test_interpolate_wrong_suffix_is_a_usage_error(vaegen, digits, tmp_path, flags, name):
    result = vaegen("interpolate", digits[0], digits[1], *flags, "-o", tmp_path / name)
    assert result.exit_code == 2
    assert "the file name must end in" in result.stderr
    assert not (tmp_path / name).exists()


def test_interpolate_steps_below_two_is_a_usage_error(vaegen, digits):
    result = vaegen("interpolate", digits[0], digits[1], "--steps", 1)
    assert result.exit_code == 2
    assert "Invalid value for '--steps'" in result.stderr


def test_interpolate_method_must_be_known(vaegen, digits):
    result = vaegen("interpolate", digits[0], digits[1], "--method", "cubic")
    assert result.exit_code == 2
    assert "Invalid value for '--method'" in result.stderr


# ---------------------------------------------------------------- encode and decode


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


# ---------------------------------------------------------------- traverse


def test_traverse_default_grid_has_a_row_per_dimension(vaegen, tmp_path):
    result = vaegen("traverse", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data["dims"]) == [0, 1, 2, 3]
    assert data["steps"] == 11
    assert data["output"] == "traversal.png"
    assert png_size(tmp_path / "traversal.png") == grid_size(11, 4, scale=2)


def test_traverse_chosen_dims(vaegen, tmp_path):
    out = tmp_path / "t.png"
    result = vaegen("traverse", "--dims", "0,2", "--steps", 5, "-o", out, "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(5, 2)
    assert result.stdout == f"Wrote a traversal of dimensions 0, 2 to {out}\n"


def test_traverse_from_an_image(vaegen, digits, tmp_path):
    out = tmp_path / "t.png"
    result = vaegen("traverse", "--image", digits[0], "--dims", 1, "--steps", 3, "--span", 1.5, "-o", out,
                    "--scale", 1)
    assert result.exit_code == 0, result.output
    assert png_size(out) == grid_size(3, 1)


@pytest.mark.parametrize("dims", ["9", "0,4", "-1", "abc", "1;2", ","])
def test_traverse_bad_dims_is_a_usage_error(vaegen, tmp_path, dims):
    result = vaegen("traverse", "--dims", dims, "-o", tmp_path / "t.png")
    assert result.exit_code == 2, result.output
    assert "Invalid value for --dims" in result.stderr
    assert not (tmp_path / "t.png").exists()


def test_traverse_missing_image_is_an_error(vaegen, tmp_path):
    result = vaegen("traverse", "--image", tmp_path / "nope.png", "-o", tmp_path / "t.png")
    assert_one_line_error(result, 1, "nope.png does not exist")


# ---------------------------------------------------------------- info


def test_info_describes_the_bundle(vaegen, tiny_bundle):
    result = vaegen("info")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"model        {tiny_bundle}" in out
    assert "latent_dim 4, image 1x28x28" in out
    assert "preprocessing resize" in out
    assert f"active       {CPU}" in out
    assert "metric       test_neg_elbo = " in out


def test_info_json(vaegen, tiny_bundle):
    result = vaegen("info", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"model", "bundle", "providers"} <= set(data)
    assert data["model"] == str(tiny_bundle)
    assert data["bundle"]["latent_dim"] == 4
    assert data["bundle"]["image_shape"] == [1, 28, 28]
    assert CPU in data["providers"]["usable"]
    assert CPU in data["providers"]["installed"]
    if not cuda_driver_present():
        assert data["providers"]["active"] == CPU


def test_info_with_provider_cpu(vaegen):
    result = vaegen("info", "--json", "--provider", "cpu")
    assert json.loads(result.stdout)["providers"]["active"] == CPU


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_sample_bad_n_is_a_usage_error(vaegen, tmp_path, value):
    result = vaegen("sample", "-n", value, "-o", tmp_path / "s.png")
    assert result.exit_code == 2
    assert "Invalid value for '-n' / '--num'" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(("option", "value"), [
    ("--scale", "0"), ("--scale", "17"), ("--nrow", "0"), ("--temperature", "-1"), ("--threads", "0"),
    ("--seed", "x"),
])
def test_sample_bad_option_values_are_usage_errors(vaegen, option, value):
    result = vaegen("sample", option, value)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert not Path("samples.png").exists()


def test_missing_input_image(vaegen, tmp_path):
    result = vaegen("reconstruct", tmp_path / "missing.png", "-o", tmp_path / "r.png")
    assert_one_line_error(result, 1, f"Image {tmp_path / 'missing.png'} does not exist.")


def test_text_file_named_png(vaegen, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n")
    result = vaegen("reconstruct", fake, "-o", tmp_path / "r.png")
    assert_one_line_error(result, 1, f"{fake} is not an image Pillow can read")


def test_truncated_png(vaegen, digits, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(digits[0].read_bytes()[:60])
    result = vaegen("encode", broken)
    assert_one_line_error(result, 1, str(broken))


def test_folder_given_as_an_image(vaegen, tmp_path):
    folder = tmp_path / "pics.png"
    folder.mkdir()
    result = vaegen("interpolate", folder, folder, "-o", tmp_path / "i.png")
    assert_one_line_error(result, 1, f"{folder} is a folder, not an image.")


def test_model_pointing_at_a_missing_folder(vaegen, tmp_path):
    result = vaegen("sample", "--model", tmp_path / "no-model", "-o", tmp_path / "s.png")
    assert_one_line_error(result, 1, f"Model bundle {tmp_path / 'no-model'} does not exist")


def test_model_pointing_at_a_folder_without_a_bundle(vaegen, tmp_path):
    (tmp_path / "empty").mkdir()
    result = vaegen("info", "--model", tmp_path / "empty")
    assert_one_line_error(result, 1, "is not a model bundle: vaegen.json is missing")


def test_tampered_bundle_is_a_one_line_error(vaegen, tiny_bundle, tmp_path):
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "m"))
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[-10] ^= 1
    (copy / "decoder.onnx").write_bytes(bytes(data))
    result = vaegen("sample", "--model", copy, "-o", tmp_path / "s.png")
    assert_one_line_error(result, 1, "does not match its sha256")


def test_debug_switch_lets_the_traceback_through(vaegen, tmp_path, monkeypatch):
    from vaegen.errors import BundleError

    monkeypatch.setenv("VAEGEN_DEBUG", "1")
    result = vaegen("sample", "--model", tmp_path / "no-model", "-o", tmp_path / "s.png")
    assert result.exit_code == 1
    assert isinstance(result.exception, BundleError)


@no_gpu
def test_provider_cuda_without_a_gpu(vaegen, tmp_path):
    result = vaegen("sample", "--provider", "cuda", "-o", tmp_path / "s.png")
    assert_one_line_error(result, 1, "--provider cuda", "use --provider cpu")
    assert not (tmp_path / "s.png").exists()


@no_gpu
def test_provider_cuda_without_a_gpu_is_one_line_in_a_real_terminal(tiny_bundle, tmp_path):
    # ONNX Runtime logs from C++ straight to file descriptor 2; CliRunner cannot see that.
    env = {k: v for k, v in os.environ.items() if k not in ("VAEGEN_DEBUG", "VAEGEN_MODEL")}
    done = subprocess.run(
        [sys.executable, "-m", "vaegen", "sample", "-n", "1", "--provider", "cuda", "--model", str(tiny_bundle),
         "-o", str(tmp_path / "s.png")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("Error: --provider cuda")


def test_provider_bogus_is_a_usage_error(vaegen, tmp_path):
    result = vaegen("sample", "--provider", "bogus", "-o", tmp_path / "s.png")
    assert result.exit_code == 2
    assert "Invalid value for '--provider': 'bogus' is not one of 'auto', 'cuda', 'cpu'." in result.stderr


@pytest.mark.parametrize("command", ["sample", "decode", "traverse", "reconstruct", "interpolate"])
def test_output_pointing_at_an_existing_folder(vaegen, digits, tmp_path, command):
    folder = tmp_path / "out.png"
    folder.mkdir()
    np.save(tmp_path / "z.npy", np.zeros((1, 4), np.float32))
    inputs = {"decode": [tmp_path / "z.npy"], "reconstruct": digits[:1], "interpolate": digits[:2]}.get(command, [])
    result = vaegen(command, *inputs, "-o", folder)
    assert result.exit_code == 2, result.output
    assert f"-o {folder} is a folder; give a file name." in result.stderr
    assert list(folder.iterdir()) == []


def test_output_in_a_missing_folder(vaegen, tmp_path):
    target = tmp_path / "nowhere" / "s.png"
    result = vaegen("sample", "-o", target)
    assert_one_line_error(result, 1, f"Output folder {tmp_path / 'nowhere'} does not exist; create it first.")
    assert not (tmp_path / "nowhere").exists()


def test_out_dir_that_is_a_file_is_a_usage_error(vaegen, tmp_path):
    (tmp_path / "taken").write_text("x")
    result = vaegen("sample", "--out-dir", tmp_path / "taken")
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.stderr
    assert (tmp_path / "taken").read_text() == "x"


def test_out_dir_with_a_missing_parent(vaegen, tmp_path):
    result = vaegen("sample", "--out-dir", tmp_path / "a" / "b")
    assert_one_line_error(result, 1, "its parent folder does not exist")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("command", ["reconstruct", "encode"])
def test_existing_output_is_untouched_when_the_command_fails(vaegen, tmp_path, command):
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    out = tmp_path / ("old.png" if command == "reconstruct" else "old.npy")
    out.write_bytes(b"precious")
    result = vaegen(command, fake, "-o", out)
    assert_one_line_error(result, 1, "not an image Pillow can read")
    assert out.read_bytes() == b"precious"


def test_existing_output_is_untouched_when_decode_fails(vaegen, tmp_path):
    latents = tmp_path / "z.npy"
    np.save(latents, np.zeros((1, 7), np.float32))
    out = tmp_path / "decoded.png"
    out.write_bytes(b"precious")
    result = vaegen("decode", latents, "-o", out)
    assert result.exit_code == 1
    assert out.read_bytes() == b"precious"


FAILING = {
    "sample, no model": ["sample", "--model", "no-model", "-o", "s.png"],
    "sample to a folder, no model": ["sample", "--model", "no-model", "--out-dir", "new-folder"],
    "reconstruct a missing image": ["reconstruct", "missing.png", "-o", "r.png"],
    "reconstruct a fake image to a folder": ["reconstruct", "fake.png", "--out-dir", "recon"],
    "interpolate to a gif, a fake image": ["interpolate", "digit0.png", "fake.png", "--gif"],
    "encode a fake image to npy": ["encode", "fake.png", "-o", "z.npy"],
    "decode a wrong latent file": ["decode", "wrong.npy", "-o", "d.png"],
    "decode a wrong latent file to a folder": ["decode", "wrong.npy", "--out-dir", "decoded"],
    "traverse bad dims": ["traverse", "--dims", "9", "-o", "t.png"],
    "traverse a fake image": ["traverse", "--image", "fake.png", "-o", "t.png"],
}


@pytest.mark.parametrize("args", FAILING.values(), ids=FAILING.keys())
def test_a_failed_command_leaves_no_new_file(vaegen, digits, tmp_path, args):
    (tmp_path / "fake.png").write_text("not an image")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3), np.float32))
    before = files_under(tmp_path)
    result = vaegen(*args)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert files_under(tmp_path) == before
