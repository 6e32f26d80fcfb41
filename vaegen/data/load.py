"""Any dataset by name or path, the one held-out rule, and images as a model
sees them (prepared as its likelihood says: vaegen.likelihoods). Imports numpy, the
standard library, vaegen.data, vaegen.likelihoods and vaegen.errors only.

The held-out rule, decided here once per kind of dataset and used by every
command (train, evaluate, fit-prior, map, serve's map, the judge's figures):

- a named dataset (MNIST, Fashion-MNIST) holds out its own test split;
- an image folder holds out every HELD_OUT_EVERY-th image in sorted order
  (the 1st, the 11th, ...): its "test" split; the rest is its "train" split.

A model is never scored on its own training images, and a folder it never
saw has nothing to hold out: model_split() reads such a folder whole. Which
folder is the model's own is told by content, not place: a bundle records
the fingerprint of its training folder (dataset_fingerprint(): the sha256 of
its image files' relative paths and sizes, in vaegen.json as
"dataset_fingerprint"; no path of the training machine is recorded). A
folder with that fingerprint is the model's own wherever it lies and
whatever its name; one whose files changed since (an image added, removed
or resized) is another dataset to the model. A bundle without a fingerprint
(exported before it was recorded) takes a folder of its dataset's name as its own.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path, PurePath

import numpy as np

from vaegen.data.cache import scan_folder
from vaegen.data.folders import load_image_folder
from vaegen.data.named import DATASETS, load_idx_dataset
from vaegen.data.sets import PLAIN_FOLDER, FolderOptions, ImageSet, Progress, Rows
from vaegen.errors import DataError
from vaegen.likelihoods import model_input

HELD_OUT_EVERY = 10  # an image folder's test split: every 10th image in sorted order
FOLDER_SPLITS = ("train", "test", "all")


def load_dataset(
    dataset: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    channels: int = 1,
    size: tuple[int, int] = (28, 28),
    progress: Progress | None = None,
    options: FolderOptions = PLAIN_FOLDER,
) -> ImageSet:
    """The `split` ("train" or "test", by the held-out rule) of a named IDX
    dataset, or of a folder of images when `dataset` is a path (read as
    `options` say: vaegen.data.folders); a folder's split "all" is every image in it."""
    if dataset in DATASETS:
        return load_idx_dataset(dataset, split, data_dir, progress=progress)
    folder = _folder(dataset)
    if folder is None:
        raise DataError(
            f"Unknown dataset {dataset!r}: use mnist, fashion-mnist, or the path of a folder of images."
        )
    if split not in FOLDER_SPLITS:
        raise DataError(f"Unknown split {split!r}; choose {', '.join(FOLDER_SPLITS)}.")
    whole = load_image_folder(folder, channels=channels, size=size, progress=progress, options=options)
    return whole if split == "all" else folder_split(whole, split)


def model_dataset(dataset: str | None, own: str) -> str:
    """`dataset` when given, else the model's `own` (Bundle.dataset): a
    shipped folder model records its folder by name alone, so where no folder
    of that name is here, a DataError says to name the folder's path."""
    if dataset:
        return dataset
    if own not in DATASETS and not Path(own).expanduser().is_dir():
        raise DataError(f"This model was trained on the image folder {PurePath(own).name!r}, which is not here: "
                        "give that folder's path as the dataset (--dataset PATH).")
    return own


def is_folder(dataset: str) -> bool:
    """Whether `dataset` names an image folder (a path) rather than a named dataset."""
    return dataset not in DATASETS and _folder(dataset) is not None


def _folder(dataset: str) -> Path | None:
    """The folder `dataset` names, when it reads as a path rather than a dataset's name."""
    path = Path(dataset).expanduser()
    return path if path.exists() or os.sep in dataset or dataset.startswith(".") else None


def folder_split(data: ImageSet, split: str) -> ImageSet:
    """The "train" or "test" part of a whole image folder, by the held-out
    rule: every HELD_OUT_EVERY-th image (in sorted order) is the test split."""
    held = np.zeros(len(data), dtype=bool)
    held[::HELD_OUT_EVERY] = True
    keep = np.flatnonzero(held if split == "test" else ~held)
    return ImageSet(Rows(data.images, keep), data.labels[keep], data.name, data.classes, data.skipped)


def split_for_training(dataset: str, data_dir: str | os.PathLike | None = None, *, channels: int = 1,
                       size: tuple[int, int] = (28, 28), progress: Progress | None = None,
                       options: FolderOptions = PLAIN_FOLDER) -> tuple[ImageSet, ImageSet]:
    """The training set and the held-out set of a run, by the held-out rule:
    a named dataset's train and test splits; an image folder, decoded once,
    split by folder_split()."""
    if dataset in DATASETS:
        train = load_dataset(dataset, "train", data_dir, channels=channels, size=size, progress=progress)
        return train, load_dataset(dataset, "test", data_dir, channels=channels, size=size, progress=progress)
    whole = load_dataset(dataset, "all", data_dir, channels=channels, size=size, progress=progress, options=options)
    if len(whole) < 2:
        raise DataError(f"{dataset} holds {len(whole)} image; training needs at least 2.")
    return folder_split(whole, "train"), folder_split(whole, "test")


def check_image_shape(data: ImageSet, image_shape: tuple[int, int, int], dataset: str) -> ImageSet:
    """`data`, when its images have the model's shape (C, H, W); else a DataError."""
    if data.images.shape[1:] != tuple(image_shape):
        raise DataError(f"{dataset} images are {data.images.shape[1:]}, the model takes {tuple(image_shape)}.")
    return data


def load_for_model(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                   *, progress: Progress | None = None, options: FolderOptions = PLAIN_FOLDER) -> ImageSet:
    """A split converted to the model's channels and size, its shape checked."""
    c, h, w = image_shape
    data = load_dataset(dataset, split, data_dir, channels=c, size=(h, w), progress=progress, options=options)
    return check_image_shape(data, image_shape, dataset)


def evaluation_images(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                      *, likelihood: str = "bernoulli", limit: int | None = None,
                      progress: Progress | None = None, options: FolderOptions = PLAIN_FOLDER) -> np.ndarray:
    """The held-out images a model is scored on: the first `limit` of the
    split, checked against the model's image shape, as model_input() gives
    them (binarized once with EVAL_SEED, so every evaluation sees the same bits)."""
    data = load_for_model(dataset, split, data_dir, image_shape, progress=progress, options=options)
    images = data.images[:limit] if limit else data.images
    return model_input(np.asarray(images), likelihood)


def dataset_fingerprint(dataset: str) -> str | None:
    """The identity of an image folder's content: the sha256 of its image
    files' paths (relative to it) and sizes, in sorted order; None for a
    named dataset or a path that is not a folder. A bundle records its
    training folder's, so is_training_folder() can know the folder again."""
    folder = None if dataset in DATASETS else _folder(dataset)
    if folder is None or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for relative, size, _ in scan_folder(folder):
        digest.update(f"{relative}\0{size}\n".encode())
    return digest.hexdigest()


def is_training_folder(dataset: str, meta: Mapping) -> bool:
    """Whether the image folder `dataset` is the one the model of `meta` (its
    vaegen.json) was trained on: the folder of the recorded fingerprint; in a
    bundle that records none, the folder of the recorded dataset's name."""
    recorded = meta.get("dataset_fingerprint")
    if recorded:
        return dataset_fingerprint(dataset) == recorded
    trained = str(meta.get("dataset") or "")
    return trained not in DATASETS and PurePath(trained).name == Path(dataset).expanduser().resolve().name


def model_split(dataset: str, split: str, meta: Mapping) -> str:
    """The split of `dataset` to read for `split` ("train" or "test") of the
    model of `meta` (its vaegen.json): `split` itself, except that an image
    folder the model was not trained on (is_training_folder) is read whole,
    "all": none of it was seen, so none of it needs holding out."""
    if dataset in DATASETS or is_training_folder(dataset, meta):
        return split
    return "all"
