"""`make bench` section "ttq", time to quality: whole `vaegen train` commands
(training, export, prior fit) against the classic recipe's 10 epochs
(classic_vae.py), each a child process (ttq_train.py) that records the test
NLL (ttq_nll.py: IW k=100, the first 2,000 test images) after every epoch
against wall-clock seconds. Also the table's row names and its recipes.

Imports timing and the standard library; the children import vaegen and torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import ROOT

CLASSIC = "classic (pytorch/examples), 10 epochs"
DEFAULT = "vaegen train (the default)"
# Each a whole `vaegen train` command. The conv row spells out every setting,
# so it measures one fixed recipe whatever the defaults become.
TTQ_RECIPES = {
    DEFAULT: [],
    "conv, 10 epochs": ["--arch", "conv", "--hidden", "512", "--epochs", "10",
                        "--batch-size", "128", "--lr", "1e-3", "--kl-warmup", "0"],
    "shipped architecture (mlp 512, 3 decoder layers, 64-d), default schedule": [
        "--arch", "mlp", "--hidden", "512", "--decoder-layers", "3", "--latent-dim", "64"],
}
QUICK_TTQ_RECIPES = {DEFAULT: ["--epochs", "2"]}  # --quick's smoke test


def bench_time_to_quality(data_dir: str | None, recipes: dict[str, list[str]], classic_epochs: int = 10) -> dict:
    """The classic script, then each recipe's whole command, one after another on a quiet machine."""
    data = ["--data-dir", str(Path(data_dir).resolve())] if data_dir else []  # the children run in benchmarks/
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        print(f"  {CLASSIC} ...", file=sys.stderr)
        out[CLASSIC] = _child_result([sys.executable, "classic_vae.py", str(result), *data,
                                      "--epochs", str(classic_epochs)], result)
        out[CLASSIC]["command"] = "python benchmarks/classic_vae.py"
        for name, args in recipes.items():
            print(f"  {name} ...", file=sys.stderr)
            run = Path(tmp) / f"run{len(out)}"
            out[name] = _child_result([sys.executable, "ttq_train.py", str(result), *data, "--",
                                       *args, "--out", str(run), "--quiet"], result)
            out[name]["command"] = " ".join(["vaegen", "train", *args])
            if name == DEFAULT:  # the curve's last point, checked by the light path on the exported bundle
                out[name]["evaluate_nll"] = _evaluate_nll(run / "model", data)
    base = out[CLASSIC]["whole_s"]
    for row in out.values():
        row["nll"] = row["points"][-1]["nll"]
        row["ratio_to_classic"] = row["whole_s"] / base
    return out


def _child_result(cmd: list[str], result: Path) -> dict:
    proc = subprocess.run(cmd, cwd=ROOT / "benchmarks", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {proc.stderr.strip()[-800:]}")
    return json.loads(result.read_text())


def _evaluate_nll(model_dir: Path, data: list[str]) -> float:
    """`vaegen evaluate --k 100 --limit 2000` on an exported bundle, nats."""
    check = subprocess.run([sys.executable, "-m", "vaegen", "evaluate", "--model", str(model_dir),
                            "--k", "100", "--limit", "2000", "--json", "--quiet", *data],
                           capture_output=True, text=True, check=True)
    return json.loads(check.stdout)["nll"]
