"""Any dataset by name or path, the held-out rule, and images as a model
sees them (prepared as its likelihood says: vaegen.likelihoods). numpy only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vaegen.data.folders import load_image_folder
from vaegen.data.named import DATASETS, load_idx_dataset
from vaegen.data.sets import ImageSet, Progress
from vaegen.errors import DataError
from vaegen.likelihoods import likelihood_for, model_input  # noqa: F401 (cli/train.py takes likelihood_for from here)


def load_dataset(
    dataset: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    channels: int = 1,
    size: tuple[int, int] = (28, 28),
    progress: Progress | None = None,
) -> ImageSet:
    """A named IDX dataset, or a folder of images when `dataset` is a path."""
    if dataset in DATASETS:
        return load_idx_dataset(dataset, split, data_dir, progress=progress)
    path = Path(dataset).expanduser()
    if path.exists() or os.sep in dataset or dataset.startswith("."):
        return load_image_folder(path, channels=channels, size=size, progress=progress)
    raise DataError(
        f"Unknown dataset {dataset!r}: use mnist, fashion-mnist, or the path of a folder of images."
    )


def split_for_training(dataset: str, data_dir: str | os.PathLike | None = None, *, channels: int = 1,
                       size: tuple[int, int] = (28, 28), progress: Progress | None = None) -> tuple[ImageSet, ImageSet]:
    """The training set and the held-out set of a run: MNIST's own train and
    test splits; an image folder keeps every 10th image apart."""
    train = load_dataset(dataset, "train", data_dir, channels=channels, size=size, progress=progress)
    if dataset in DATASETS:
        return train, load_dataset(dataset, "test", data_dir, channels=channels, size=size, progress=progress)
    if len(train) < 2:
        raise DataError(f"{dataset} holds {len(train)} image; training needs at least 2.")
    held = np.zeros(len(train), dtype=bool)
    held[::10] = True
    part = lambda mask: ImageSet(train.images[mask], train.labels[mask], train.name, train.classes)  # noqa: E731
    return part(~held), part(held)


def check_image_shape(data: ImageSet, image_shape: tuple[int, int, int], dataset: str) -> ImageSet:
    """`data`, when its images have the model's shape (C, H, W); else a DataError."""
    if data.images.shape[1:] != tuple(image_shape):
        raise DataError(f"{dataset} images are {data.images.shape[1:]}, the model takes {tuple(image_shape)}.")
    return data


def load_for_model(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                   *, progress: Progress | None = None) -> ImageSet:
    """A split converted to the model's channels and size, its shape checked."""
    c, h, w = image_shape
    data = load_dataset(dataset, split, data_dir, channels=c, size=(h, w), progress=progress)
    return check_image_shape(data, image_shape, dataset)


def evaluation_images(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                      *, likelihood: str = "bernoulli", limit: int | None = None,
                      progress: Progress | None = None) -> np.ndarray:
    """The held-out images a model is scored on: the first `limit` of the
    split, checked against the model's image shape, as model_input() gives
    them (binarized once with EVAL_SEED, so every evaluation sees the same bits)."""
    data = load_for_model(dataset, split, data_dir, image_shape, progress=progress)
    images = data.images[:limit] if limit else data.images
    return model_input(images, likelihood)
