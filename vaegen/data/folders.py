"""Folders of images as datasets: first-level subfolders are the labels; which
images are held out is vaegen.data.load's rule. Imports numpy, vaegen.data.sets,
vaegen.errors and (inside load_image_folder) vaegen.images only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vaegen.data.sets import ImageSet, Progress
from vaegen.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}




def find_images(folder: str | os.PathLike) -> list[Path]:
    """PNG/JPEG files under `folder`, recursively, in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Dataset folder {folder} does not exist or is not a folder.")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise DataError(f"Dataset folder {folder} holds no PNG or JPEG image.")
    return files


def load_image_folder(
    folder: str | os.PathLike,
    *,
    channels: int = 1,
    size: tuple[int, int] = (28, 28),
    progress: Progress | None = None,
) -> ImageSet:
    """Every PNG/JPEG under `folder`, converted to `channels` and `size` (H, W).

    Labels are the index of each image's first-level subfolder (sorted by
    name); images directly in `folder` get -1.
    """
    from vaegen.images import load_image, resize_to

    folder = Path(folder)
    files = find_images(folder)
    classes = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(files), channels, *size), dtype=np.uint8)
    labels = np.full(len(files), -1, dtype=np.int64)
    for i, path in enumerate(files):
        images[i] = resize_to(load_image(path), channels=channels, size=size)
        parts = path.relative_to(folder).parts
        if len(parts) > 1:
            labels[i] = index[parts[0]]
        if progress:
            progress(i + 1, len(files))
    return ImageSet(images=images, labels=labels, name=folder.name, classes=tuple(classes))


