"""Sample quality without torch: the judge classifier and the figures it gives.

A judge (weights/judges/<dataset>, trained by tools/train_judge.py for a
named dataset and by `vaegen judge` for a labelled image folder) is a small
classifier of one dataset exported to ONNX: input `image` float32
[N, C, H, W] in [0, 1] (the shape its judge.json records; [N, 1, 28, 28]
when it records none), outputs `logits` [N, K] and `features` [N, F], its
penultimate layer. It never saw the images the figures compare: the
reference is the part of the training split it was not trained on, the
floor's real set the test split. Over a set of generated images it gives:

- the Frechet distance between the judge's features of the generated images
  and of real held-out images, each set summarised as a Gaussian (the FID of
  Heusel et al. 2017, with this judge in place of Inception-v3);
- the confident share: how many images the judge calls with probability at
  least 0.9;
- the inception score (Salimans et al. 2016) of the judge's class probabilities;
- the label agreement, for images generated for a given class: how many the
  judge gives that class.

Each function's docstring defines its figure exactly. Imports numpy,
onnxruntime (through vaegen.runtime) and vaegen's torch-free modules only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vaegen.bundle.card import FITTED, PER_CLASS, REAL, RECONSTRUCTIONS, STANDARD
from vaegen.bundle.read import read_checked, read_json_object, shipped_model_dir, shipped_models
from vaegen.data.cache import scan_folder
from vaegen.data.load import dataset_fingerprint, is_folder
from vaegen.data.named import DATASETS
from vaegen.errors import ArgumentError, BundleError
from vaegen.runtime import DEFAULT_BATCH, check_io, make_session

JUDGE_FORMAT = 1
JUDGE_FILE = "judge.onnx"
JUDGE_META = "judge.json"
JUDGES = "judges"  # weights/judges/<dataset>
IMAGE_SHAPE = (1, 28, 28)  # a judge.json that records no input shape: the named datasets' judges
CONFIDENT = 0.9
REFERENCE_IMAGES = 10_000  # the training images a judge is not trained on: the reference of its figures


def judge_session(path, provider: str = "auto", threads: int | None = None, graph: bytes | None = None,
                  feature_dim: int | None = None, classes: int | None = None,
                  image_shape: tuple[int, int, int] = IMAGE_SHAPE) -> ort.InferenceSession:
    """An ONNX Runtime session on a judge graph, its inputs and outputs checked."""
    session = make_session(path, provider, threads, graph=graph)
    check_io(session, {"image": [None, *image_shape]}, {"logits": [None, classes], "features": [None, feature_dim]},
             Path(path).name)
    return session


class Judge:
    """A judge graph's session and its judge.json facts."""

    def __init__(self, session: ort.InferenceSession, meta: dict | None = None, batch_size: int = DEFAULT_BATCH):
        self.session = session
        self.meta = meta or {}
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"Judge(model_id={self.meta.get('model_id', 'unknown')!r})"

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes", [str(d) for d in range(10)]))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) of the images it takes."""
        return input_shape(self.meta)

    @property
    def feature_dim(self) -> int:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == "features")
        return int(self.meta.get("feature_dim") or shape[1])

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images [N, C, H, W] (float in [0, 1], or uint8 0-255) -> class
        probabilities [N, K] (softmax of the logits, float64) and features [N, F] (float64)."""
        images = np.asarray(images)
        shape = self.image_shape
        if images.ndim != 4 or tuple(images.shape[1:]) != shape:
            raise ArgumentError(f"The judge takes images [N, {', '.join(map(str, shape))}], not {list(images.shape)}.")
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        feature_dim = self.feature_dim
        probs, features = np.zeros((len(images), len(self.classes))), np.zeros((len(images), feature_dim))
        for start in range(0, len(images), self.batch_size):
            batch = np.ascontiguousarray(images[start : start + self.batch_size], dtype=np.float32)
            if scale != 1.0:
                batch /= np.float32(scale)
            logits, feats = self.session.run(["logits", "features"], {"image": batch})
            probs[start : start + len(batch)] = softmax(logits.astype(np.float64))
            features[start : start + len(batch)] = feats
        return probs, features


def input_shape(meta: dict) -> tuple[int, int, int]:
    """The (C, H, W) a judge takes, from its judge.json facts ([N, 1, 28, 28] when they record none)."""
    shape = (meta.get("input") or {}).get("shape")
    if isinstance(shape, list) and len(shape) == 4 and all(isinstance(v, int) and v > 0 for v in shape[1:]):
        return tuple(shape[1:])
    return IMAGE_SHAPE


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's maximum so that exp never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def judge_dir(path: str | os.PathLike | None = None, dataset: str = "mnist") -> Path:
    """`path`, else $VAEGEN_JUDGE, else the shipped judge of `dataset`
    (weights/judges/<dataset>; for an image folder, the shipped judge trained
    on a folder of the same content: folder_judge())."""
    given = _given_judge(path)
    if given is not None:
        return Path(given).expanduser()
    if is_folder(dataset):
        return folder_judge(dataset)
    return shipped_model_dir(f"{JUDGES}/{dataset}", marker=JUDGE_META)


def _given_judge(path: str | os.PathLike | None) -> str | os.PathLike | None:
    """The judge folder the caller or $VAEGEN_JUDGE names; None: the dataset's shipped one."""
    return path if path is not None else os.environ.get("VAEGEN_JUDGE") or None


def folder_judge(folder: str | os.PathLike) -> Path:
    """The shipped judge whose judge.json records the fingerprint of `folder`'s
    content (vaegen.data.load.dataset_fingerprint); else a BundleError that says
    how to train one, or, for a folder without class subfolders, why there is none."""
    fingerprint = dataset_fingerprint(str(folder))
    for name in shipped_models(JUDGES, JUDGE_META):
        candidate = shipped_model_dir(f"{JUDGES}/{name}", marker=JUDGE_META)
        try:
            recorded = json.loads((candidate / JUDGE_META).read_text()).get("dataset_fingerprint")
        except (OSError, ValueError):
            continue
        if fingerprint is not None and recorded == fingerprint:
            return candidate
    reason = unlabelled_reason(folder)
    if reason:
        raise BundleError(reason)
    raise BundleError(f"No judge for {folder}: train one on its own training split with "
                      f"`vaegen judge --dataset {folder} --out DIR` and pass --judge DIR.")


def unlabelled_reason(folder: str | os.PathLike) -> str | None:
    """Why `folder` can have no judge, or None when it can: a judge is a
    classifier of the folder's classes, its first-level subfolders, so every
    image must sit in one and there must be two of them."""
    files = [relative for relative, _, _ in scan_folder(Path(folder).expanduser())]
    classes = {f.split("/")[0] for f in files if "/" in f}
    loose = sum("/" not in f for f in files)
    if len(classes) < 2 or loose:
        found = (f"{loose} of its images sit outside any class subfolder" if loose and classes else
                 "its images are in no class subfolders" if not classes else "it has one class subfolder")
        return (f"No judge for {folder}: {found}. A judge is a classifier of a folder's classes (its first-level "
                "subfolders, at least two, every image in one), and its features are what the Frechet distance "
                "compares; without labels there is nothing to train it on.")
    return None


def load_judge(path: str | os.PathLike | None = None, *, dataset: str = "mnist", provider: str = "auto",
               threads: int | None = None) -> Judge:
    """Load a judge folder (default: the shipped judge of `dataset`), checking
    judge.json's format and judge.onnx's size and sha256 against it; a
    mismatch is a BundleError and the graph is never run."""
    folder = judge_dir(path, dataset)
    if _given_judge(path) is None and not (folder / JUDGE_META).is_file():
        shipped = ", ".join(shipped_models(JUDGES, JUDGE_META)) or "no dataset"
        raise BundleError(f"No judge for {dataset}: vaegen ships judges for {shipped}; "
                          "train one with `vaegen judge` and pass its folder as the judge.")
    meta_path = folder / JUDGE_META
    meta = read_json_object(folder, JUDGE_META, "a judge folder")
    if not isinstance(meta.get("format"), int):
        raise BundleError(f"{meta_path} is malformed: 'format' is missing.")
    if meta["format"] > JUDGE_FORMAT:
        raise BundleError(f"{folder} is judge format {meta['format']}, newer than this vaegen reads; upgrade vaegen.")
    entry = (meta.get("files") or {}).get(JUDGE_FILE)
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise BundleError(f"{meta_path} is malformed: no sha256 for {JUDGE_FILE}.")
    if not isinstance(meta.get("classes"), list) or not meta["classes"]:
        raise BundleError(f"{meta_path} is malformed: no class names.")
    graph = read_checked(folder / JUDGE_FILE, entry, listed_in=JUDGE_META,
                         remedy="retrain it with tools/train_judge.py")
    session = judge_session(folder / JUDGE_FILE, provider, threads, graph=graph, feature_dim=meta.get("feature_dim"),
                            classes=len(meta["classes"]), image_shape=input_shape(meta))
    return Judge(session, meta)


# ---------------------------------------------------------------- the figures


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean [F] and covariance [F, F] (unbiased, divided by N - 1) of features [N, F], in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ArgumentError(f"Feature statistics need at least two images, not features of shape {list(features.shape)}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix
    (eigenvalues that rounding made slightly negative count as 0)."""
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Frechet (2-Wasserstein) distance, squared, between N(mu1, sigma1) and N(mu2, sigma2):

        d^2 = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1^1/2 sigma2 sigma1^1/2)^1/2)

    (Dowson & Landau 1982; the FID's formula.) The matrix square roots come
    from symmetric eigen-decompositions in float64: sigma1^1/2 sigma2
    sigma1^1/2 is symmetric positive semi-definite, so unlike sqrtm of the
    product sigma1 sigma2 there is no complex part to discard. Returns a
    float >= 0 (a rounding below zero is returned as 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ArgumentError(f"Frechet distance: shapes do not agree ({mu1.shape}, {sigma1.shape}, {mu2.shape}, "
                         f"{sigma2.shape}).")
    root1 = _sqrt_psd(sigma1)
    inner = np.linalg.eigvalsh(root1 @ ((sigma2 + sigma2.T) / 2) @ root1)
    cross = np.sqrt(np.clip(inner, 0, None)).sum()
    d2 = float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * cross)
    return max(d2, 0.0)


def inception_score(probs: np.ndarray) -> float:
    """exp(mean over images x of KL(p(y|x) || p(y))), where p(y|x) is the
    judge's class probabilities [N, K] for image x and p(y) their mean over
    the N images (Salimans et al. 2016), computed over the whole set at once
    (no splits). Between 1 (every image gets the same distribution) and K
    (each image called with certainty, the classes equally often)."""
    probs = _check_probs(probs)
    marginal = probs.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * (np.log(probs) - np.log(marginal)), 0.0)  # 0 log 0 = 0
    return float(np.exp(terms.sum(axis=1).mean()))


def confident_share(probs: np.ndarray, threshold: float = CONFIDENT) -> float:
    """The share of images whose most probable class has probability >= `threshold`, in [0, 1]."""
    probs = _check_probs(probs)
    return float(np.mean(probs.max(axis=1) >= threshold))


def label_agreement(probs: np.ndarray, labels: np.ndarray) -> float:
    """The share of images whose most probable class (argmax of p(y|x)) is
    the label they were generated for, in [0, 1]."""
    probs = _check_probs(probs)
    labels = np.asarray(labels)
    if labels.shape != (len(probs),):
        raise ArgumentError(f"{len(probs)} images but labels of shape {list(labels.shape)}.")
    return float(np.mean(probs.argmax(axis=1) == labels))


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ArgumentError(f"Class probabilities must be [N, K] with N >= 1, not {list(probs.shape)}.")
    return probs


def reference_statistics(judge: Judge, images: np.ndarray) -> dict:
    """The judge's feature statistics of real images: {"mu", "sigma", "count"}."""
    mu, sigma = feature_statistics(judge.predict(images)[1])
    return {"mu": mu, "sigma": sigma, "count": len(images)}


def sample_quality(judge: Judge, images: np.ndarray, reference, labels: np.ndarray | None = None,
                   threshold: float = CONFIDENT, by_class: bool = False) -> dict:
    """The quality figures of `images` [N, 1, 28, 28] (generated, in [0, 1] or uint8):

    - frechet_distance: frechet_distance() between the Gaussians fitted to
      the judge's features of `images` and of the real reference images;
      lower is better, about 0 for images drawn like the reference. It is
      biased upward at small N, so compare figures at the same N.
    - confident_share: confident_share() at `threshold`; higher is better.
    - inception_score: inception_score(); higher is better, at most 10.
    - class_shares: the share of images the judge calls each class (argmax),
      a list of 10; a missing class is a mode the model lost.
    - label_agreement (only when `labels` are given): label_agreement().
    - class_agreement (with `labels` and `by_class`): label_agreement() of
      each class's images, by class name.
    - count: N.

    `reference` is real held-out images [M, 1, 28, 28], or their statistics
    from reference_statistics() (a dict with "mu" and "sigma").
    """
    if not isinstance(reference, dict):
        reference = reference_statistics(judge, reference)
    probs, features = judge.predict(images)
    mu, sigma = feature_statistics(features)
    result = {
        "count": len(probs),
        "frechet_distance": frechet_distance(mu, sigma, reference["mu"], reference["sigma"]),
        "confident_share": confident_share(probs, threshold),
        "inception_score": inception_score(probs),
        "class_shares": (np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)).tolist(),
    }
    if labels is not None:
        labels = np.asarray(labels)
        result["label_agreement"] = label_agreement(probs, labels)
        if by_class:
            result["class_agreement"] = {judge.classes[c]: label_agreement(probs[labels == c], labels[labels == c])
                                         for c in np.unique(labels)}
    return result


def compare_priors(model, judge: Judge, *, n: int, seed: int, reference_images: np.ndarray,
                   real_images: np.ndarray, real_labels: np.ndarray | None = None) -> dict[str, dict]:
    """sample_quality() of n images of each kind, all against the judge's
    statistics of `reference_images` (real images the judge never saw):

    - "real held-out": the first n of real_images, the floor (label agreement
      is then the judge's accuracy on them);
    - "reconstructions": the same images through the encoder and decoder
      (decoded posterior means), the decoder's limit: what is left between
      a prior's row and this one is the prior's share of the gap;
    - "fitted prior": the bundle's fitted mixture, when it has one;
    - "fitted prior, per class": n // C draws from each class's mixture, the
      asked class scored by label agreement (classes the judge knows);
    - "standard prior": z ~ N(0, I).
    """
    reference = reference_statistics(judge, reference_images)
    labels = None if real_labels is None else np.asarray(real_labels)[:n]
    real = real_images[:n]
    scaled = real.astype(np.float32) / np.float32(255.0) if real.dtype == np.uint8 else real
    rows = {REAL: sample_quality(judge, real, reference, labels=labels),
            RECONSTRUCTIONS: sample_quality(judge, model.decode(model.encode(scaled)[0]), reference, labels=labels)}
    if model.prior is not None:
        rows[FITTED] = sample_quality(judge, model.sample(n, seed=seed, prior="fitted"), reference)
    known = [c for c in model.classes if c in judge.classes]
    if known and len(known) == len(model.classes) and n >= len(known):
        per = n // len(known)
        asked = np.repeat([judge.classes.index(c) for c in known], per)
        images = model.decode(model.class_latents(per, seed=seed))
        rows[PER_CLASS] = sample_quality(judge, images, reference, labels=asked, by_class=True)
    rows[STANDARD] = sample_quality(judge, model.sample(n, seed=seed, prior="standard"), reference)
    return rows


def judging_data(model, judge: Judge, dataset: str, data_dir=None, *, split: str = "test", progress=None,
                 skip_bad: bool = False) -> dict:
    """The real images compare_priors() needs, from `dataset`, its splits by
    the held-out rule (vaegen.data.load): the floor's set is the `split`
    (with labels when every image has one), the reference up to
    REFERENCE_IMAGES training images the judge never saw: for the judge's own
    dataset, those judge.json's "reference" names (a named dataset's after
    the ones it was trained on; a folder's every `step`-th, since a folder's
    images come sorted by class); for another, the first (of a folder: spread
    over it). The two sets never share an image, so the floor is not
    flattered, and the test split is one the model never saw (its own
    folder's held-out tenth, or any of a folder it never saw). A folder's
    floor set is shuffled (seeded), so that its first n images are every
    class's and not the first classes'. What `vaegen evaluate --samples N`
    judges against, and tools/ship.py with it."""
    from vaegen.data.load import load_for_model
    from vaegen.data.sets import FolderOptions

    options = FolderOptions(skip_bad, model.bundle.background)
    folder = is_folder(dataset)
    train = load_for_model(dataset, "train", data_dir, model.image_shape, progress=progress, options=options)
    held = load_for_model(dataset, split, data_dir, model.image_shape, progress=progress, options=options)
    where = {"start": 0, "count": REFERENCE_IMAGES}
    if folder:
        where["step"] = max(1, -(-len(train) // REFERENCE_IMAGES))
    if _judge_knows(judge, dataset) and isinstance(judge.meta.get("reference"), dict):
        where = judge.meta["reference"]
    start, step = int(where["start"]), int(where.get("step", 1))
    reference = train.images[start : start + step * int(where["count"]) : step]
    order = np.random.default_rng(0).permutation(len(held)) if folder else np.arange(len(held))
    real = np.asarray(held.images)[order]
    labels = held.labels[order]
    return {"reference_images": np.asarray(reference), "real_images": real,
            "real_labels": labels if (labels >= 0).all() else None}


def _judge_knows(judge: Judge, dataset: str) -> bool:
    """Whether `dataset` is the one the judge was trained on (a folder: by its content's fingerprint)."""
    if dataset in DATASETS:
        return judge.meta.get("dataset") == dataset
    recorded = judge.meta.get("dataset_fingerprint")
    return bool(recorded) and recorded == dataset_fingerprint(dataset)
