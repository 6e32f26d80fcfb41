"""Atomic file writing: every file vaegen writes goes to a temporary name in
the destination folder and is renamed into place only once it is complete.

A reader therefore sees the old file or the new one, never half of one, and
an interrupted or failed write leaves nothing behind. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from vaegen.errors import VaegenError


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        raise VaegenError(f"Output folder {parent} does not exist; create it first.")
    if not parent.is_dir():
        raise VaegenError(f"{parent} is not a folder, so {path.name} cannot be written in it.")
    if path.is_dir():
        raise VaegenError(f"Output path {path} is a folder; give a file name.")


def _create_unique(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file named prefix + random + suffix in `folder`.

    O_EXCL makes the name ours alone; the mode is the usual 0666 less the umask.
    (tempfile.mkstemp would do, but its import costs every command's start-up.)
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = folder / f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            os.close(os.open(candidate, flags, 0o666))
            return candidate
        except FileExistsError:
            continue
    raise VaegenError(f"Cannot find a free temporary name in {folder}.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    The temporary name is hidden (.NAME.<random><suffix>); `suffix` lets a
    writer that goes by the extension (Pillow) see the one it needs. On any
    exception (KeyboardInterrupt included) the temporary file is removed and
    `path` is left as it was.
    """
    path = Path(path)
    _check_parent(path)
    try:
        tmp_path = _create_unique(path.parent, f".{path.name}.", suffix)
    except PermissionError as exc:
        raise VaegenError(f"Cannot write in {path.parent}: permission denied.") from exc
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def check_folder_target(path: str | os.PathLike, what: str) -> Path:
    """Check that folder `path` exists or can be created: it is not a file,
    and its nearest existing ancestor is a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VaegenError(f"{what} {path} is a file, not a folder.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise VaegenError(f"{what} {path} cannot be made: {ancestor} is a file, not a folder.")
    return path
