"""Every OS error while writing output is one line `Error: ...`, exit 1, and
leaves no temporary or partial file: tested for real on a read-only tmpfs and
on a tiny full tmpfs (these need root, as CI runs; skipped with a reason
otherwise), on /proc, and on a folder that vanishes mid-write."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support import assert_one_line_error


@contextlib.contextmanager
def tmpfs(where: Path, *, size: str = "64k", read_only: bool = False):
    """A fresh tmpfs mounted at `where` for the test's length."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Fill a file system until it has no byte left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for block in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * block):
                    pass
    finally:
        os.close(fd)


def writing_commands(digits: list[Path], latents: Path, target: Path) -> list[list]:
    """Each light command that writes, aimed at `target` (a folder)."""
    a, b = digits[0], digits[1]
    return [
        ["sample", "-n", 64, "-o", target / "grid.png"],
        ["sample", "-n", 8, "--out-dir", target / "each"],
        ["reconstruct", a, b, "-o", target / "r.png"],
        ["reconstruct", a, b, "--out-dir", target / "r"],
        ["interpolate", a, b, "-o", target / "i.png"],
        ["interpolate", a, b, "--gif", "-o", target / "i.gif"],
        ["encode", a, b, "-o", target / "z.npy"],
        ["encode", a, b, "-o", target / "z.json"],
        ["decode", latents, "-o", target / "d.png"],
        ["decode", latents, "--out-dir", target / "d"],
        ["traverse", "-o", target / "t.png"],
    ]


@pytest.fixture
def latents(tmp_path) -> Path:
    path = tmp_path / "z.npy"
    np.save(path, np.zeros((4, 4), np.float32))
    return path


def test_a_full_disk_is_one_line_and_leaves_nothing(vaegen, tmp_path, digits, latents):
    with tmpfs(tmp_path / "full", size="64k") as disk:
        fill(disk)
        for args in writing_commands(digits, latents, disk):
            result = vaegen(*args)
            assert_one_line_error(result, 1, "No space left on device")
            assert sorted(p.name for p in disk.iterdir()) == ["filler"], args  # no temporary, no partial file


def test_a_read_only_file_system_is_one_line_and_leaves_nothing(vaegen, tmp_path, digits, latents):
    with tmpfs(tmp_path / "ro", read_only=True) as disk:
        for args in writing_commands(digits, latents, disk):
            result = vaegen(*args)
            assert_one_line_error(result, 1, f"Cannot write in {disk}: permission denied")
            assert list(disk.iterdir()) == [], args


def test_a_special_file_system_is_one_line(vaegen, tmp_path):
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    result = vaegen("sample", "-n", 4, "-o", "/proc/vaegen-test.png")
    assert_one_line_error(result, 1, "Cannot write /proc/vaegen-test.png")


def test_fit_prior_on_a_full_disk_leaves_the_bundle_as_it_was(tmp_path, tiny_bundle):
    pytest.importorskip("sklearn")
    import shutil

    from click.testing import CliRunner

    from vaegen.cli import cli

    with tmpfs(tmp_path / "full", size="2m") as disk:
        bundle = Path(shutil.copytree(tiny_bundle, disk / "model"))
        before = {p.name: p.read_bytes() for p in bundle.iterdir()}
        fill(disk)
        result = CliRunner().invoke(cli, ["fit-prior", str(bundle), "--components", "2", "--class-components", "2", "-q"])
        assert_one_line_error(result, 1, "No space left on device")
        assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_a_folder_that_vanishes_while_writing_is_one_line(tmp_path, monkeypatch):
    from vaegen import fileio
    from vaegen.errors import OutputError

    folder = tmp_path / "going"
    folder.mkdir()
    with pytest.raises(OutputError, match="Cannot write .*going/out.txt: No such file or directory"):
        with fileio.atomic_path(folder / "out.txt") as tmp:
            tmp.write_text("half")
            tmp.unlink()
            folder.rmdir()
    assert not folder.exists()


@pytest.mark.torch
def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tiny_bundle):
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from vaegen.cli import cli

    checkpoint = tiny_bundle.parent / "checkpoint.pt"
    with tmpfs(tmp_path / "full", size="1m") as disk:
        fill(disk)
        result = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(disk / "bundle")])
        assert_one_line_error(result, 1, f"Cannot write the bundle {disk / 'bundle'}: No space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
