"""An ImageSet (images and labels) and the progress callback every loader takes. numpy only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vaegen.recipes import COMMON

# Progress callback: (bytes or items done, total or None).
Progress = Callable[[int, "int | None"], None]



@dataclass
class ImageSet:
    """Images uint8 [N, C, H, W] and their labels int64 [N] (-1 when unknown);
    `classes` names each label (empty when the data has none); `skipped`, the
    files of an image folder left out as unreadable (skip_bad)."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    classes: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class FolderOptions:
    """How an image folder is read: `skip_bad` leaves out the files that cannot
    be read as images (else they stop the load, every one named); transparent
    pixels are composited onto the grey level `background` (0-255)."""

    skip_bad: bool = False
    background: int = COMMON["background"]


PLAIN_FOLDER = FolderOptions()  # every file must read; transparency onto the recipes' grey


class Rows:
    """Rows `index` of an array `base` (a memory-mapped folder cache), gathered
    only when read: a split of a folder larger than memory costs its index
    alone. Reads like the uint8 array it stands for: len, shape, slicing,
    integer and array indexing (each a copy of just those rows), astype and
    np.asarray (the whole split, for a caller that needs it all)."""

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> np.ndarray:
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        picked = self.index[rows]
        out = np.asarray(self.base[int(picked)]) if np.ndim(picked) == 0 else self.base[picked]
        return out[(slice(None), *rest)] if np.ndim(picked) else out[rest]  # rows picked: keep that axis

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.base[self.index]
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)
