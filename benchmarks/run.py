"""`make bench`: vaegen measured side by side, each figure a ratio.

Every figure is the median of several runs after a warm-up, the contenders
alternating run by run, so a slow moment of the machine hits both. Results go
to benchmarks/results/latest.md and latest.json.

    python benchmarks/run.py [--model weights/mnist] [--quick]

The sections (`--sections` names), each measured in its own module:

- cold (startup.py): cold start of `vaegen sample -n 64 -o grid.png` (wall
  time, peak RSS) against a bare onnxruntime+numpy+Pillow script and a torch script;
- decoder (throughput.py): decoder throughput, ONNX Runtime against torch
  eager (inference mode) on the same weights, at batch 1, 64 and 1024, and as
  a fraction of this machine's measured sgemm ceiling;
- training (training.py): training seconds per epoch, the default `vaegen
  train` recipe and the shipped recipe against the classic one (MLP
  784-400-20, batch 128, Adam);
- explorer, prior, evaluate (commands.py): `vaegen serve`'s interaction
  latency, the prior fit, `vaegen evaluate` at k=1000 (images/s and the full
  test set's time);
- folders (folders.py): an image folder's first decode against a
  one-process Pillow loop, the cached start against the first, training
  images/s from the memory-mapped cache against an in-memory array, and the
  peak private memory of a one-epoch `vaegen train` on a folder of PNGs
  (--folder-images; 200000 for the issue's figure);
- score (scoring.py): `vaegen score`'s images/s at the default k on each
  shipped model, beside `vaegen evaluate`'s at the same k;
- ttq (ttq.py): time to quality, whole `vaegen train` commands (training,
  export, prior fit) against the classic recipe's 10 epochs, with test NLL
  (IW k=100, the first 2,000 test images) after every epoch against
  wall-clock seconds; a chart in benchmarks/results/time_to_quality.png;
- colour (anchor.py): the default colour recipe's whole command on the emoji
  folder (--colour-folder) against the anchor, PyTorch-VAE's VanillaVAE
  recipe (anchor_vae.py), trained for the same wall time, both judged by the
  folder's judge: Frechet distance of each row and training images/s, as
  ratios (about an hour on 2 cores).

`--sections` runs some of them and keeps the others' last results. The
tables and the chart are drawn by report.py; timing.py holds how a figure is
taken (child launcher, alternation, medians).

Imports its sibling modules (this folder is on sys.path when run as a
script) and vaegen.runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's vaegen and tools/

from anchor import bench_anchor  # noqa: E402
from commands import bench_evaluate, bench_explorer, bench_prior_fit  # noqa: E402
from folders import bench_folders  # noqa: E402
from report import SECTIONS, markdown, ttq_chart  # noqa: E402
from scoring import bench_score  # noqa: E402
from startup import bench_cold_start  # noqa: E402
from throughput import bench_decoder  # noqa: E402
from timing import ROOT  # noqa: E402
from training import bench_training, shipped_recipe  # noqa: E402
from ttq import QUICK_TTQ_RECIPES, TTQ_RECIPES, bench_time_to_quality  # noqa: E402

from vaegen.fileio import shown_path  # noqa: E402
from vaegen.runtime import describe_machine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    args, sections = parse_args()
    repeats = 3 if args.quick else args.repeats
    cold_repeats = 3 if args.quick else args.cold_repeats
    previous = RESULTS / "latest.json"
    report = json.loads(previous.read_text()) if previous.is_file() and sections != set(SECTIONS) else {}
    report.update({"date": time.strftime("%Y-%m-%d"), "machine": describe_machine(), "repeats": repeats,
                   "cold_repeats": cold_repeats, "model": shown_path(args.model), "recipe": shipped_recipe(args.model),
                   "sections_run": sorted(sections)})
    measure(report, sections, args, repeats, cold_repeats)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(report))
    print(markdown(report))


def parse_args() -> tuple[argparse.Namespace, set[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "weights" / "mnist")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint for the torch cold-start script [default: made from the bundle's weights]")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cold-repeats", type=int, default=15,
                        help="rounds of the cold-start race (each under half a second for vaegen; noise needs many)")
    parser.add_argument("--eval-images", type=int, default=300)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma-separated, of: " + ", ".join(SECTIONS) + "; the others keep their last results")
    parser.add_argument("--folder-images", type=int, default=20_000,
                        help="64x64 PNGs for the folders section's training and memory figures (200000: the big one)")
    parser.add_argument("--colour-folder", default=str(ROOT.parent / "shared" / "data" / "emoji"),
                        help="the labelled colour folder of the colour section (with a shipped judge)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke test")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(sections - set(SECTIONS)))}")
    return args, sections


def measure(report: dict, sections: set[str], args: argparse.Namespace, repeats: int, cold_repeats: int) -> None:
    """Run the chosen sections, each result into its key of `report`."""
    if "cold" in sections:
        print("cold start ...", file=sys.stderr)
        report["cold_start"] = bench_cold_start(args.model, args.checkpoint, cold_repeats)
    if "decoder" in sections:
        print("decoder throughput ...", file=sys.stderr)
        report["decoder"] = bench_decoder(args.model, repeats)
    if "training" in sections:
        print("training ...", file=sys.stderr)
        report["training"] = bench_training(steps=20 if args.quick else 60, repeats=3, recipe=report["recipe"])
    if "explorer" in sections:
        _optional(report, "explorer", "explorer latency", bench_explorer)
    if "prior" in sections:
        _optional(report, "prior_fit", "prior fit", lambda: bench_prior_fit(args.model, args.data_dir))
    if "evaluate" in sections:
        _optional(report, "evaluate", "evaluation",
                  lambda: bench_evaluate(args.model, 50 if args.quick else args.eval_images, args.data_dir))
    if "folders" in sections:
        import tempfile

        work = Path(tempfile.gettempdir()) / "vaegen-bench-folders"
        _optional(report, "folders", "image folders", lambda: bench_folders(
            work, jpegs=200 if args.quick else 2000, images=2000 if args.quick else args.folder_images,
            repeats=1 if args.quick else 3))
    if "score" in sections:
        _optional(report, "score", "scoring", lambda: bench_score(3, args.data_dir, quick=args.quick))
    RESULTS.mkdir(exist_ok=True)
    if "ttq" in sections:
        recipes = QUICK_TTQ_RECIPES if args.quick else TTQ_RECIPES
        _optional(report, "time_to_quality", "time to quality (whole training runs, about 25 min)",
                  lambda: bench_time_to_quality(args.data_dir, recipes, classic_epochs=1 if args.quick else 10))
        if report["time_to_quality"]:
            ttq_chart(report["time_to_quality"], RESULTS / "time_to_quality.png")
    if "colour" in sections:
        import tempfile

        work = Path(tempfile.gettempdir()) / "vaegen-bench-colour"
        _optional(report, "colour", "colour: the default recipe against the anchor (about an hour)",
                  lambda: bench_anchor(args.colour_folder, work))


def _optional(report: dict, key: str, label: str, bench) -> None:
    """Sections that need MNIST or Chromium: without them the table says so instead of failing."""
    try:
        print(f"{label} ...", file=sys.stderr)
        report[key] = bench()
    except Exception as exc:
        report[key] = None
        print(f"{label} skipped: {exc}", file=sys.stderr)


if __name__ == "__main__":
    main()
