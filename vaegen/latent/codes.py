"""Reading and writing latent files (.npy or JSON) for `encode` and `decode`.
numpy and the standard library only; .npy files are read without pickle.
numpy is imported where it is used, so the CLI can read LATENT_SUFFIXES
while it defines its options without paying for numpy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from vaegen.errors import LatentError
from vaegen.fileio import atomic_path, check_suffix

if TYPE_CHECKING:
    import numpy as np

LATENT_SUFFIXES = (".npy", ".json")


def load_latents(path: str | Path, latent_dim: int) -> np.ndarray:
    """Latents [N, latent_dim] float32 from .npy ([N, D] or [D]) or JSON."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise LatentError(f"Latent file {path} does not exist or is not a file.")
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(raw, list) and raw and isinstance(raw[0], dict):
                raw = [r.get("mu") for r in raw]  # `vaegen encode --json` output
            data = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError, OSError, UnicodeDecodeError) as exc:
        raise LatentError(f"{path} is not a readable latent file (.npy array or JSON list of vectors): {exc}") from exc
    if data.dtype.kind not in "iuf":  # complex, bool, strings, records: not latents
        raise LatentError(f"{path} holds {data.dtype} values; latents are real numbers (float32).")
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[1] != latent_dim or data.shape[0] == 0:
        raise LatentError(f"{path} holds latents of shape {data.shape}; this model takes [N, {latent_dim}].")
    if not np.isfinite(data).all():
        raise LatentError(f"{path} holds values that are not finite numbers.")
    return data.astype(np.float32)


def save_latents(path: str | Path, latents: np.ndarray) -> None:
    """Write latents [N, D] atomically as .npy (float32) or .json (a list of vectors), by `path`'s extension."""
    import numpy as np

    suffix = check_suffix(path, LATENT_SUFFIXES)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, latents.astype(np.float32), allow_pickle=False)
        else:
            tmp.write_text(json.dumps(latents.tolist()))
