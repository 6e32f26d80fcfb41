"""Folders of images as datasets: every still image Pillow reads, first-level
subfolders as the labels, decoded once into the folder cache
(vaegen.data.cache) and read memory-mapped. numpy and vaegen.data only.
"""

from __future__ import annotations

import os
from pathlib import Path

from vaegen.data.cache import Target, bad_files_error, decoded_folder, scan_folder
from vaegen.data.sets import PLAIN_FOLDER, FolderOptions, ImageSet, Progress


def load_image_folder(
    folder: str | os.PathLike,
    *,
    channels: int = 1,
    size: tuple[int, int] = (28, 28),
    progress: Progress | None = None,
    options: FolderOptions = PLAIN_FOLDER,
) -> ImageSet:
    """Every image under `folder`, converted to `channels` and `size` (H, W),
    its transparency composited onto the grey level options.background.

    Labels are the index of each image's first-level subfolder (sorted by
    name); images directly in `folder` get -1. The images are a read-only
    memory map of the folder's cache entry, decoded by every core the first
    time and found again after. A file that cannot be read as an image is a
    DataError that names every such file, unless options.skip_bad, which leaves
    them out (their count and names are in the ImageSet's `skipped`).
    """
    folder = Path(folder).expanduser()
    entry = decoded_folder(folder, Target(channels, tuple(size), options.background), progress=progress)
    if entry.bad and not options.skip_bad:
        raise bad_files_error(folder, entry.bad)
    return ImageSet(images=entry.images, labels=entry.labels, name=folder.name, classes=entry.classes,
                    skipped=tuple(rel for rel, _ in entry.bad))


def image_files(paths) -> list[Path]:
    """The files `paths` name: a file as given, and a folder as every image
    file under it, sorted by path (the files a folder dataset reads); a
    folder without one is a DataError."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += [path / relative for relative, _, _ in scan_folder(path)]
        else:
            files.append(path)
    return files
