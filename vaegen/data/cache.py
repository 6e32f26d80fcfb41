"""The decoded-folder cache: an image folder decoded once, by every core, into
uint8 arrays on disk, and read back memory-mapped.

An entry is keyed by the folder's content as the file system shows it (each
image file's relative path, size and modification time) and by what it was
decoded to (channels, size, the background under transparency), so a changed
file, a new file or another target shape makes a new entry, and anything else
finds the old one without reading a pixel. Only the files that changed are
decoded again: rows of unchanged files are copied from the folder's previous
entry.

An entry is a folder under `cache_root()/folders/<key>/`:

    images.npy   uint8 [N, C, H, W], the readable images in sorted file order
    labels.npy   int64 [N], the index of each image's first-level subfolder (-1 at the top)
    index.json   the folder's name, the files kept, the classes, every bad file with its
                 reason, and the fingerprint of each file (for the next partial decode)

It is built in a temporary folder beside its place and renamed into place, so
a reader sees a whole entry or none. numpy, Pillow (through vaegen.images) and
the standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaegen.data.sets import Progress
from vaegen.errors import DataError, ImageError
from vaegen.recipes import COMMON

CACHE_FORMAT = 1
# Any still image Pillow reads, by suffix; other files (a .txt, a .DS_Store) are passed over.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
CHUNK = 64  # files a worker decodes per task: large enough to amortise the hand-off, small enough to balance
PARALLEL_FROM = 512  # fewer files than this decode in-process: starting workers would cost more than it saves
SHOWN_BAD = 5  # bad files named in full in an error; the rest are counted


@dataclass(frozen=True)
class Target:
    """What each image is decoded to: channels (1 or 3), (height, width), and the
    background (0-255 grey level) that transparent pixels are composited onto."""

    channels: int
    size: tuple[int, int]
    background: int = COMMON["background"]

    def key(self) -> list:
        return [self.channels, *self.size, self.background]


@dataclass
class Entry:
    """A cache entry opened for reading: images memory-mapped, labels in memory."""

    path: Path
    images: np.ndarray  # uint8 [N, C, H, W], np.memmap
    labels: np.ndarray  # int64 [N]
    files: list[str]  # relative paths of the images kept, in row order
    classes: tuple[str, ...]
    bad: list[tuple[str, str]]  # (relative path, reason) of each file that could not be read
    decoded: int  # files decoded to build this entry: 0 when it was found whole


def cache_root() -> Path:
    """$VAEGEN_CACHE_DIR, else $XDG_CACHE_HOME/vaegen, else ~/.cache/vaegen."""
    given = os.environ.get("VAEGEN_CACHE_DIR")
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()) / "vaegen"


def folders_root() -> Path:
    return cache_root() / "folders"


def scan_folder(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime in ns) of every image file under `folder`, sorted by path."""
    if not folder.is_dir():
        raise DataError(f"Dataset folder {folder} does not exist or is not a folder.")
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .git, .ipynb_checkpoints: never data
        for name in names:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            path = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):  # removed while we looked
                stat = os.stat(path)
                found.append((Path(path).relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    if not found:
        raise DataError(f"Dataset folder {folder} holds no image (PNG, JPEG, WebP, BMP, TIFF or GIF).")
    return sorted(found)


def entry_key(folder: Path, files: list[tuple[str, int, int]], target: Target) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_FORMAT, str(folder.resolve()), target.key(), files]).encode())
    return digest.hexdigest()[:24]


def folder_tag(folder: Path) -> str:
    """The same for every entry of one folder: how the previous entry is found for a partial decode."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def open_entry(path: Path) -> Entry:
    index = json.loads((path / "index.json").read_text(encoding="utf-8"))
    images = np.load(path / "images.npy", mmap_mode="r")
    labels = np.load(path / "labels.npy")
    return Entry(path, images, labels, index["files"], tuple(index["classes"]),
                 [tuple(b) for b in index["bad"]], 0)


def decoded_folder(folder: str | os.PathLike, target: Target, *, workers: int | None = None,
                   progress: Progress | None = None) -> Entry:
    """The folder's cache entry for `target`, decoding what the cache does not hold yet."""
    folder = Path(folder).expanduser()
    files = scan_folder(folder)
    key = entry_key(folder, files, target)
    place = folders_root() / f"{folder_tag(folder)}-{key}"
    if (place / "index.json").is_file():
        with contextlib.suppress(OSError, ValueError, KeyError):
            return open_entry(place)  # an unreadable entry is rebuilt below
    return _build_entry(folder, files, target, place, workers, progress)


def _build_entry(folder: Path, files, target: Target, place: Path, workers, progress) -> Entry:
    place.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(place) + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        previous, reuse, known_bad = _previous_entry(folder, place, target)
        todo = [i for i, f in enumerate(files) if tuple(f) not in reuse and tuple(f) not in known_bad]
        rows = np.lib.format.open_memmap(tmp / "all.npy", mode="w+", dtype=np.uint8,
                                         shape=(len(files), target.channels, *target.size))
        for i, f in enumerate(files):
            if tuple(f) in reuse:
                old, row = reuse[tuple(f)]
                rows[i] = old[row]
        rows.flush()
        del rows, reuse
        bad = _decode_into(folder, files, todo, target, tmp / "all.npy", workers, progress)
        bad.update({i: known_bad[tuple(f)] for i, f in enumerate(files) if tuple(f) in known_bad})
        _finish_entry(tmp, files, bad, folder.name, target)
        shutil.rmtree(place, ignore_errors=True)
        os.replace(tmp, place)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if previous is not None:  # superseded: its rows live on in the new entry
        shutil.rmtree(previous, ignore_errors=True)
    entry = open_entry(place)
    entry.decoded = len(todo)
    return entry


def _previous_entry(folder: Path, place: Path, target: Target) -> tuple[Path | None, dict, dict]:
    """The newest other entry of this folder for this target, if any: its path,
    {(path, size, mtime): (images, row)} of its images and {(path, size, mtime): reason} of its bad files."""
    tag = folder_tag(folder)
    best, newest = None, -1.0
    for other in place.parent.glob(f"{tag}-*"):
        if other == place or not (other / "index.json").is_file():
            continue
        with contextlib.suppress(OSError, ValueError, KeyError):
            index = json.loads((other / "index.json").read_text(encoding="utf-8"))
            if index.get("target") == target.key() and index.get("format") == CACHE_FORMAT:
                mtime = (other / "index.json").stat().st_mtime
                if mtime > newest:
                    best, newest = (other, index), mtime
    if best is None:
        return None, {}, {}
    other, index = best
    images = np.load(other / "images.npy", mmap_mode="r")
    rows = {tuple(f): (images, row) for row, f in enumerate(map(tuple, index["kept_fingerprints"]))}
    return other, rows, {tuple(f): reason for f, reason in index["bad_fingerprints"]}


def _decode_into(folder: Path, files, todo: list[int], target: Target, array: Path, workers, progress) -> dict:
    """Decode files[todo] into the rows of the .npy at `array`, in parallel; {row: reason} of the bad ones."""
    bad: dict[int, str] = {}
    if not todo:
        return bad
    chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
    jobs = [(str(folder), [(i, files[i][0]) for i in chunk], target, str(array)) for chunk in chunks]
    workers = max(1, min(workers or default_workers(), len(chunks)))
    if len(todo) < PARALLEL_FROM:
        workers = 1
    done = 0
    if workers == 1:
        results = map(_decode_chunk, jobs)
        for result in results:
            bad.update(result)
            done += CHUNK
            if progress:
                progress(min(done, len(todo)), len(todo))
        return bad
    with multiprocessing.get_context(_start_method()).Pool(workers) as pool:
        for result in pool.imap_unordered(_decode_chunk, jobs):
            bad.update(result)
            done += CHUNK
            if progress:
                progress(min(done, len(todo)), len(todo))
    return bad


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _start_method() -> str:
    # Never plain fork: a process that holds threads (torch's, ONNX Runtime's) can fork a worker
    # while one of them holds a lock, and that worker waits forever. A fork server is forked from
    # a fresh single-threaded process, and is quick after its first start.
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _decode_chunk(job) -> dict:
    """Worker: decode a chunk of files into their rows of the shared .npy; {row: reason} of the bad ones."""
    from vaegen.images import load_image, resize_to

    folder, items, target, array = job
    rows = np.load(array, mmap_mode="r+")
    bad = {}
    for i, rel in items:
        try:
            img = load_image(Path(folder) / rel, draft=target.size)
            rows[i] = resize_to(img, channels=target.channels, size=target.size, background=target.background)
        except ImageError as exc:
            bad[i] = str(exc)
        except (OSError, ValueError, MemoryError) as exc:  # what Pillow raises past load_image's own checks
            bad[i] = f"{Path(folder) / rel} could not be decoded ({exc})."
    rows.flush()
    return bad


def _finish_entry(tmp: Path, files, bad: dict, name: str, target: Target) -> None:
    """images.npy of the readable rows, labels.npy and index.json, in `tmp`."""
    keep = [i for i in range(len(files)) if i not in bad]
    full = np.load(tmp / "all.npy", mmap_mode="r")
    if bad:  # compact: copy the good rows, a block at a time, into the final array
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(keep), *full.shape[1:]))
        for start in range(0, len(keep), 4096):
            images[start : start + 4096] = full[keep[start : start + 4096]]
        images.flush()
        del images, full
        (tmp / "all.npy").unlink()
    else:
        del full
        os.replace(tmp / "all.npy", tmp / "images.npy")
    kept = [files[i][0] for i in keep]
    classes = sorted({p.split("/")[0] for p in kept if "/" in p})
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[p.split("/")[0]] if "/" in p else -1 for p in kept], dtype=np.int64)
    np.save(tmp / "labels.npy", labels)
    facts = {"format": CACHE_FORMAT, "folder": name, "target": target.key(), "files": kept, "classes": classes,
             "bad": [[files[i][0], bad[i]] for i in sorted(bad)],
             "kept_fingerprints": [list(files[i]) for i in keep],
             "bad_fingerprints": [[list(files[i]), bad[i]] for i in sorted(bad)], "created": time.time()}
    (tmp / "index.json").write_text(json.dumps(facts), encoding="utf-8")


def first_few(items: list[str], separator: str) -> str:
    """The first SHOWN_BAD of `items` joined by `separator`, and a count of the rest: how bad files are named."""
    more = f"{separator}and {len(items) - SHOWN_BAD} more" if len(items) > SHOWN_BAD else ""
    return separator.join(items[:SHOWN_BAD]) + more


def bad_files_error(folder: Path, bad: list[tuple[str, str]]) -> DataError:
    """One line naming every bad file (the first SHOWN_BAD in full, the rest counted) and the way on."""
    files = "file" if len(bad) == 1 else "files"
    return DataError(f"{folder} holds {len(bad)} {files} that cannot be read as images: "
                     f"{first_few([reason.rstrip('.') for _, reason in bad], '; ')}. "
                     "Remove or fix them, or leave them out (skip_bad=True).", argument="skip_bad")


def cache_usage() -> dict:
    """Where the folder cache is, how many entries it holds and their total size in bytes."""
    root = folders_root()
    entries = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    size = sum(f.stat().st_size for p in entries for f in p.iterdir() if f.is_file())
    return {"path": str(root), "entries": len(entries), "bytes": size}


def clear_cache() -> dict:
    """Remove every folder-cache entry; returns what was there (cache_usage)."""
    usage = cache_usage()
    shutil.rmtree(folders_root(), ignore_errors=True)
    return usage
