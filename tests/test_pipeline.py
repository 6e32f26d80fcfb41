"""The library's train (vaegen.train, vaegen/training/pipeline.py): a whole
run from Python, each bundle file written once, the checkpoint read once and
the data loaded once a run; and the README's example of it.

These tests need torch and scikit-learn (the train extra).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support import write_digit_folder

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import vaegen  # noqa: E402
from vaegen.cli import cli  # noqa: E402
from vaegen.errors import ArgumentError  # noqa: E402
from vaegen.latent import fit  # noqa: E402
from vaegen.recipes import recipe  # noqa: E402
from vaegen.training import loop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = {"latent_dim": 4, "hidden": 32, "batch_size": 16, "threads": 1}
BUNDLE_FILES = ("vaegen.json", "README.md", "samples.png", "samples_per_class.png", "prior.npy", "map.npy",
                "calibration.npy")


@pytest.fixture
def digits(tmp_path) -> Path:
    return write_digit_folder(tmp_path / "digits", 60, seed=2)


class Epochs(loop.Reporter):
    def __init__(self):
        self.ended = []

    def epoch_end(self, metrics):
        self.ended.append(metrics["epoch"])


def test_the_library_trains_a_folder_for_one_epoch_and_returns_a_model_that_samples(digits, tmp_path):
    progress = Epochs()
    model = vaegen.train(digits, out=tmp_path / "run", epochs=1, progress=progress, **TINY)
    assert isinstance(model, vaegen.Model) and model.bundle.path == tmp_path / "run" / "model"
    assert progress.ended == [1]
    x = model.sample(8, seed=0)
    assert x.shape == (8, 1, 28, 28) and x.dtype == np.float32 and np.isfinite(x).all()
    assert model.classes == ["0", "1", "2", "3"] and model.sample(2, label="3").shape == (2, 1, 28, 28)
    meta = model.bundle.meta
    assert (meta["latent_dim"], meta["architecture"]["hidden"]) == (4, 32)  # the settings given
    assert meta["training"]["lr"] == recipe(str(digits))["lr"]  # ... and the recipe for the rest
    assert "binarize" not in meta["training"]
    # The scores are calibrated on the held-out tenth, so `vaegen score` gives percentiles at once.
    assert model.calibration.facts["images"] == 6 and model.score(x[:2], k=4)[0]["percentile"] is not None


def test_the_readme_shows_the_train_call_and_it_runs(digits, tmp_path, monkeypatch):
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert "vaegen.train(" in code
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code.replace('"my-pictures/"', repr(str(digits))), "README.md", "exec"), scope)  # noqa: S102
    assert scope["grid"].shape == (16, 1, 28, 28)
    assert (tmp_path / "runs" / "pictures" / "model" / "prior.npy").is_file()


def count_io(monkeypatch) -> tuple[Counter, Counter]:
    """Files renamed into place (every vaegen write ends in os.replace), by
    name; and checkpoint reads and dataset loads, by kind."""
    writes, reads = Counter(), Counter()
    replace, load = os.replace, torch.load

    def counting_replace(src, dst, *args, **kwargs):
        writes[Path(dst).name] += 1
        return replace(src, dst, *args, **kwargs)

    def counting_load(path, *args, **kwargs):
        reads[Path(path).name] += 1
        return load(path, *args, **kwargs)

    def counting(name, function):
        def counted(*args, **kwargs):
            reads[name] += 1
            return function(*args, **kwargs)
        return counted

    monkeypatch.setattr(os, "replace", counting_replace)
    monkeypatch.setattr(torch, "load", counting_load)
    monkeypatch.setattr(loop, "split_for_training", counting("dataset", loop.split_for_training))
    monkeypatch.setattr(fit, "split_for_training", counting("dataset", fit.split_for_training))
    return writes, reads


def test_a_train_run_writes_each_bundle_file_once_and_reads_its_checkpoint_once(digits, tmp_path, monkeypatch):
    """The bundle is built whole in its build folder: the graphs, then the
    prior and the map, then the pictures, vaegen.json and the card, each
    once; the export takes the state the loop ended with, and the prior fit
    the data the loop loaded. A resume reads its checkpoint once."""
    writes, reads = count_io(monkeypatch)
    vaegen.train(digits, out=tmp_path / "run", epochs=1, **TINY)
    assert [writes[name] for name in BUNDLE_FILES] == [1] * len(BUNDLE_FILES), writes
    assert (reads["checkpoint.pt"], reads["dataset"], writes["checkpoint.pt"]) == (0, 1, 1)
    first = json.loads((tmp_path / "run" / "model" / "vaegen.json").read_text())

    writes.clear(), reads.clear()
    model = vaegen.train(out=tmp_path / "run", resume=True, epochs=2)  # the run's own data and shape
    assert [writes[name] for name in BUNDLE_FILES] == [1] * len(BUNDLE_FILES), writes
    assert (reads["checkpoint.pt"], reads["dataset"]) == (1, 1)
    assert model.latent_dim == 4 and model.bundle.meta["training"]["epochs_trained"] == 2
    assert model.bundle.meta["model_id"] != first["model_id"]


def test_a_resume_with_only_the_export_left_loads_the_data_for_the_prior(digits, tmp_path, monkeypatch):
    vaegen.train(digits, out=tmp_path / "run", epochs=1, **TINY)
    model_id = json.loads((tmp_path / "run" / "model" / "vaegen.json").read_text())["model_id"]
    shutil.rmtree(tmp_path / "run" / "model")  # as if killed while exporting
    writes, reads = count_io(monkeypatch)
    model = vaegen.train(out=tmp_path / "run", resume=True)
    assert model.bundle.model_id == model_id and model.classes == ["0", "1", "2", "3"]
    assert (reads["checkpoint.pt"], reads["dataset"]) == (1, 1)
    assert [writes[name] for name in BUNDLE_FILES] == [1] * len(BUNDLE_FILES), writes


def test_fit_prior_on_a_bundle_writes_vaegen_json_and_the_card_once(tiny_bundle, tmp_path, monkeypatch):
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "model"))
    writes, _ = count_io(monkeypatch)
    result = CliRunner().invoke(cli, ["fit-prior", str(copy), "--components", "2", "--class-components", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert [writes[name] for name in BUNDLE_FILES] == [1] * len(BUNDLE_FILES), writes
    assert vaegen.load_model(copy, provider="cpu").sample(2, label="1").shape == (2, 1, 28, 28)


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"nonsense": 1}, "train() takes no setting 'nonsense'"),
    ({"lr_schedule": "sine"}, "lr_schedule='sine' is not one of cosine, constant"),
    ({"epochs": 0}, "epochs=0 must be positive"),
    ({"arch": "conv", "decoder_layers": 3}, "--decoder-layers applies to the mlp arch only"),
    ({"likelihood": "logistic", "binarize": True}, "binarized data takes likelihood bernoulli, not logistic"),
])
def test_a_setting_that_cannot_be_is_an_argument_error_before_anything_is_written(digits, tmp_path, settings,
                                                                                   fragment):
    with pytest.raises(ArgumentError, match=re.escape(fragment)):
        vaegen.train(digits, out=tmp_path / "run", **settings)
    assert not (tmp_path / "run").exists()


def test_vaegen_train_is_the_pipelines_and_listed():
    assert vaegen.train.__module__ == "vaegen.training.pipeline" and "train" in vaegen.__all__
