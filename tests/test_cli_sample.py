"""`vaegen sample` (vaegen/cli/sample.py): grid sizes, the format by -o's
extension, seeds, temperature, --out-dir, more than one batch, --json and
--quiet, where the model comes from, and bad option values. Runs the
tiny_bundle fixture (made with torch) on ONNX Runtime. The fitted prior's
options are tested in test_prior.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import assert_one_line_error, grid_size, grid_tiles, png_size
from vaegen.cli import cli
from vaegen.runtime import CPU


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
    assert result.stdout == (f"Wrote {n} samples to {out}\n" if n > 1 else f"Wrote 1 sample to {out}\n")


@pytest.mark.parametrize(("name", "fmt"), [("x.jpg", "JPEG"), ("x.JPEG", "JPEG"), ("x.webp", "WEBP"), ("x.gif", "GIF"),
                                           ("x.PNG", "PNG")])
def test_sample_format_follows_the_extension(vaegen, tmp_path, name, fmt):
    out = tmp_path / name
    result = vaegen("sample", "-n", 4, "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.format == fmt
        assert img.size == grid_size(2, 2)
        assert getattr(img, "n_frames", 1) == 1  # a still grid, a GIF included
    assert result.stdout == f"Wrote 4 samples to {out}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["x.bmp", "x.tiff", "x", "x.png.txt"])
def test_sample_unknown_extension_lists_the_known_ones(vaegen, tmp_path, name):
    out = tmp_path / name
    result = vaegen("sample", "-n", 4, "-o", out)
    assert_one_line_error(result, 2, f"-o {out}: the file name must end in .png, .jpg, .jpeg, .webp or .gif")
    assert not out.exists()


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
    # A copy at a path of its own: the summary's "model" can only name it if
    # the command read VAEGEN_MODEL (the shipped model writes a PNG as well).
    chosen = Path(shutil.copytree(tiny_bundle, tmp_path / "from-env"))
    monkeypatch.setenv("VAEGEN_MODEL", str(chosen))
    result = CliRunner().invoke(cli, ["sample", "-n", 1, "--json", "-o", str(tmp_path / "e.png")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(chosen)
    assert (tmp_path / "e.png").is_file()


def test_sample_accepts_a_run_folder_as_model(tiny_bundle, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(tiny_bundle, run / "model")
    result = CliRunner().invoke(cli, ["sample", "-n", 1, "--json", "--model", str(run), "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == str(run / "model")


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
