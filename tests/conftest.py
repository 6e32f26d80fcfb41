"""Shared fixtures: tiny generated datasets, a tiny trained bundle (and one
with a fitted prior), the CLI as the tests invoke it, digit PNGs, and the
clean working directory every CLI test runs in. Plain helpers live in
tests/support.py; nothing imports this file by name.

Nothing here needs ../shared: the data is drawn by the tests themselves.
Every test in a module matching CLEAN_ENV_MODULES (the CLI's) runs with
`clean_env` (in tmp_path, no VAEGEN_* from the shell), marked here once
rather than in each module. It is not autouse for the whole suite: other
tests rely on the working directory. A mark suits hypothesis too, which
refuses a function-scoped fixture only as a test's argument.
"""

from __future__ import annotations

import json
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from tests.support import draw_digits, fake_mnist, write_digit_folder, write_idx_folder
from vaegen.cli import cli
from vaegen.data import named as data_module

CLEAN_ENV_MODULES = ("test_cli*.py", "test_hardening.py", "test_output_errors.py")


def pytest_configure(config):
    """Decoded folders go to a cache of the test session's own, never the user's."""
    import os
    import tempfile

    os.environ.setdefault("VAEGEN_CACHE_DIR", tempfile.mkdtemp(prefix="vaegen-test-cache-"))


def pytest_collectstart(collector):
    """Mark a CLI module before its tests are collected, so `clean_env` joins
    each test's fixtures just as a `pytestmark` line in the module would."""
    if isinstance(collector, pytest.Module) and any(fnmatch(collector.path.name, p) for p in CLEAN_ENV_MODULES):
        collector.add_marker(pytest.mark.usefixtures("clean_env"))


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch) -> Path:
    """A folder of tiny MNIST-layout files, registered as 'mnist' for this test."""
    folder = tmp_path / "mnist"
    digests = write_idx_folder(folder)
    monkeypatch.setitem(data_module.DATASETS, "mnist", fake_mnist(digests))
    return folder


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A tiny MLP VAE trained for one epoch on drawn digits and exported (needs torch)."""
    pytest.importorskip("torch", reason="making the tiny bundle needs the train extra")
    from vaegen.training.config import TrainConfig
    from vaegen.training.export import export_run
    from vaegen.training.loop import train
    from vaegen.training.model import ModelConfig

    root = tmp_path_factory.mktemp("tiny-run")
    folder = write_digit_folder(root / "digits", 200, seed=3)
    cfg = TrainConfig(dataset=str(folder), epochs=2, batch_size=32, seed=0, threads=1)
    run = root / "run"
    train(cfg, ModelConfig(arch="mlp", latent_dim=4, hidden=32), run)
    return export_run(run)


@pytest.fixture(scope="session")
def prior_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny bundle with a prior fitted on its own labelled folder (classes 0-3)."""
    pytest.importorskip("sklearn")
    copy = Path(shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("prior") / "model"))
    result = CliRunner().invoke(cli, ["fit-prior", str(copy), "--components", "3", "--class-components", "2",
                                      "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)["prior"]
    assert facts["classes"] == ["0", "1", "2", "3"] and facts["components"] == 3
    return copy


@pytest.fixture(scope="session")
def colour_bundle(tmp_path_factory) -> Path:
    """A tiny resnet VAE of a labelled 32x32 RGBA folder (three coloured shapes), one epoch, with its prior."""
    pytest.importorskip("torch", reason="making the colour bundle needs the train extra")
    pytest.importorskip("sklearn")
    import vaegen
    from tests.support import write_colour_folder

    root = tmp_path_factory.mktemp("colour-run")
    folder = write_colour_folder(root / "shapes", 90, size=32)
    model = vaegen.train(str(folder), root / "run", epochs=1, image_size=32, channels=3, arch="resnet",
                         res_channels="8,16", latent_dim=8, batch_size=32, threads=1)
    return model.bundle.path


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """Run in tmp_path, with no debug switch, default model or data folder from
    the caller's shell, and none of this machine's datasets in reach (an empty
    HOME for the cache, an empty system folder): CI sets VAEGEN_DATA_DIR to
    the real MNIST, whose files the tiny registered datasets would refuse."""
    monkeypatch.chdir(tmp_path)
    for name in ("VAEGEN_DEBUG", "VAEGEN_MODEL", "VAEGEN_DATA_DIR", "VAEGEN_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    beside = tmp_path.parent / f"{tmp_path.name}-machine"  # outside tmp_path, which tests compare before and after
    monkeypatch.setenv("HOME", str(beside / "home"))
    monkeypatch.setattr(data_module, "SYSTEM_DATA_DIR", beside / "datasets")


@pytest.fixture
def vaegen(tiny_bundle, clean_env):
    """Invoke the CLI as `vaegen ...` with --model pointing at the tiny bundle (unless given)."""

    def invoke(*args):
        args = [str(a) for a in args]
        if args and args[0] not in ("--help", "--version") and "--model" not in args:
            args += ["--model", str(tiny_bundle)]
        return CliRunner().invoke(cli, args, prog_name="vaegen")

    return invoke


# ---------------------------------------------------------------- images


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
