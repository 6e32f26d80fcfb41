"""A colour model in every light command: the tiny resnet of a labelled RGBA
folder (conftest's colour_bundle) through sample, reconstruct, interpolate,
traverse, encode/decode, map, score and evaluate, each writing RGB pictures
of the model's size, each without torch (tests/test_torch_free.py holds the
last part for every command)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import write_colour_folder
from vaegen.cli import cli


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    return sorted(write_colour_folder(tmp_path_factory.mktemp("in") / "in", 3, size=80, seed=9).rglob("*.png"))


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="vaegen")
    assert result.exit_code == 0, result.output
    return result


def colourful(path) -> np.ndarray:
    """The picture as RGB, checked to be colour (not grey written as RGB)."""
    img = Image.open(path)
    assert img.mode == "RGB", img.mode
    arr = np.asarray(img).astype(int)
    assert np.abs(arr[..., 0] - arr[..., 2]).max() > 20 or np.abs(arr[..., 0] - arr[..., 1]).max() > 20
    return arr


def test_sample_reconstruct_interpolate_and_traverse_draw_in_colour(colour_bundle, pictures, tmp_path):
    run("sample", "-n", 4, "--nrow", 4, "-o", tmp_path / "s.png", "--model", colour_bundle, "--scale", 1)
    assert colourful(tmp_path / "s.png").shape[:2] == (32 + 4, 4 * 34 + 2)  # 32x32 cells with 2-pixel padding
    run("sample", "-n", 3, "--label", "disc", "-o", tmp_path / "d.png", "--model", colour_bundle)
    run("reconstruct", *pictures, "-o", tmp_path / "r.png", "--model", colour_bundle)
    colourful(tmp_path / "r.png")
    run("interpolate", pictures[0], pictures[1], "-o", tmp_path / "i.gif", "--model", colour_bundle)
    assert Image.open(tmp_path / "i.gif").n_frames > 2
    run("traverse", "-o", tmp_path / "t.png", "--model", colour_bundle)
    colourful(tmp_path / "t.png")


def test_encode_decode_map_and_score_on_a_colour_model(colour_bundle, pictures, tmp_path):
    run("encode", pictures[0], "-o", tmp_path / "z.npy", "--model", colour_bundle)
    assert np.load(tmp_path / "z.npy").shape == (1, 8)
    run("decode", tmp_path / "z.npy", "-o", tmp_path / "d.png", "--model", colour_bundle)
    assert colourful(tmp_path / "d.png").shape[:2] == (72, 72)  # one 32x32 cell, padded, at scale 2
    run("map", "-o", tmp_path / "m.png", "--model", colour_bundle)
    assert Image.open(tmp_path / "m.png").size[0] > 100
    records = json.loads(run("score", *pictures, "--model", colour_bundle, "--json").stdout)
    rows = records["images"] if isinstance(records, dict) else records
    assert len(rows) == 3 and all(r["bits_per_dim"] > 0 for r in rows)
