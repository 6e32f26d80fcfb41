"""Train and export the sample-quality judge of a dataset (vaegen.training.judge).

    python tools/train_judge.py --dataset fashion-mnist [--out weights/judges/fashion-mnist] [--epochs 8]

The judge learns from the first --train-images of the training split; the
rest of that split is the reference its figures are measured against, and
the test split the floor's real set, so that it never saw either. A release
step, not library code: it may print.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vaegen.data.named import CLASS_NAMES, DATASETS, load_idx_dataset
from vaegen.errors import VaegenError
from vaegen.evaluation.judges import JUDGE_META, REFERENCE_IMAGES
from vaegen.fileio import shown_path
from vaegen.likelihoods import binarized_by_default
from vaegen.runtime import describe_machine
from vaegen.training.judge import export_judge, fit_judge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/train_judge.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist", help="the dataset (default: mnist)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: weights/judges/DATASET)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--train-images", type=int, default=60_000 - REFERENCE_IMAGES,
                        help="train on this many of the training split; the rest is the reference (default: 50000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 0.002)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--data-dir", default=None, help="dataset folder (default: found as vaegen train finds it)")
    args = parser.parse_args(argv)
    out = args.out or Path("weights/judges") / args.dataset
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    binarized = binarized_by_default(args.dataset)  # its VAEs see binary digits; clothes are modelled in grey levels

    def report(epoch, step, steps, loss):
        print(f"epoch {epoch}/{args.epochs} step {step}/{steps} loss {loss:.4f}", file=sys.stderr, flush=True)

    try:
        train = load_idx_dataset(args.dataset, "train", args.data_dir)
        test = load_idx_dataset(args.dataset, "test", args.data_dir)
        n = args.train_images
        start = time.perf_counter()
        model = fit_judge(train.images[:n], train.labels[:n], epochs=args.epochs, seed=args.seed,
                            batch_size=args.batch_size, lr=args.lr, binarized=binarized, progress=report)
        seconds = time.perf_counter() - start
        command = (f"python tools/train_judge.py --dataset {args.dataset} --out {shown_path(out)} --epochs {args.epochs} "
                   f"--train-images {n} --seed {args.seed} --batch-size {args.batch_size} --lr {args.lr:g} "
                   f"--threads {args.threads}")
        forms = "as it is, blurred and dimmed" + (", or binarized, odds 1/3 each" if binarized else ", odds 1/2 each")
        training = {
            "command": command, "dataset": f"{args.dataset} train [:{n}]", "train_images": n, "epochs": args.epochs,
            "batch_size": args.batch_size, "optimizer": "Adam", "lr": args.lr, "lr_schedule": "one-cycle",
            "dropout": 0.3, "seed": args.seed, "threads": args.threads, "augmentation": forms,
            "training_seconds": round(seconds, 1), "wall_time": f"{seconds / 60:.1f} min",
            "hardware": describe_machine(),
        }
        held_out = {"test_images": test.images, "test_labels": test.labels,
                    "reference_images": train.images[n : n + REFERENCE_IMAGES], "reference": {"start": n}}
        export_judge(model, out, dataset=args.dataset, classes=list(CLASS_NAMES[args.dataset]), held_out=held_out,
                     training=training, binarized=binarized)
    except VaegenError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    meta = json.loads((out / JUDGE_META).read_text())
    print(json.dumps({"out": str(out), "seconds": round(seconds, 1), **meta["metrics"], "floor": meta.get("floor")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
