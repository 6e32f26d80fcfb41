"""Atomic file writing: every file vaegen writes goes to a temporary name in
the destination folder and is renamed into place only once it is complete.

A reader therefore sees the old file or the new one, never half of one, and
an interrupted or failed write leaves nothing behind. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed
    and `path` is left as it was.
    """
    path = Path(path)
    _check_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError as exc:
        raise VaegenError(f"Cannot write in {path.parent}: permission denied.") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the final file the usual umask mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
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
