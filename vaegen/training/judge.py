"""The judge: a small MNIST classifier that scores generated digits, trained
here in torch and exported to ONNX for vaegen.quality (which runs it without torch).

    python -m vaegen.training.judge --out weights/judge [--epochs 5] [--seed 0] [--data-dir DIR]

The network is two 3x3 convolutions (32 and 64 channels, each followed by
ReLU and 2x2 max-pooling), a 128-wide dense ReLU layer whose output is the
`features` the Frechet distance is measured on, and a linear layer to the
ten class `logits`.

Training data: each training image is shown, at random and afresh every
epoch, in one of three forms with equal odds:
- as it is (grey levels in [0, 1]), which is what real held-out digits are;
- stochastically binarized (each pixel on with probability its intensity),
  which is what the VAE is trained on, with harder and noisier edges;
- blurred by a 3x3 binomial filter and dimmed by a factor drawn from
  [0.6, 1], which is what a VAE's output looks like: pixel means, grey and
  slightly soft strokes.
A judge trained on real digits alone would call a soft grey stroke less
confidently than the same shape in ink, and the sample-quality figures
would then measure texture as much as shape. The three forms keep it a
classifier of shapes; its accuracy on each form of the test set is recorded.

The run is seeded (weights, shuffling and augmentation each draw from a
generator seeded from --seed) and deterministic for a given thread count.
The ONNX graph is checked (onnx.checker, no random op, ONNX Runtime against
torch at several batch sizes) before it is moved into place; judge.json and
README.md are then written, each atomically. Imports torch, onnx and
vaegen's own modules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from vaegen import __version__
from vaegen.bundle import sha256_file
from vaegen.data import load_idx_dataset
from vaegen.errors import ArgumentError, ExportError, VaegenError
from vaegen.fileio import atomic_path, check_folder_target
from vaegen.quality import (
    JUDGE_FILE,
    JUDGE_FORMAT,
    JUDGE_META,
    Judge,
    judge_session,
    reference_statistics,
    sample_quality,
)
from vaegen.training.export import PARITY_BATCHES, _export_graph, _model_id, _stamp

CLASSES = [str(d) for d in range(10)]
IMAGE_SHAPE = (1, 28, 28)
FEATURE_DIM = 128
# The features reach values of ~10 after a ReLU stack; 1e-4 absolute is
# float32 rounding at that scale, not a wrong graph.
JUDGE_ATOL = 1e-4


class JudgeNet(nn.Module):
    """image [N, 1, 28, 28] in [0, 1] -> (logits [N, 10], features [N, 128])."""

    def __init__(self, feature_dim: int = FEATURE_DIM, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.dense = nn.Linear(64 * 7 * 7, feature_dim)
        self.dropout = nn.Dropout(0.3)  # identity in eval mode, so absent from the graph
        self.head = nn.Linear(feature_dim, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 32, 14, 14)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (N, 64, 7, 7)
        features = F.relu(self.dense(h.flatten(1)))  # (N, 128)
        return self.head(self.dropout(features)), features


_BLUR = torch.tensor([1.0, 2.0, 1.0])
_BLUR = (torch.outer(_BLUR, _BLUR) / 16).reshape(1, 1, 3, 3)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image of x [B, 1, 28, 28] in [0, 1] as it is, binarized, or blurred and dimmed (odds 1/3 each)."""
    form = torch.randint(0, 3, (len(x), 1, 1, 1), generator=gen)
    binary = (torch.rand(x.shape, generator=gen) < x).float()
    dim = 0.6 + 0.4 * torch.rand((len(x), 1, 1, 1), generator=gen)
    soft = F.conv2d(x, _BLUR, padding=1) * dim
    return torch.where(form == 0, x, torch.where(form == 1, binary, soft))


def train_judge(images: np.ndarray, labels: np.ndarray, *, epochs: int = 5, seed: int = 0, batch_size: int = 128,
                lr: float = 2e-3, progress=None) -> JudgeNet:
    """Train a JudgeNet on uint8 images [N, 1, 28, 28] and labels [N] (Adam, one-cycle schedule).

    `progress(epoch, step, steps, loss)`, when given, is called every 50 steps and at each epoch's end."""
    if images.ndim != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ArgumentError(f"The judge trains on images [N, 1, 28, 28], not {list(images.shape)}.")
    torch.manual_seed(seed)
    model = JudgeNet()
    shuffle = torch.Generator().manual_seed(seed + 1)
    noise = torch.Generator().manual_seed(seed + 2)
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0)
    y_all = torch.from_numpy(labels.astype(np.int64))
    steps = (len(x_all) + batch_size - 1) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, epochs * steps))
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=shuffle)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            logits, _ = model(augment(x_all[idx], noise))
            loss = F.cross_entropy(logits, y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if progress and (step % 50 == 0 or step == steps - 1):
                progress(epoch + 1, step + 1, steps, loss.item())
    return model.eval()


def check_judge_parity(model: JudgeNet, path: Path, *, seed: int = 0, batches=PARITY_BATCHES) -> dict:
    """ONNX Runtime (CPU) against torch on logits and features; the largest difference of each.

    Inputs are grey images, binary images and blurred ones, as the judge will see."""
    session = judge_session(path, provider="cpu", threads=1)
    gen = torch.Generator().manual_seed(seed)
    worst: dict = {}
    model.eval()
    for n in batches:
        x = augment(torch.rand((n, *IMAGE_SHAPE), generator=gen), gen)
        with torch.inference_mode():
            logits, features = model(x)
        got = session.run(["logits", "features"], {"image": x.numpy()})
        for name, want, have in zip(("logits", "features"), (logits.numpy(), features.numpy()), got, strict=True):
            diff = float(np.max(np.abs(have - want))) if have.shape == want.shape else np.inf
            if not diff <= JUDGE_ATOL:  # catches NaN too
                raise ExportError(f"Parity check failed: the judge's {name} differ from torch by {diff:.3g} "
                                  f"at batch size {n} (tolerance {JUDGE_ATOL:g}); the judge was not written.")
            worst[name] = max(worst.get(name, 0.0), diff)
    return worst


def accuracy_by_form(judge: Judge, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    """Test accuracy of the exported judge on the images as they are, binarized, and blurred and dimmed."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    gen = torch.Generator().manual_seed(seed)
    forms = {
        "test_accuracy": x,
        "test_accuracy_binarized": (torch.rand(x.shape, generator=gen) < x).float(),
        "test_accuracy_blurred": F.conv2d(x, _BLUR, padding=1) * 0.8,
    }
    return {key: round(float(np.mean(judge.predict(v.numpy())[0].argmax(1) == labels)), 4) for key, v in forms.items()}


def export_judge(model: JudgeNet, dst: str | Path, test_images: np.ndarray, test_labels: np.ndarray, *,
                 train_images: np.ndarray | None = None, training: dict | None = None) -> Path:
    """Export `model` to dst/judge.onnx (checked for parity first), measure it
    on the test set through ONNX Runtime, and write judge.json and README.md.

    With `train_images`, the floor of the sample-quality figures is recorded
    too: vaegen.quality.sample_quality of the real test images against the
    train images' feature statistics, what a perfect generator would score."""
    dst = check_folder_target(dst, "Judge folder")
    dst.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    facts = {
        "format": JUDGE_FORMAT,
        "vaegen_version": __version__,
        "model_id": _model_id(model),
        "role": "judge",
        "dataset": "mnist",
        "input": {"name": "image", "shape": ["N", *IMAGE_SHAPE], "dtype": "float32", "range": [0, 1]},
        "outputs": {"logits": ["N", len(CLASSES)], "features": ["N", model.dense.out_features]},
        "classes": CLASSES,
        "feature_dim": model.dense.out_features,
        "architecture": "conv3x3(32)-relu-maxpool2, conv3x3(64)-relu-maxpool2, "
                        f"dense({model.dense.out_features})-relu = features, dense(10) = logits",
        "training": training or {},
    }
    with atomic_path(dst / JUDGE_FILE, suffix=".onnx") as tmp:
        _export_graph(model, torch.rand(2, *IMAGE_SHAPE), tmp, "image", ["logits", "features"])
        try:
            _stamp(tmp, facts, "judge")
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"onnx.checker rejected the judge graph: {exc}") from exc
        facts["parity_max_abs_diff"] = check_judge_parity(model, tmp)
        facts["files"] = {JUDGE_FILE: {"sha256": sha256_file(tmp), "bytes": tmp.stat().st_size}}
        judge = Judge(judge_session(tmp, provider="cpu"), facts)
        facts["metrics"] = accuracy_by_form(judge, test_images, test_labels)
        if train_images is not None:
            floor = sample_quality(judge, test_images, reference_statistics(judge, train_images), labels=test_labels)
            floor.pop("class_shares")
            facts["floor"] = {"images": f"mnist test ({len(test_images)})", "reference": f"mnist train ({len(train_images)})",
                              **{k: round(v, 4) if isinstance(v, float) else v for k, v in floor.items()}}
    facts["exported"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    with atomic_path(dst / JUDGE_META) as tmp:
        tmp.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    with atomic_path(dst / "README.md") as tmp:
        tmp.write_text(judge_card(facts))
    return dst


def judge_card(facts: dict) -> str:
    """The judge's README.md: what it is, how it was trained, how well it classifies."""
    training, metrics = facts.get("training", {}), facts.get("metrics", {})
    lines = [
        "# vaegen judge: an MNIST classifier for sample quality",
        "",
        "A small convolutional classifier that `vaegen.quality` runs (ONNX Runtime, no torch) to score "
        "generated digits: its class probabilities give the confident share, the inception score and the "
        f"label agreement, and its {facts['feature_dim']}-d penultimate layer gives the Frechet distance.",
        "",
        "## Graph",
        "",
        "- input `image`: float32 [N, 1, 28, 28], white digit on black, in [0, 1]",
        f"- outputs `logits` [N, 10] (classes {', '.join(facts['classes'])}) and `features` [N, {facts['feature_dim']}]",
        f"- architecture: {facts['architecture']}",
        "",
        "## How it was trained",
        "",
    ]
    if training.get("command"):
        lines += ["```", training["command"], "```", ""]
    lines += [
        "MNIST train split (60,000 images). Each image is shown, at random and afresh each epoch, as it is, "
        "stochastically binarized, or blurred (3x3 binomial) and dimmed (x0.6-1), so that the judge scores the "
        "shape of a VAE's grey, soft pixel means as it scores ink.",
        "",
    ]
    keys = ("epochs", "batch_size", "optimizer", "lr", "lr_schedule", "dropout", "seed", "threads", "wall_time",
            "hardware")
    lines += [f"- {k.replace('_', ' ')}: {training[k]}" for k in keys if k in training]
    lines += ["", "## Test accuracy (MNIST test split, 10,000 images, through ONNX Runtime)", ""]
    names = {"test_accuracy": "as they are", "test_accuracy_binarized": "stochastically binarized",
             "test_accuracy_blurred": "blurred (3x3 binomial) and dimmed x0.8"}
    lines += ["| test images | accuracy |", "|---|---|"]
    lines += [f"| {names.get(k, k)} | {v:.2%} |" for k, v in metrics.items()]
    floor = facts.get("floor")
    if floor:
        lines += ["", "## The floor of the sample-quality figures", "",
                  f"Real digits scored as if generated: the {floor['images']} images against the {floor['reference']} "
                  "images' feature statistics (`vaegen.quality.sample_quality`). A generator can hope to match these, "
                  "not to beat them; the Frechet distance also grows as the number of images shrinks.", "",
                  "| figure | value |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {floor[k]} |"
                  for k in ("frechet_distance", "confident_share", "inception_score", "label_agreement") if k in floor]
    lines += ["", f"Judge format {facts['format']}, vaegen {facts['vaegen_version']}, model id {facts['model_id']}.", ""]
    return "\n".join(lines)


def _shown_path(path: Path) -> str:
    """`path` as the command line should record it: relative to here when inside it, never this machine's root."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaegen.training.judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("weights/judge"), help="output folder (default: weights/judge)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 0.002)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $VAEGEN_DATA_DIR, else ~/.cache/vaegen/mnist)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    def report(epoch, step, steps, loss):
        print(f"epoch {epoch}/{args.epochs} step {step}/{steps} loss {loss:.4f}", file=sys.stderr, flush=True)

    try:
        train = load_idx_dataset("mnist", "train", args.data_dir)
        test = load_idx_dataset("mnist", "test", args.data_dir)
        start = time.perf_counter()
        model = train_judge(train.images, train.labels, epochs=args.epochs, seed=args.seed,
                            batch_size=args.batch_size, lr=args.lr, progress=report)
        seconds = time.perf_counter() - start
        from vaegen.runtime import describe_machine

        command = (f"python -m vaegen.training.judge --out {_shown_path(args.out)} --epochs {args.epochs} "
                   f"--seed {args.seed} --batch-size {args.batch_size} --lr {args.lr:g} --threads {args.threads}")
        training = {
            "command": command, "dataset": "mnist train (60,000)", "epochs": args.epochs,
            "batch_size": args.batch_size, "optimizer": "Adam", "lr": args.lr, "lr_schedule": "one-cycle",
            "dropout": 0.3, "seed": args.seed, "threads": args.threads,
            "augmentation": "each image as it is, binarized, or blurred and dimmed, odds 1/3 each",
            "training_seconds": round(seconds, 1), "wall_time": f"{seconds / 60:.1f} min",
            "hardware": describe_machine(),
        }
        out = export_judge(model, args.out, test.images, test.labels, train_images=train.images, training=training)
    except VaegenError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    meta = json.loads((out / JUDGE_META).read_text())
    print(json.dumps({"out": str(out), "seconds": round(seconds, 1), **meta["metrics"], "floor": meta.get("floor")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
