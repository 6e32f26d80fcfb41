"""Named datasets without torch: MNIST and Fashion-MNIST IDX files (find,
download, verify, read), each with its own train and test splits.

Images come back as uint8 arrays [N, C, H, W] with int64 labels [N]. Imports
numpy, the standard library, vaegen.data.sets, vaegen.errors and vaegen.fileio only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaegen.data.sets import ImageSet, Progress
from vaegen.errors import DataError
from vaegen.fileio import atomic_path

MAX_IDX_BYTES = 512 * 1024 * 1024  # a gzip bomb stops here, not in memory
IDX_UBYTE = 0x08  # the type byte of unsigned-byte data, the only type these datasets use


@dataclass(frozen=True)
class IdxFile:
    name: str  # uncompressed file name, e.g. train-images-idx3-ubyte
    sha256: str  # of the uncompressed IDX bytes: a faithful copy matches however it is wrapped (gzipped by anyone, or plain)


@dataclass(frozen=True)
class IdxDataset:
    name: str
    mirrors: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile
    system_package: str = ""  # the Debian/Ubuntu package that installs it in SYSTEM_DATA_DIR/<name>

    def files(self, split: str) -> tuple[IdxFile, IdxFile]:
        return getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_dataset(name: str, mirrors: tuple[str, ...], digests: tuple[str, ...], system_package: str = "") -> IdxDataset:
    """A dataset in MNIST's file layout; `digests` are the sha256 of its four uncompressed files, in IDX_FILES' order."""
    files = [IdxFile(file, digest) for file, digest in zip(IDX_FILES, digests, strict=True)]
    return IdxDataset(name, mirrors, *files, system_package=system_package)


DATASETS: dict[str, IdxDataset] = {d.name: d for d in (
    _idx_dataset("mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                           "https://storage.googleapis.com/cvdf-datasets/mnist/", "http://yann.lecun.com/exdb/mnist/"),
                 ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                  "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
    # Debian's package re-gzips the files: the same IDX bytes, other .gz bytes (hence checks by content).
    _idx_dataset("fashion-mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                                   "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
                 ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                  "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
                 system_package="dataset-fashion-mnist"),
)}
SYSTEM_DATA_DIR = Path("/usr/share/datasets")  # where Debian's dataset packages put their files

# What each label means, in label order (Fashion-MNIST: Xiao et al. 2017, table 1).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple("0123456789"),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}

# ---------------------------------------------------------------- IDX format


def parse_idx(data: bytes, *, ndim: int, source: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes (unsigned-byte type) with `ndim` dimensions into an array."""
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{source} is too short to be an IDX file ({len(data)} bytes).")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != IDX_UBYTE or dims != ndim:
        raise DataError(
            f"{source} is not an IDX file of {ndim}-D unsigned bytes "
            f"(magic {data[:4].hex()}, expected 000008{ndim:02x})."
        )
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    expected = math.prod(shape)  # Python ints: a corrupt header cannot overflow to a match
    body = len(data) - 4 - 4 * ndim
    if body != expected:
        raise DataError(
            f"{source} says shape {tuple(shape)} ({expected} bytes) but holds {body} bytes; "
            "the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _gunzip(data: bytes, source: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{source} is not a valid gzip file ({exc}).") from exc
    if len(out) > MAX_IDX_BYTES:
        raise DataError(f"{source} unpacks to more than {MAX_IDX_BYTES >> 20} MiB; refusing it.")
    return out


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The uncompressed IDX bytes of a file, gzipped (known by its magic bytes) or plain."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    return _gunzip(data, str(path)) if data[:2] == b"\x1f\x8b" else data


# ---------------------------------------------------------------- finding and downloading


def data_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders a named dataset is looked for in, in order: `data_dir`,
    $VAEGEN_DATA_DIR (each as given, then its <name> subfolder), the cache
    ~/.cache/vaegen/<name>, and where system packages put it (/usr/share/datasets/<name>)."""
    given = [Path(p).expanduser() for p in (data_dir, os.environ.get("VAEGEN_DATA_DIR")) if p]
    folders = [f for g in given for f in (g, g / name)]
    folders += [cache_dir(name), SYSTEM_DATA_DIR / name]
    return list(dict.fromkeys(folders))


def cache_dir(name: str) -> Path:
    return Path("~/.cache/vaegen").expanduser() / name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _known_as(digest: str) -> str | None:
    """The dataset whose file has this content, if any."""
    for dataset in DATASETS.values():
        for split in ("train", "test"):
            if any(entry.sha256 == digest for entry in dataset.files(split)):
                return dataset.name
    return None


def _load_verified(folder: Path, entry: IdxFile, dataset: str) -> bytes | None:
    """The raw IDX bytes of `entry` in `folder` (plain, or gzipped by anyone),
    or None when the folder has no copy of it (no file by that name, or the
    file of another known dataset). A file that matches nothing is refused."""
    for candidate in (folder / entry.name, folder / f"{entry.name}.gz"):
        if not candidate.is_file():
            continue
        raw = read_idx_bytes(candidate)
        digest = _sha256(raw)
        if digest == entry.sha256:
            return raw
        other = _known_as(digest)
        if other is not None and other != dataset:
            continue  # e.g. MNIST's file of the same name, in a folder tried for Fashion-MNIST
        raise DataError(
            f"{candidate} is not the {dataset} file {entry.name}: its content does not match the published one "
            "(corrupt or truncated). Use a faithful copy, or another folder."
        )
    return None


def download_file(url: str, *, timeout: float = 30.0, progress: Progress | None = None) -> bytes:
    """Download `url` into memory (at most MAX_IDX_BYTES) and return its bytes;
    the caller verifies them before anything is written."""
    request = urllib.request.Request(url, headers={"User-Agent": "vaegen"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https only)
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        chunks, done = [], 0
        while True:
            chunk = response.read(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
            if done > MAX_IDX_BYTES:
                raise DataError(f"{url} is larger than {MAX_IDX_BYTES >> 20} MiB; refusing it.")
            if progress:
                progress(done, total)
    data = b"".join(chunks)
    if total is not None and len(data) != total:
        raise DataError(f"{url} ended after {len(data)} of {total} bytes.")
    return data


def fetch_idx(
    dataset: IdxDataset,
    entry: IdxFile,
    folder: Path,
    *,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> bytes:
    """Download `entry` from the dataset's mirrors in turn, verify its content,
    and rename it into `folder`; a DataError lists each mirror's failure."""
    failures = []
    for mirror in dataset.mirrors:
        url = f"{mirror}{entry.name}.gz"
        try:
            gz = download_file(url, timeout=timeout, progress=progress)
            raw = _gunzip(gz, url)
            if _sha256(raw) != entry.sha256:
                raise DataError("its content does not match the published file")
            parse_idx(raw, ndim=3 if "images" in entry.name else 1, source=url)
        except (TimeoutError, urllib.error.URLError, OSError, DataError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / f"{entry.name}.gz") as tmp:
                tmp.write_bytes(gz)
        except OSError as exc:
            raise DataError(f"Cannot save {entry.name}.gz in {folder}: {exc.strerror or exc}.") from exc
        return raw
    if not failures:
        raise DataError("no mirror is known")
    more = f" (and {len(failures) - 1} other mirror{'s' if len(failures) > 2 else ''})" if len(failures) > 1 else ""
    raise DataError(failures[0] + more)


def _not_found(dataset: IdxDataset, missing: list[IdxFile], folders: list[Path], why: str) -> DataError:
    """The one-line error for files found in no folder: every missing file,
    every folder tried, and how to fill one."""
    names = ", ".join(f"{e.name}[.gz]" for e in missing)
    hint = "put the files in one of these folders, or set VAEGEN_DATA_DIR to the folder that holds them"
    if dataset.system_package:
        hint += f"; on Debian or Ubuntu, apt-get install {dataset.system_package}"
    return DataError(
        f"{dataset.name} is not on this machine: {names} not found in {', '.join(map(str, folders))} ({why}). "
        f"To fix: {hint}."
    )


def load_idx_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> ImageSet:
    """Load MNIST or Fashion-MNIST `split` ('train' or 'test') as an ImageSet.

    Each file is taken from the first folder of data_dirs() that holds a
    copy whose content is the published file's; the ones found nowhere are
    downloaded into the first of them (`data_dir`, else $VAEGEN_DATA_DIR,
    else the cache), unless `download` is False.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if split not in ("train", "test"):
        raise DataError(f"Unknown split {split!r}; choose train or test.")
    dataset = DATASETS[name]
    given = Path(data_dir).expanduser() if data_dir is not None else None
    if given is not None and given.exists() and not given.is_dir():
        raise DataError(f"Data folder {data_dir} is not a folder.")
    tried = data_dirs(name, data_dir)
    folders = [f for f in tried if f.is_dir()]
    found: dict[str, bytes] = {}
    for entry in dataset.files(split):
        raw = next((r for r in (_load_verified(f, entry, name) for f in folders) if r is not None), None)
        if raw is not None:
            found[entry.name] = raw
    missing = [e for e in dataset.files(split) if e.name not in found]
    if missing and not download:
        raise _not_found(dataset, missing, tried, "downloading is off")
    for entry in missing:
        try:
            found[entry.name] = fetch_idx(dataset, entry, tried[0], timeout=timeout, progress=progress)
        except DataError as exc:
            raise _not_found(dataset, missing, tried, f"and the download failed: {exc}") from exc
    images_entry, labels_entry = dataset.files(split)
    images = parse_idx(found[images_entry.name], ndim=3, source=images_entry.name)
    labels = parse_idx(found[labels_entry.name], ndim=1, source=labels_entry.name)
    if len(images) != len(labels):
        raise DataError(f"{name}: {len(images)} images but {len(labels)} labels in the {split} split.")
    return ImageSet(images=images[:, None, :, :], labels=labels.astype(np.int64), name=name, classes=CLASS_NAMES[name])


