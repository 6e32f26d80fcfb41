"""Distributed training for real: torchrun starts 2 processes that train
with DistributedDataParallel over gloo on 127.0.0.1 (the CPU path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support import draw_digits

torch = pytest.importorskip("torch")

from vaegen.bundle.read import load_bundle  # noqa: E402
from vaegen.training.checkpoint import load_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def torchrun(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "vaegen", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_gloo_processes_train_one_bundle_and_resume(tmp_path):
    folder = tmp_path / "digits"
    images, labels = draw_digits(96, seed=4)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / str(label) / f"{i}.png")
    out = tmp_path / "run"
    common = ["--dataset", str(folder), "--arch", "mlp", "--hidden", "16", "--latent-dim", "3",
              "--batch-size", "16", "--threads", "1", "--out", str(out)]
    first = torchrun(*common, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 1 and len(state["rng"]["noise_ranks"]) == 2
    resumed = torchrun(*common, "--epochs", "2", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # Every rank checked its parameters against the others' at the end.
    assert "parameters identical on all 2 processes" in first.stderr + resumed.stderr
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in history] == [1, 2]
    assert all(m["processes"] == 2 for m in history)
    # Exactly one bundle, written by rank 0, and nothing half-made beside it.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "model", "samples"]
    assert load_bundle(out).latent_dim == 3
    assert len(list((out / "samples").iterdir())) == 2
