"""The judge: a small classifier per dataset that scores generated images,
trained here in torch and exported to ONNX for vaegen.evaluation.judges (which runs it
without torch). The commands that train one are tools/train_judge.py (a named
dataset) and `vaegen judge` (a labelled image folder: train_judge()).

The network is 3x3 convolutions (32 channels, doubling per level; each
followed by ReLU and 2x2 max-pooling) down to a grid of at most 8x8 (two at
28x28, three at 64x64), a 128-wide dense ReLU layer whose output is the
`features` the Frechet distance is measured on, and a linear layer to the
class `logits`.

It is trained on a part of the dataset's training split only: the rest of
that split is the reference of the sample-quality figures (a named dataset's
last 10,000 images; a folder's every 4th, as its files come sorted by class),
and the test split their floor, so no set the figures compare was seen by
the judge (a judge scores its own training images as better than real data).

Training data: each training image is shown, at random and afresh every
epoch, in one of these forms with equal odds:
- as it is (in [0, 1]), which is what real held-out images are;
- blurred by a 3x3 binomial filter and dimmed (grey) or flattened towards
  its mean colour (colour) by a factor drawn from [0.6, 1], which is what a
  VAE's output looks like: pixel means, slightly soft and washed out;
- for MNIST, stochastically binarized (each pixel on with probability its
  intensity), which is what its VAEs are trained on.
A judge trained on real images alone would call a soft grey shape less
confidently than the same shape in ink, and the figures would then measure
texture as much as shape. Its accuracy on each form of the test set is recorded.

The run is seeded and deterministic for a given thread count. The ONNX graph
is checked (onnx.checker, no random op, ONNX Runtime against torch at several
batch sizes) before it is moved into place; judge.json and README.md are then
written, each atomically. Imports torch, onnx and vaegen's own modules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from vaegen import __version__
from vaegen.bundle.read import sha256_file
from vaegen.errors import ArgumentError, BundleError, ExportError
from vaegen.evaluation.judges import (
    JUDGE_FILE,
    JUDGE_FORMAT,
    JUDGE_META,
    Judge,
    judge_session,
    reference_statistics,
    sample_quality,
)
from vaegen.fileio import atomic_path, check_folder_target
from vaegen.recipes import JUDGE
from vaegen.training.export import PARITY_BATCHES, export_graph, model_id, stamp_graph

IMAGE_SHAPE = (1, 28, 28)
FEATURE_DIM = 128
SMALLEST_GRID = 8  # the convolutions pool down to a grid of at most this side
# The features reach values of ~10 after a ReLU stack; 1e-4 absolute is
# float32 rounding at that scale, not a wrong graph.
JUDGE_ATOL = 1e-4


def conv_widths(side: int) -> list[int]:
    """The channels of each 3x3 convolution (each followed by ReLU and 2x2
    max-pooling): 32, doubling per level up to 256, with as many levels as
    halve `side` to at most SMALLEST_GRID (28: 32, 64 to 7x7; 64: 32, 64, 128 to 8x8)."""
    widths = [32]
    while side // 2 > SMALLEST_GRID:
        side //= 2
        widths.append(min(256, widths[-1] * 2))
    return widths


class JudgeNet(nn.Module):
    """image [N, C, H, W] in [0, 1] -> (logits [N, classes], features [N, 128])."""

    def __init__(self, feature_dim: int = FEATURE_DIM, classes: int = 10, shape: tuple[int, int, int] = IMAGE_SHAPE):
        super().__init__()
        c, h, w = shape
        self.shape = tuple(shape)
        widths = conv_widths(max(h, w))
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, padding=1)
                                   for c_in, c_out in zip([c, *widths[:-1]], widths, strict=True))
        for _ in widths:
            h, w = h // 2, w // 2
        self.dense = nn.Linear(widths[-1] * h * w, feature_dim)
        self.dropout = nn.Dropout(0.3)  # identity in eval mode, so absent from the graph
        self.head = nn.Linear(feature_dim, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for conv in self.convs:
            h = F.max_pool2d(F.relu(conv(h)), 2)  # 28x28: (N, 32, 14, 14), then (N, 64, 7, 7)
        features = F.relu(self.dense(h.flatten(1)))  # (N, 128)
        return self.head(self.dropout(features)), features

    def describe(self) -> str:
        convs = ", ".join(f"conv3x3({conv.out_channels})-relu-maxpool2" for conv in self.convs)
        return f"{convs}, dense({self.dense.out_features})-relu = features, dense({self.head.out_features}) = logits"


_BLUR = torch.tensor([1.0, 2.0, 1.0])
_BLUR = (torch.outer(_BLUR, _BLUR) / 16).reshape(1, 1, 3, 3)


def blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial filter over each channel of x [B, C, H, W]."""
    c = x.shape[1]
    return F.conv2d(x, _BLUR.expand(c, 1, 3, 3), padding=1, groups=c)


def soften(x: torch.Tensor, dim: torch.Tensor) -> torch.Tensor:
    """What a VAE's pixel means look like: x blurred, then for grey images
    dimmed (x `dim`, towards black, the digits' ground), for colour ones
    flattened towards each image's mean colour by `dim` (a washed-out picture)."""
    soft = blur(x)
    if x.shape[1] == 1:
        return soft * dim
    mean = soft.mean(dim=(2, 3), keepdim=True)
    return mean + (soft - mean) * dim


def augment(x: torch.Tensor, gen: torch.Generator, binarized: bool = True) -> torch.Tensor:
    """Each image of x [B, C, H, W] in [0, 1] as it is, softened (soften(),
    by a factor drawn from [0.6, 1]), or (with `binarized`) stochastically
    binarized, with equal odds."""
    forms = 3 if binarized else 2
    form = torch.randint(0, forms, (len(x), 1, 1, 1), generator=gen)
    dim = 0.6 + 0.4 * torch.rand((len(x), 1, 1, 1), generator=gen)
    out = torch.where(form == 1, soften(x, dim), x)
    if binarized:
        binary = (torch.rand(x.shape, generator=gen) < x).float()
        out = torch.where(form == 2, binary, out)
    return out


def fit_judge(images: np.ndarray, labels: np.ndarray, *, epochs: int = 5, seed: int = 0, batch_size: int = 128,
                lr: float = 2e-3, binarized: bool = True, progress=None) -> JudgeNet:
    """Train a JudgeNet on uint8 images [N, C, H, W] and labels [N] (Adam, one-cycle schedule).

    `progress(epoch, step, steps, loss)`, when given, is called every 50 steps and at each epoch's end."""
    if images.ndim != 4 or len(images) != len(labels) or not len(images):
        raise ArgumentError(f"The judge trains on images [N, C, H, W] with N labels, not {list(images.shape)} "
                            f"with {len(labels)}.")
    torch.manual_seed(seed)
    model = JudgeNet(classes=int(labels.max()) + 1, shape=tuple(images.shape[1:]))
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
            logits, _ = model(augment(x_all[idx], noise, binarized))
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
    session = judge_session(path, provider="cpu", threads=1, classes=model.head.out_features, image_shape=model.shape)
    gen = torch.Generator().manual_seed(seed)
    worst: dict = {}
    model.eval()
    for n in batches:
        x = augment(torch.rand((n, *model.shape), generator=gen), gen)
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


def accuracy_by_form(judge: Judge, images: np.ndarray, labels: np.ndarray, seed: int = 0,
                     binarized: bool = True) -> dict:
    """Test accuracy of the exported judge on the images as they are, softened
    (soften() by 0.8), and (with `binarized`) binarized."""
    x = torch.from_numpy(np.asarray(images).astype(np.float32) / 255.0)
    gen = torch.Generator().manual_seed(seed)
    forms = {"test_accuracy": x, "test_accuracy_blurred": soften(x, torch.tensor(0.8))}
    if binarized:
        forms["test_accuracy_binarized"] = (torch.rand(x.shape, generator=gen) < x).float()
    return {key: round(float(np.mean(judge.predict(v.numpy())[0].argmax(1) == labels)), 4) for key, v in forms.items()}


def export_judge(model: JudgeNet, dst: str | Path, *, dataset: str, classes: list[str], held_out: dict,
                 training: dict | None = None, binarized: bool = True, fingerprint: str | None = None) -> Path:
    """Export `model` to dst/judge.onnx (checked for parity first), measure it
    on the test set through ONNX Runtime, and write judge.json and README.md.

    `held_out` holds what the judge never saw: "test_images"/"test_labels"
    (the test split, its accuracy and the floor's first set),
    "reference_images" (the training images it was not trained on, the
    reference every figure is measured against) and "reference" (where they
    sit in the training split: {"start", "step", "count"}). The floor is
    vaegen.evaluation.judges.sample_quality of the test images against the reference:
    what real data scores, which a generator can hope to match, not beat.
    `fingerprint`: an image folder's (vaegen.data.load.dataset_fingerprint),
    by which `vaegen evaluate` knows the folder again."""
    dst = check_folder_target(dst, "Judge folder")
    dst.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    test_images, test_labels, reference = held_out["test_images"], held_out["test_labels"], held_out["reference_images"]
    where = {"split": "train", "start": 0, "step": 1, **held_out["reference"], "count": len(reference)}
    facts = {
        "format": JUDGE_FORMAT,
        "vaegen_version": __version__,
        "model_id": model_id(model),
        "role": "judge",
        "dataset": dataset,
        "input": {"name": "image", "shape": ["N", *model.shape], "dtype": "float32", "range": [0, 1]},
        "outputs": {"logits": ["N", len(classes)], "features": ["N", model.dense.out_features]},
        "classes": list(classes),
        "feature_dim": model.dense.out_features,
        "architecture": model.describe(),
        # The training split's images the judge never saw: the reference of the figures.
        "reference": where,
        "training": training or {},
    }
    if fingerprint:
        facts["dataset_fingerprint"] = fingerprint
    with atomic_path(dst / JUDGE_FILE, suffix=".onnx") as tmp:
        export_graph(model, torch.rand(2, *model.shape), tmp, "image", ["logits", "features"])
        try:
            stamp_graph(tmp, facts, "judge")
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"onnx.checker rejected the judge graph: {exc}") from exc
        facts["parity_max_abs_diff"] = check_judge_parity(model, tmp)
        facts["files"] = {JUDGE_FILE: {"sha256": sha256_file(tmp), "bytes": tmp.stat().st_size}}
        judge = Judge(judge_session(tmp, provider="cpu", classes=len(classes), image_shape=model.shape), facts)
        facts["metrics"] = accuracy_by_form(judge, test_images, test_labels, binarized=binarized)
        floor = sample_quality(judge, test_images, reference_statistics(judge, reference), labels=test_labels)
        floor.pop("class_shares")
        facts["floor"] = {"images": f"{dataset} test ({len(test_images)})",
                          "reference": f"{dataset} train {reference_text(where)} ({len(reference)})",
                          **{k: round(v, 4) if isinstance(v, float) else v for k, v in floor.items()}}
    facts["exported"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    with atomic_path(dst / JUDGE_META) as tmp:
        tmp.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    with atomic_path(dst / "README.md") as tmp:
        tmp.write_text(judge_card(facts))
    return dst


def reference_text(where: dict) -> str:
    """The reference's rows of the training split as a slice: [50000:], [3::4]."""
    step = int(where.get("step", 1))
    return f"[{where['start']}:]" if step == 1 else f"[{where['start']}::{step}]"


def judge_card(facts: dict) -> str:
    """The judge's README.md: what it is, how it was trained, how well it classifies."""
    training, metrics, dataset = facts.get("training", {}), facts.get("metrics", {}), facts["dataset"]
    ref = facts["reference"]
    lines = [
        f"# vaegen judge: a {dataset} classifier for sample quality",
        "",
        "A small convolutional classifier that `vaegen.evaluation.judges` runs (ONNX Runtime, no torch) to score "
        "generated images: its class probabilities give the confident share, the inception score and the "
        f"label agreement, and its {facts['feature_dim']}-d penultimate layer gives the Frechet distance.",
        "",
        "## Graph",
        "",
        f"- input `image`: float32 [N, {', '.join(str(v) for v in facts['input']['shape'][1:])}], in [0, 1]",
        f"- outputs `logits` [N, {len(facts['classes'])}] (classes {', '.join(facts['classes'])}) "
        f"and `features` [N, {facts['feature_dim']}]",
        f"- architecture: {facts['architecture']}",
        "",
        "## How it was trained",
        "",
    ]
    if training.get("command"):
        lines += ["```", training["command"], "```", ""]
    trained_on = (f"The first {ref['start']:,} images of the {dataset} train split. The other {ref['count']:,} are"
                  if ref.get("step", 1) == 1 else
                  f"The {dataset} train split but its every {ref['step']}th image (from the {ref['start']}th, "
                  f"counting from 0). Those {ref['count']:,} are")
    lines += [
        f"{trained_on} the "
        "reference that sample-quality figures are measured against, and the test split is the floor's real "
        f"set: the judge saw neither. Each image is shown, at random and afresh each epoch, {training.get('augmentation', '')}, "
        "so that the judge scores the shape of a VAE's soft pixel means as it scores real images.",
        "",
    ]
    keys = ("epochs", "batch_size", "optimizer", "lr", "lr_schedule", "dropout", "seed", "threads", "wall_time",
            "hardware")
    lines += [f"- {k.replace('_', ' ')}: {training[k]}" for k in keys if k in training]
    lines += ["", f"## Test accuracy ({dataset} test split, {facts['floor']['count']:,} images, through ONNX Runtime)", ""]
    names = {"test_accuracy": "as they are", "test_accuracy_binarized": "stochastically binarized",
             "test_accuracy_blurred": "blurred (3x3 binomial) and dimmed x0.8" if facts["input"]["shape"][1] == 1
             else "blurred (3x3 binomial), contrast x0.8 towards each image's mean colour"}
    lines += ["| test images | accuracy |", "|---|---|"]
    lines += [f"| {names.get(k, k)} | {v:.2%} |" for k, v in metrics.items()]
    floor = facts["floor"]
    lines += ["", "## The floor of the sample-quality figures", "",
              f"Real images scored as if generated: the {floor['images']} images against the {floor['reference']} "
              "images' feature statistics (`vaegen.evaluation.judges.sample_quality`), two real sets the judge never saw. "
              "A generator can hope to match these, not to beat them; the Frechet distance also grows as the "
              "number of images shrinks.", "",
              "| figure | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {floor[k]} |"
              for k in ("frechet_distance", "confident_share", "inception_score", "label_agreement") if k in floor]
    lines += ["", f"Judge format {facts['format']}, vaegen {facts['vaegen_version']}, model id {facts['model_id']}.", ""]
    return "\n".join(lines)


FOLDER_REFERENCE_EVERY = JUDGE["reference_every"]  # a folder judge's reference; it learns from the rest


@dataclasses.dataclass(frozen=True)
class JudgeSettings:
    """How train_judge() trains: each a keyword of it."""

    epochs: int = JUDGE["epochs"]
    seed: int = 0
    batch_size: int = 128
    lr: float = 2e-3
    threads: int | None = None  # torch's choice
    background: int | None = None  # the grey under transparent pixels; None: the recipes'
    skip_bad: bool = False


def train_judge(dataset: str | os.PathLike, out: str | os.PathLike, *, image_size: int = 28, channels: int = 1,
                progress=None, command: str | None = None, **settings) -> Path:
    """Train and export the judge of a labelled image folder (its classes are
    its first-level subfolders) on the folder's own training split, by the
    held-out rule (vaegen.data.load): every FOLDER_REFERENCE_EVERY-th
    training image is kept back as the reference of the figures, the test
    split is the floor's real set. Images are prepared as a model of
    `channels` x `image_size` sees them. The judge records the folder's
    fingerprint, so `vaegen evaluate --samples` on a model of this folder
    finds it when shipped. A folder without labels is a BundleError that
    says why. `settings`: JudgeSettings by name (epochs=15, seed, batch_size,
    lr, threads, background, skip_bad). `progress(epoch, step, steps, loss)`
    as fit_judge(). Returns `out`.

    Example: vaegen.train_judge("photos/", "runs/photos-judge", image_size=64, channels=3)"""
    from vaegen.data.load import dataset_fingerprint, split_for_training
    from vaegen.data.sets import FolderOptions
    from vaegen.evaluation.judges import unlabelled_reason
    from vaegen.recipes import COMMON

    unknown = set(settings) - {f.name for f in dataclasses.fields(JudgeSettings)}
    if unknown:
        raise ArgumentError(f"train_judge() takes no setting {', '.join(sorted(unknown))}.")
    s = JudgeSettings(**settings)
    folder = str(Path(dataset).expanduser())
    reason = unlabelled_reason(folder)
    if reason:
        raise BundleError(reason)
    out = check_folder_target(out, "Judge folder")
    background = COMMON["background"] if s.background is None else s.background
    train, test = split_for_training(folder, channels=channels, size=(image_size, image_size),
                                     options=FolderOptions(s.skip_bad, background))
    keep = np.ones(len(train), dtype=bool)
    keep[FOLDER_REFERENCE_EVERY - 1 :: FOLDER_REFERENCE_EVERY] = False
    learn = np.flatnonzero(keep)
    if s.threads:
        torch.set_num_threads(s.threads)
    start = time.perf_counter()
    model = fit_judge(np.asarray(train.images[learn]), train.labels[learn], epochs=s.epochs, seed=s.seed,
                      batch_size=s.batch_size, lr=s.lr, binarized=False, progress=progress)
    name = Path(folder).resolve().name
    training = _folder_training_facts(name, s, len(learn), time.perf_counter() - start, background,
                                      command or f"vaegen judge --dataset {name} --image-size {image_size} "
                                                 f"--channels {channels} --epochs {s.epochs} --seed {s.seed}")
    reference = {"start": FOLDER_REFERENCE_EVERY - 1, "step": FOLDER_REFERENCE_EVERY}
    held_out = {"test_images": np.asarray(test.images), "test_labels": test.labels,
                "reference_images": np.asarray(train.images[reference["start"] :: reference["step"]]),
                "reference": reference}
    return export_judge(model, out, dataset=name, classes=list(train.classes), held_out=held_out, training=training,
                        binarized=False, fingerprint=dataset_fingerprint(folder))


def _folder_training_facts(name: str, s: JudgeSettings, images: int, seconds: float, background: int,
                           command: str) -> dict:
    from vaegen.runtime import describe_machine

    return {
        "command": command, "dataset": f"{name} train, but every {FOLDER_REFERENCE_EVERY}th image",
        "train_images": images, "epochs": s.epochs, "batch_size": s.batch_size, "optimizer": "Adam", "lr": s.lr,
        "lr_schedule": "one-cycle", "dropout": 0.3, "seed": s.seed, "threads": torch.get_num_threads(),
        "background": background, "augmentation": "as it is, or blurred and flattened towards its mean colour, "
                                                  "odds 1/2 each",
        "training_seconds": round(seconds, 1), "wall_time": f"{seconds / 60:.1f} min", "hardware": describe_machine(),
    }
