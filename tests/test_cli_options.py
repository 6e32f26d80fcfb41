"""What the commands share (vaegen/cli/options.py): --model and --provider,
and output files (-o, --out-dir) that are folders, files or in a missing
folder. Runs the tiny_bundle fixture (made with torch) on ONNX Runtime.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import assert_one_line_error

# ---------------------------------------------------------------- --model and --provider


def test_model_pointing_at_a_missing_folder(vaegen, tmp_path):
    result = vaegen("sample", "--model", tmp_path / "no-model", "-o", tmp_path / "s.png")
    assert_one_line_error(result, 1, f"Model bundle {tmp_path / 'no-model'} does not exist")


def test_model_pointing_at_a_folder_without_a_bundle(vaegen, tmp_path):
    (tmp_path / "empty").mkdir()
    result = vaegen("info", "--model", tmp_path / "empty")
    assert_one_line_error(result, 1, "is not a model bundle: vaegen.json is missing")


def test_provider_bogus_is_a_usage_error(vaegen, tmp_path):
    result = vaegen("sample", "--provider", "bogus", "-o", tmp_path / "s.png")
    assert result.exit_code == 2
    assert "Invalid value for '--provider': 'bogus' is not one of 'auto', 'cuda', 'cpu'." in result.stderr


# ---------------------------------------------------------------- -o and --out-dir


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
