"""`make bench` section "cold": the cold start of `vaegen sample -n 64 -o
grid.png` (wall time, peak RSS) against a bare onnxruntime+numpy+Pillow
script (bare_sample.py), the Python API (api_sample.py) and a torch script
(torch_sample.py), each a fresh process.

Imports timing, throughput (for the torch script's checkpoint) and, inside
the functions, torch and vaegen.training.checkpoint.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from throughput import torch_decoder
from timing import ROOT, alternate, median, run_child


def write_torch_checkpoint(model_dir: Path, path: Path) -> None:
    """A training checkpoint holding the bundle's decoder, for the torch script."""
    import torch

    from vaegen.training.checkpoint import CHECKPOINT_FORMAT

    model = torch_decoder(model_dir)
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": model.cfg.to_dict(), "model": model.state_dict()}, path)


def bench_cold_start(model_dir: Path, checkpoint: Path | None, repeats: int) -> dict:
    """checkpoint: the torch script's; None makes one from the bundle's weights."""
    # Byte-compile vaegen as an installed wheel would be (the bare script's
    # libraries are): an editable checkout under PYTHONDONTWRITEBYTECODE
    # would otherwise compile its sources at every start.
    import compileall

    compileall.compile_dir(str(ROOT / "vaegen"), quiet=1)
    py = sys.executable
    vaegen = str(Path(py).parent / "vaegen")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if checkpoint is None:
            checkpoint = tmp / "checkpoint.pt"
            write_torch_checkpoint(model_dir, checkpoint)
        contenders = {
            "vaegen sample": lambda: run_child([vaegen, "sample", "-n", "64", "-o", "grid.png", "--model",
                                                str(model_dir), "--quiet"], tmp),
            "bare ORT script": lambda: run_child([py, str(ROOT / "benchmarks/bare_sample.py"), str(model_dir),
                                                  "bare.png"], tmp),
            "API script": lambda: run_child([py, str(ROOT / "benchmarks/api_sample.py"), str(model_dir), "api.png"], tmp),
        }
        if checkpoint.is_file():
            contenders["torch script"] = lambda: run_child(
                [py, str(ROOT / "benchmarks/torch_sample.py"), str(checkpoint), "torch.png"], tmp)
        raw = alternate(contenders, repeats)
    out = {name: {"wall_s": median([w for w, _ in v]), "peak_rss_mib": median([r for _, r in v])}
           for name, v in raw.items()}
    base = out["vaegen sample"]["wall_s"]
    out["ratio_vaegen_over_bare"] = base / out["bare ORT script"]["wall_s"]
    out["ratio_api_over_cli"] = out["API script"]["wall_s"] / base
    if "torch script" in out:
        out["ratio_torch_over_vaegen"] = out["torch script"]["wall_s"] / base
    return out
