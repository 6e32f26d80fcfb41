"""Atomic file writing: every file vaegen writes goes to a temporary name in
the destination folder and is renamed into place only once it is complete.

A reader therefore sees the old file or the new one, never half of one, and
an interrupted or failed write leaves nothing behind. Standard library only;
what only the folder builds of the export need (shutil, tempfile, ctypes) is
imported where they run, off every light command's start-up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from vaegen.errors import ArgumentError, OutputError


def check_file_target(path: str | os.PathLike, what: str = "Output path") -> Path:
    """Check, before any work is done, that a file can be written at `path`:
    it is not a folder, and its folder exists and is writable. `what` names
    the path in the message (an option such as "-o")."""
    path = Path(path)
    if path.is_dir():
        raise ArgumentError(f"{what} {path} is a folder; give a file name.")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"Output folder {parent} is a file, not a folder.")
    if not parent.is_dir():
        raise OutputError(f"Output folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK):  # a read-only mount says so here, even to root
        raise OutputError(f"Cannot write in {parent}: permission denied.")
    return path


def check_suffix(path: str | os.PathLike, suffixes: tuple[str, ...], note: str = "") -> str:
    """The suffix of `path`, lower-cased, when it is one of `suffixes`; else
    an ArgumentError that lists them (`note` is added to the message)."""
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        known = ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else suffixes[0]
        raise ArgumentError(f"{path}: the file name must end in {known}{note}.")
    return suffix


def check_folder_target(path: str | os.PathLike, what: str, *, parents: bool = True) -> Path:
    """Check that folder `path` exists or can be created (with its missing
    ancestors when `parents`, else in an existing folder) and written in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"{what} {path} is a file, not a folder.")
    where = path
    if not path.exists():
        if not parents:
            if path.parent.exists() and not path.parent.is_dir():
                raise OutputError(f"Cannot create {path}: {path.parent} is a file, not a folder.")
            if not path.parent.is_dir():
                raise OutputError(f"Cannot create {path}: its parent folder does not exist.")
        where = path.parent
        while not where.exists() and where != where.parent:
            where = where.parent
        if where.exists() and not where.is_dir():
            raise OutputError(f"{what} {path} cannot be made: {where} is a file, not a folder.")
    if where.exists() and not os.access(where, os.W_OK):
        raise OutputError(f"Cannot write in {where}: permission denied.")
    return path


def _os_error(path: Path, exc: OSError) -> OutputError:
    """One line for any OS failure while writing: full disk, vanished or
    read-only folder, a file system such as /proc that takes no new files."""
    return OutputError(f"Cannot write {path}: {exc.strerror or exc}.")


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
    raise OutputError(f"Cannot find a free temporary name in {folder}.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    The temporary name is hidden (.NAME.<random><suffix>); `suffix` lets a
    writer that goes by the extension (Pillow) see the one it needs. On any
    exception (KeyboardInterrupt included) the temporary file is removed and
    `path` is left as it was.
    """
    path = check_file_target(path)
    try:
        tmp_path = _create_unique(path.parent, f".{path.name}.", suffix)
    except PermissionError as exc:
        raise OutputError(f"Cannot write in {path.parent}: permission denied.") from exc
    except OSError as exc:
        raise _os_error(path, exc) from exc
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError):
            raise _os_error(path, exc) from exc
        raise


def make_folder(path: str | os.PathLike) -> Path:
    """Create folder `path` (its parent must exist); an OS failure is one line."""
    path = Path(path)
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    return path


def shown_path(path: str | os.PathLike) -> str:
    """`path` as vaegen records or shows it (a model card's command, the
    explorer's page): relative to the working folder when it lies below it,
    else its own name, so nothing written names the machine's folders."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return resolved.name


STALE_BUILD_SECONDS = 600  # a folder builds in seconds; a build folder this old was left by a killed process


@contextlib.contextmanager
def building_folder(dst: Path) -> Iterator[Path]:
    """A new folder to build `dst` in, beside it; when the block ends without
    an error it replaces `dst` (an old `dst` is swapped out atomically where
    the system allows it: Linux renameat2), else it is removed. Build folders
    that a killed process left (`.NAME.tmp-*`, older than STALE_BUILD_SECONDS) go first."""
    import shutil
    import tempfile

    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise ArgumentError(f"{dst} exists and is not a folder; choose another output.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(dst)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=dst.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; a built folder is shared like any other
    try:
        yield tmp
        _install_folder(tmp, dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_builds(dst: Path) -> None:
    import shutil
    import time

    now = time.time()
    for leftover in dst.parent.glob(f".{dst.name}.tmp-*"):
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > STALE_BUILD_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            pass


def _exchange(src: Path, dst: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return libc.renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_exchange) == 0


def _install_folder(tmp: Path, dst: Path) -> None:
    """Move the finished folder `tmp` to `dst`, replacing any old `dst`."""
    import shutil

    if not dst.exists():
        os.replace(tmp, dst)
        return
    if _exchange(tmp, dst):
        shutil.rmtree(tmp)  # tmp now holds the old folder
        return
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dst, old)
    os.replace(tmp, dst)
    shutil.rmtree(old, ignore_errors=True)
