"""An ImageSet (images and labels) and the progress callback every loader takes. numpy only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Progress callback: (bytes or items done, total or None).
Progress = Callable[[int, "int | None"], None]



@dataclass
class ImageSet:
    """Images uint8 [N, C, H, W] and their labels int64 [N] (-1 when unknown);
    `classes` names each label (empty when the data has none)."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.images)
