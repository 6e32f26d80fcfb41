"""The colour section of `make bench`: vaegen's default colour recipe against
the anchor users complain about (anchor_vae.py: PyTorch-VAE's VanillaVAE), on
the same folder, for the same wall time, judged by the same judge.

1. `vaegen train --dataset FOLDER --image-size 64 --channels 3` (the
   default recipe, export and prior fit included), timed as a whole command;
   or a finished run of that command given with its measured seconds.
2. anchor_vae.py for as many seconds of training alone (its data loading,
   code fit and decoding are not counted: generous to the anchor).
3. The folder's judge (the shipped one, found by the folder's content, or
   --judge) scores both: reconstructions of the held-out images, samples of
   a mixture fitted to the training codes (the anchor's better of two
   component counts, anchor_vae.py), N(0, I) samples, as many images
   as the held-out split, against the judge's reference (training images it
   never saw); the real held-out images are the floor.

The figures: the Frechet distance of each row and the ratio vaegen / anchor
(lower is better for vaegen), and training throughput (images/s) of each.

    python benchmarks/anchor.py --dataset ../shared/data/emoji [--run runs/x --run-seconds 1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's vaegen

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROWS = ("real held-out", "reconstructions", "fitted prior", "standard prior")


def train_default(folder: str, run: Path, threads: int) -> float:
    """The default colour command, timed whole: its wall seconds."""
    command = [sys.executable, "-m", "vaegen", "train", "--dataset", folder, "--image-size", "64", "--channels", "3",
               "--threads", str(threads), "--out", str(run), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def vaegen_throughput(run: Path) -> float:
    """Training images/s over the run's epochs (metrics.jsonl), its median epoch."""
    rates = [json.loads(line).get("images_per_s") for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    rates = [r for r in rates if r]
    return float(np.median(rates)) if rates else float("nan")


def bench_anchor(folder: str, work: Path, run: Path | None = None, run_seconds: float | None = None,
                 judge_path: Path | None = None, threads: int = 2) -> dict:
    from vaegen.api import load_model
    from vaegen.evaluation.judges import compare_priors, judging_data, load_judge, reference_statistics, sample_quality

    work.mkdir(parents=True, exist_ok=True)
    if run is None:
        run = work / "vaegen"
        run_seconds = train_default(folder, run, threads)
    elif run_seconds is None:
        raise SystemExit("--run needs --run-seconds: the measured wall time of its whole command")
    anchor_out = work / "anchor.npz"
    subprocess.run([sys.executable, str(HERE / "anchor_vae.py"), "--dataset", folder, "--seconds", f"{run_seconds:.0f}",
                    "--out", str(anchor_out), "--threads", str(threads)], check=True)
    anchor_facts = json.loads(anchor_out.with_suffix(".json").read_text())
    model = load_model(run / "model", provider="cpu", threads=threads)
    judge = load_judge(judge_path, dataset=folder, provider="cpu", threads=threads)
    real = judging_data(model, judge, folder)
    n = len(real["real_images"])
    ours = compare_priors(model, judge, n=n, seed=0, **real)
    reference = reference_statistics(judge, real["reference_images"])
    with np.load(anchor_out) as images:
        fits = {int(key.split("_")[1]): sample_quality(judge, images[key], reference)
                for key in images.files if key.startswith("fitted_")}
        theirs = {"real held-out": ours["real held-out"],
                  "reconstructions": sample_quality(judge, images["reconstructions"], reference),
                  "standard prior": sample_quality(judge, images["standard"], reference)}
    best = min(fits, key=lambda k: fits[k]["frechet_distance"])  # the anchor's better mixture
    theirs["fitted prior"] = fits[best]
    anchor_facts["prior_components"] = {str(k): round(fits[k]["frechet_distance"], 2) for k in sorted(fits)}
    fd = lambda rows: {k: round(rows[k]["frechet_distance"], 2) for k in ROWS if k in rows}  # noqa: E731
    ours_fd, theirs_fd = fd(ours), fd(theirs)
    ours_rate = vaegen_throughput(run)
    return {
        "dataset": Path(folder).resolve().name, "images": n, "judge": judge.meta.get("model_id"),
        "seconds": round(run_seconds, 1), "vaegen": {"frechet_distance": ours_fd, "images_per_s": round(ours_rate, 1),
                                                     "recipe": json.loads((run / "model" / "vaegen.json").read_text())
                                                     ["training"].get("command", "")},
        "anchor": {"frechet_distance": theirs_fd, **anchor_facts},
        "fd_ratio": {k: round(ours_fd[k] / theirs_fd[k], 3) for k in ROWS[1:] if theirs_fd.get(k, 0) > 0},
        "throughput_ratio": round(ours_rate / anchor_facts["images_per_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="a labelled colour folder (the emoji)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-anchor"))
    parser.add_argument("--run", type=Path, default=None, help="a finished run of the default command, to reuse")
    parser.add_argument("--run-seconds", type=float, default=None, help="that command's measured wall seconds")
    parser.add_argument("--judge", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    result = bench_anchor(args.dataset, args.work, args.run, args.run_seconds, args.judge, args.threads)
    (args.work / "anchor_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
