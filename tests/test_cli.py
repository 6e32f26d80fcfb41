"""The command group (vaegen/cli/__init__.py): the help of every command,
--version, unknown commands, `python -m vaegen`, and how failures reach the
user: one line `Error: ...` with the exit code, the VAEGEN_DEBUG switch that
lets a traceback through, and no file left behind or changed by a command
that fails.

Each command's own behaviour is tested in tests/test_cli_<module>.py, the
shared options (--model, --provider, -o, --out-dir) in test_cli_options.py,
and the cross-command table of bad input in test_hardening.py. The
tiny_bundle fixture is made with torch; the commands run it with ONNX Runtime.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support import assert_one_line_error, no_gpu
from vaegen import __version__
from vaegen.cli import cli

LIGHT_COMMANDS = ["sample", "reconstruct", "interpolate", "encode", "decode", "traverse", "info", "evaluate", "export"]


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


# ---------------------------------------------------------------- failures: one line, nothing left behind


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


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


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
