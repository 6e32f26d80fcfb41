"""Killed and interrupted commands, with real processes and real signals.

- Training killed with SIGKILL (after the first checkpoint, mid-epoch, during
  the final export) and resumed ends with exactly the model of a run never
  stopped: torch.equal on every tensor of the model and optimizer state.
- An export killed at any moment leaves the old bundle or the new one at its
  destination, never a mix.
- Ctrl-C (SIGINT) during `sample` and `evaluate` exits non-zero without a
  traceback and leaves no partial or temporary file.

Each test starts `python -m vaegen ...` with subprocess.Popen and watches the
files it writes to choose the moment of the signal. The file takes about a
minute or more, so it is marked slow; it needs torch (the train extra).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.support import default_sigint, draw_digits
from vaegen.bundle.read import load_bundle

torch = pytest.importorskip("torch")

from vaegen.training.checkpoint import load_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

ENV = {k: v for k, v in os.environ.items() if k not in ("VAEGEN_DEBUG", "VAEGEN_MODEL")}
EPOCHS = 4


def start(args: list, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """`python -m vaegen ARGS` in the background; stdout and stderr go to log.out and log.err."""
    return subprocess.Popen([sys.executable, "-m", "vaegen", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=open(log.with_suffix(".out"), "w"), stderr=open(log.with_suffix(".err"), "w"),
                            preexec_fn=default_sigint)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> tuple[int, str, str]:
    rc = proc.wait(timeout=timeout)
    return rc, log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()


def poll_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll `condition` every 5 ms while `proc` runs; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out")
        time.sleep(0.005)
    return True


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    if not poll_until(condition, proc):
        pytest.fail(f"the process ended (rc {proc.returncode}) before {what}")


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=120)


def metrics_lines(run: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def assert_same_state(a, b, where: str = "") -> None:
    """Nested dicts and lists of tensors and numbers are exactly equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def stray_entries(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """2400 drawn digits in class folders: about half a second per epoch of the tiny MLP."""
    folder = tmp_path_factory.mktemp("interrupt-data") / "digits"
    images, labels = draw_digits(2400, seed=8)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / str(label) / f"{i}.png")
    return folder


def train_args(data: Path, out: Path) -> list:
    return ["train", "--dataset", data, "--arch", "mlp", "--hidden", 16, "--latent-dim", 4, "--batch-size", 16,
            "--epochs", EPOCHS, "--seed", 3, "--threads", 1, "--quiet", "--out", out]


def resume_args(out: Path) -> list:
    return ["train", "--resume", "--epochs", EPOCHS, "--threads", 1, "--quiet", "--out", out]


@pytest.fixture(scope="module")
def straight_run(digits_folder, tmp_path_factory) -> Path:
    """The same training, never stopped."""
    run = tmp_path_factory.mktemp("straight") / "run"
    rc, _, err = finish(start(train_args(digits_folder, run), run.parent / "log"), run.parent / "log")
    assert rc == 0, err
    return run


# ---------------------------------------------------------------- training


def test_killed_training_resumes_to_exactly_the_straight_run(digits_folder, straight_run, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoint.pt"

    # 1. SIGKILL the moment the first checkpoint appears (it is renamed into place whole).
    proc = start(train_args(digits_folder, run), tmp_path / "a")
    wait_for(ckpt.exists, proc, "the first checkpoint")
    kill(proc)
    assert load_checkpoint(ckpt)["epoch"] == 1

    # 2. Resume, and SIGKILL it in the middle of epoch 3: epoch 2's metrics line is
    #    written just after its checkpoint; wait 40% of an epoch's training time.
    proc = start(resume_args(run), tmp_path / "b")
    wait_for(lambda: len(metrics_lines(run)) == 2, proc, "epoch 2")
    time.sleep(0.4 * metrics_lines(run)[-1]["seconds"])
    kill(proc)
    assert load_checkpoint(ckpt)["epoch"] == 2, "the kill came after epoch 3 ended; the machine is too fast for this test"

    # 3. Resume to the end.
    rc, _, err = finish(start(resume_args(run), tmp_path / "c"), tmp_path / "c")
    assert rc == 0, err
    assert "Traceback" not in err

    straight, resumed = load_checkpoint(straight_run / "checkpoint.pt"), load_checkpoint(ckpt)
    assert straight["epoch"] == resumed["epoch"] == EPOCHS
    assert_same_state(straight["model"], resumed["model"], "model")
    assert_same_state(straight["optimizer"], resumed["optimizer"], "optimizer")
    assert_same_state(straight["rng"], resumed["rng"], "rng")
    assert [m["test_neg_elbo"] for m in metrics_lines(run)] == [m["test_neg_elbo"] for m in metrics_lines(straight_run)]
    assert load_bundle(run / "model").model_id == load_bundle(straight_run / "model").model_id
    # A SIGKILL skips every clean-up; what it can leave is a hidden temporary file, never a half file
    # under a real name.
    leftovers = stray_entries(run, {"checkpoint.pt", "metrics.jsonl", "samples", "model"})
    assert all(name.startswith(".") for name in leftovers), leftovers


def test_training_killed_during_its_final_export_keeps_a_complete_checkpoint(digits_folder, straight_run, tmp_path):
    run = tmp_path / "run"
    proc = start(train_args(digits_folder, run), tmp_path / "a")
    wait_for(lambda: len(metrics_lines(run)) == EPOCHS, proc, "the last epoch")
    kill(proc)  # the export of <run>/model starts right after the last metrics line
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == EPOCHS
    if (run / "model").exists():  # the kill came late: then the bundle is whole
        assert load_bundle(run / "model").model_id == load_bundle(straight_run / "model").model_id

    # `train --resume` at the same --epochs finishes the bundle the kill interrupted (or finds it whole).
    rc, _, err = finish(start(resume_args(run), tmp_path / "b"), tmp_path / "b")
    assert rc == 0 and "Traceback" not in err, err
    assert load_bundle(run / "model").model_id == load_bundle(straight_run / "model").model_id


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """Two checkpoints of different models (fresh, untrained), written in-process."""
    from dataclasses import asdict

    from vaegen.training.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
    from vaegen.training.config import TrainConfig
    from vaegen.training.model import VAE, ModelConfig

    folder = tmp_path_factory.mktemp("checkpoints")
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        cfg = ModelConfig(arch="mlp", latent_dim=4, hidden=16)
        model = VAE(cfg)
        path = folder / f"seed{seed}.pt"
        save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "model_config": cfg.to_dict(),
                               "train_config": asdict(TrainConfig(dataset="digits")), "epoch": 1,
                               "model": model.state_dict(), "history": []})
        paths.append(path)
    return paths[0], paths[1]


def test_a_killed_export_leaves_the_old_bundle_or_the_new_one(two_checkpoints, tmp_path):
    old_ckpt, new_ckpt = two_checkpoints
    pristine = tmp_path / "pristine"
    rc, _, err = finish(start(["export", old_ckpt, "-o", pristine, "-q"], tmp_path / "old"), tmp_path / "old")
    assert rc == 0, err
    begun = time.monotonic()
    rc, _, err = finish(start(["export", new_ckpt, "-o", tmp_path / "reference", "-q"], tmp_path / "new"),
                        tmp_path / "new")
    full = time.monotonic() - begun
    assert rc == 0, err
    old_id, new_id = load_bundle(pristine).model_id, load_bundle(tmp_path / "reference").model_id
    assert old_id != new_id

    work = tmp_path / "work"
    work.mkdir()
    bundle = work / "B"

    def temp_folder_holds(name: str) -> Callable[[], bool]:
        return lambda: any((p / name).exists() for p in work.glob(".B.tmp-*"))

    # Kill moments: fixed fractions of a whole export, and the moments the build
    # folder appears, gets its vaegen.json, and gets its README (written just before the swap).
    moments = [("after", f) for f in (0.7, 0.85, 0.95)] + [
        ("when", lambda: any(work.glob(".B.tmp-*"))),
        ("when", temp_folder_holds("vaegen.json")),
        ("when", temp_folder_holds("README.md")),
    ]
    seen = {}
    for kind, moment in moments:
        shutil.rmtree(bundle, ignore_errors=True)
        shutil.copytree(pristine, bundle)
        proc = start(["export", new_ckpt, "-o", bundle, "-q"], tmp_path / "kill")
        if kind == "after":
            time.sleep(moment * full)
        elif not poll_until(moment, proc):
            assert proc.returncode == 0, finish(proc, tmp_path / "kill")[2]  # too late, but it must have worked
        kill(proc)
        model_id = load_bundle(bundle).model_id  # loads and verifies every checksum
        assert model_id in (old_id, new_id)
        seen[model_id] = seen.get(model_id, 0) + 1
        # Nothing but the bundle and, after a SIGKILL, the hidden build folders of export.
        strays = stray_entries(work, {"B"})
        assert all(name.startswith(".B.tmp-") for name in strays), strays
        assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []
    assert seen.get(old_id), "no kill came before the swap; the test did not test much"


# ---------------------------------------------------------------- Ctrl-C


@pytest.fixture(scope="module")
def tiny_model(digits_folder, tmp_path_factory) -> Path:
    """A bundle to sample from: one epoch on the drawn digits, exported."""
    run = tmp_path_factory.mktemp("tiny-model") / "run"
    args = train_args(digits_folder, run)
    args[args.index("--epochs") + 1] = 1
    rc, _, err = finish(start(args, run.parent / "log"), run.parent / "log")
    assert rc == 0, err
    return run / "model"


def assert_clean_interrupt(rc: int, out: str, err: str) -> None:
    assert rc != 0
    assert "Traceback" not in out + err
    assert out == ""
    assert err.strip().splitlines()[-1] == "Aborted!", err


@pytest.mark.parametrize("moment", ["while sampling", "while writing the PNG"])
def test_ctrl_c_during_sample_leaves_no_file(tiny_model, tmp_path, moment):
    folder = tmp_path / "out"
    folder.mkdir()
    log = tmp_path / "log"
    proc = start(["sample", "-n", 200_000, "-o", folder / "big.png", "--model", tiny_model], log, cwd=folder)
    if moment == "while sampling":  # the progress label shows once the model is loaded
        wait_for(lambda: "sampling" in log.with_suffix(".err").read_text(), proc, "the sampling to start")
        time.sleep(0.5)
    else:
        wait_for(lambda: any(folder.glob(".big.png.*")), proc, "the temporary PNG")
        time.sleep(0.2)
    assert proc.poll() is None, "sample ended before Ctrl-C"
    kill(proc, signal.SIGINT)
    assert_clean_interrupt(proc.returncode, *finish(proc, log)[1:])
    assert list(folder.iterdir()) == []


def test_ctrl_c_during_evaluate_prints_no_partial_result(tiny_model, digits_folder, tmp_path):
    folder = tmp_path / "cwd"
    folder.mkdir()
    log = tmp_path / "log"
    proc = start(["evaluate", "--dataset", digits_folder / "1", "--k", 5000, "--json", "--model", tiny_model], log,
                 cwd=folder)
    wait_for(lambda: "evaluating" in log.with_suffix(".err").read_text(), proc, "the evaluation to start")
    time.sleep(0.5)
    assert proc.poll() is None, "evaluate ended before Ctrl-C"
    kill(proc, signal.SIGINT)
    assert_clean_interrupt(proc.returncode, *finish(proc, log)[1:])
    assert list(folder.iterdir()) == []
