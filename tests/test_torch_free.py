"""The light commands never import torch (nor onnx), transitive imports
included: each runs in a subprocess where importing either one fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support import blocker_site, draw_digits
from vaegen.evaluation.judges import judge_dir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_torch_env(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker_site(tmp_path)), str(ROOT)]))
    env.pop("VAEGEN_DEBUG", None)
    return env


def run(env, cwd, *args):
    return subprocess.run([sys.executable, "-m", "vaegen", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_blocker_really_blocks(no_torch_env, tmp_path):
    result = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env, capture_output=True, text=True)
    assert result.returncode != 0 and "blocked" in result.stderr


def test_light_commands_run_without_torch(no_torch_env, tmp_path, tiny_bundle, prior_bundle):
    images, _ = draw_digits(12, seed=9)
    digits = tmp_path / "digits"
    digits.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(255 - img).save(digits / f"d{i}.png")  # dark ink on white paper
    a, b = str(digits / "d0.png"), str(digits / "d1.png")
    np.save(tmp_path / "z.npy", np.zeros((3, 4), np.float32))
    model = ["--model", str(tiny_bundle)]
    commands = [
        ["sample", "-n", "9", "-o", "s.png", *model],
        ["sample", "--label", "2", "-n", "4", "-o", "s2.png", "--model", str(prior_bundle)],
        ["sample", "--per-label", "3", "-o", "s3.png", "--model", str(prior_bundle)],
        ["info", "--model", str(prior_bundle)],
        ["reconstruct", a, b, "-o", "r.png", *model],
        ["reconstruct", a, "missing.png", "--skip-bad", "-o", "r.jpg", *model],
        ["interpolate", a, b, "-o", "i.png", *model],
        ["interpolate", a, b, "-o", "w.gif", *model],
        ["interpolate", a, b, "--gif", "-o", "i.gif", *model],
        ["encode", a, "--json", *model],
        ["decode", str(tmp_path / "z.npy"), "-o", "d.png", *model],
        ["traverse", "-o", "t.png", *model],
        ["info", "--json", *model],
        ["map", "-o", "m.png", "--quiet", *model],
        ["evaluate", "--dataset", str(digits), "--k", "8", "--json", "--quiet", *model],
        ["evaluate", "--dataset", str(digits), "--ood", "noise", "--k", "4", "--quiet", "--model", str(prior_bundle)],
        ["score", str(digits), "--k", "4", "--json", *model],
        ["score", str(digits), a, "--k", "4", "--csv", "--sort", "ood_score", "--model", str(prior_bundle)],
        ["evaluate", "--dataset", str(digits), "--samples", "12", "--judge", str(judge_dir(dataset="mnist")), "--quiet",
         "--model", str(prior_bundle)],
    ]
    for args in commands:
        result = run(no_torch_env, tmp_path, *args)
        assert result.returncode == 0, f"{args[0]}: {result.stderr}"
    for name in ("s.png", "s2.png", "s3.png", "r.png", "r.jpg", "i.png", "i.gif", "w.gif", "d.png", "t.png", "m.png"):
        assert (tmp_path / name).stat().st_size > 0
    report = json.loads(run(no_torch_env, tmp_path, "evaluate", "--dataset", str(digits), "--k", "4", "--json",
                            "--quiet", *model).stdout)
    assert report["images"] == 12 and np.isfinite(report["nll"])


API_SCRIPT = """
import sys
import numpy as np
import vaegen
m = vaegen.load_model(sys.argv[1], provider="cpu")
x = m.sample(8, seed=0)
mu, logvar = m.encode(x)
assert m.decode(mu).shape == x.shape and m.reconstruct(x).shape == x.shape
assert m.interpolate(x[0], x[1], steps=5).shape[0] == 5
images, dims = m.traverse(steps=3)
assert m.sample(4, label=m.classes[0]).shape == (4, *m.image_shape) and m.sample_per_class(2).shape[0] == 2 * len(m.classes)
vaegen.save_grid(x, "api.png")
rows = m.score(x, k=4, paths=[f"{i}.png" for i in range(8)])
assert len(rows) == 8 and rows[0]["path"] == "0.png" and 0 <= rows[0]["percentile"] <= 100
print(sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "onnx", "sklearn", "scipy", "click")))
"""


def test_the_api_runs_without_torch_or_click(no_torch_env, tmp_path, prior_bundle):
    result = subprocess.run([sys.executable, "-c", API_SCRIPT, str(prior_bundle)], env=no_torch_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # not even click: the API is not the CLI
    assert (tmp_path / "api.png").is_file()


@pytest.mark.parametrize("command", [["train", "--epochs", "1"], ["judge", "--dataset", "."]])
def test_the_training_commands_say_what_to_install_without_torch(no_torch_env, tmp_path, command):
    result = run(no_torch_env, tmp_path, *command)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"Error: vaegen {command[0]} needs torch")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_built_wheel_carries_the_shipped_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("vaegen-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("encoder.onnx", "decoder.onnx", "vaegen.json", "README.md"):
        assert f"vaegen/weights/mnist/{name}" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "from vaegen.bundle.read import load_bundle; print(load_bundle().path)"
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    env.pop("VAEGEN_MODEL", None)
    found = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == tmp_path / "site" / "vaegen" / "weights" / "mnist"


def test_the_explorer_imports_without_torch(no_torch_env, tmp_path):
    code = "import vaegen.serve.server, vaegen.serve.app, vaegen.latent.map, vaegen.plot"
    result = subprocess.run([sys.executable, "-c", code], env=no_torch_env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
