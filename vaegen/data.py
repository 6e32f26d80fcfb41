"""Datasets without torch: MNIST and Fashion-MNIST IDX files (find, download,
verify, read) and folders of PNG/JPEG images.

Images come back as uint8 arrays [N, C, H, W] with int64 labels [N]. Imports
numpy, the standard library and (for image folders) vaegen.images only.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaegen.errors import DataError
from vaegen.fileio import atomic_path

# Progress callback: (bytes or items done, total or None).
Progress = Callable[[int, "int | None"], None]

MAX_IDX_BYTES = 512 * 1024 * 1024  # a gzip bomb stops here, not in memory
IDX_UBYTE = 0x08


@dataclass(frozen=True)
class IdxFile:
    name: str  # uncompressed file name, e.g. train-images-idx3-ubyte
    md5: str  # md5 of the named form (raw, or the .gz when gz_md5 is True)
    gz_md5: bool = False


@dataclass(frozen=True)
class IdxDataset:
    name: str
    mirrors: tuple[str, ...]
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile


# MNIST: md5 of each raw (uncompressed) file, the well-known reference values.
# Fashion-MNIST publishes the md5 of its .gz files, so those are checked.
DATASETS: dict[str, IdxDataset] = {
    "mnist": IdxDataset(
        name="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        train_images=IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
        train_labels=IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
        test_images=IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
        test_labels=IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
    ),
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        train_images=IdxFile("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", True),
        train_labels=IdxFile("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe", True),
        test_images=IdxFile("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79", True),
        test_labels=IdxFile("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310", True),
    ),
}

# What each label means, in label order (Fashion-MNIST: Xiao et al. 2017, table 1).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple("0123456789"),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
}

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


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


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (used by tests and tools that write data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _gunzip(data: bytes, source: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=_BytesReader(data)) as f:
            out = f.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{source} is not a valid gzip file ({exc}).") from exc
    if len(out) > MAX_IDX_BYTES:
        raise DataError(f"{source} unpacks to more than {MAX_IDX_BYTES >> 20} MiB; refusing it.")
    return out


class _BytesReader:
    """A minimal file object over bytes (io.BytesIO without the copy)."""

    def __init__(self, data: bytes):
        self._view = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(len(self._view), self._pos + n)
        chunk = self._view[self._pos : end].tobytes()
        self._pos = end
        return chunk


def read_idx_file(path: str | os.PathLike, *, ndim: int) -> np.ndarray:
    """Read an IDX file, gzipped (by magic bytes) or raw."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, str(path))
    return parse_idx(data, ndim=ndim, source=str(path))


# ---------------------------------------------------------------- finding and downloading


def default_data_dir(name: str) -> Path:
    """`$VAEGEN_DATA_DIR`, else ~/.cache/vaegen/<name>."""
    env = os.environ.get("VAEGEN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/vaegen").expanduser() / name


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _verified(entry: IdxFile, raw: bytes | None, gz: bytes | None) -> bool:
    if entry.gz_md5:
        return gz is not None and _md5(gz) == entry.md5
    return raw is not None and _md5(raw) == entry.md5


def _load_verified(folder: Path, entry: IdxFile) -> bytes | None:
    """The verified raw bytes of `entry` in `folder`, or None when absent.

    A present file that fails its checksum is an error, never silently replaced.
    """
    for candidate in (folder / entry.name, folder / f"{entry.name}.gz"):
        if not candidate.is_file():
            continue
        try:
            data = candidate.read_bytes()
        except OSError as exc:
            raise DataError(f"Cannot read {candidate}: {exc.strerror or exc}.") from exc
        gz = data if data[:2] == b"\x1f\x8b" else None
        raw = _gunzip(data, str(candidate)) if gz is not None else data
        if entry.gz_md5 and gz is None:
            # Only the .gz checksum is published: check the structure alone.
            return raw
        if not _verified(entry, raw, gz):
            raise DataError(
                f"{candidate} fails its md5 check (expected {entry.md5}); "
                "delete it so vaegen can download it again, or replace it with the original."
            )
        return raw
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
    """Download `entry` from the dataset's mirrors in turn; verify; rename into place."""
    failures = []
    for mirror in dataset.mirrors:
        url = f"{mirror}{entry.name}.gz"
        try:
            gz = download_file(url, timeout=timeout, progress=progress)
            raw = _gunzip(gz, url)
            if not _verified(entry, raw, gz):
                raise DataError(f"{url} failed its md5 check")
            parse_idx(raw, ndim=3 if "images" in entry.name else 1, source=url)
        except (TimeoutError, urllib.error.URLError, OSError, DataError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"{url}: {reason}")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / f"{entry.name}.gz") as tmp:
            tmp.write_bytes(gz)
        return raw
    raise DataError(
        f"Could not download {entry.name} ({'; '.join(failures)}). "
        f"Put the {dataset.name} files ({entry.name}[.gz]) in {folder} by hand, or pass --data-dir."
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

    Files are found in `data_dir`, else $VAEGEN_DATA_DIR, else
    ~/.cache/vaegen/<name>, and downloaded there when absent.
    """
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if split not in ("train", "test"):
        raise DataError(f"Unknown split {split!r}; choose train or test.")
    dataset = DATASETS[name]
    folder = Path(data_dir).expanduser() if data_dir else default_data_dir(name)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"Data folder {folder} is not a folder.")
    arrays = []
    for entry, ndim in (
        (getattr(dataset, f"{split}_images"), 3),
        (getattr(dataset, f"{split}_labels"), 1),
    ):
        raw = _load_verified(folder, entry)
        if raw is None:
            if not download:
                raise DataError(f"{entry.name} is not in {folder}; put the {name} files there.")
            raw = fetch_idx(dataset, entry, folder, timeout=timeout, progress=progress)
        arrays.append(parse_idx(raw, ndim=ndim, source=str(folder / entry.name)))
    images, labels = arrays
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split.")
    return ImageSet(images=images[:, None, :, :], labels=labels.astype(np.int64), name=name, classes=CLASS_NAMES[name])


# ---------------------------------------------------------------- image folders


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


def load_dataset(
    dataset: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    channels: int = 1,
    size: tuple[int, int] = (28, 28),
    progress: Progress | None = None,
) -> ImageSet:
    """A named IDX dataset, or a folder of images when `dataset` is a path."""
    if dataset in DATASETS:
        return load_idx_dataset(dataset, split, data_dir, progress=progress)
    path = Path(dataset).expanduser()
    if path.exists() or os.sep in dataset or dataset.startswith("."):
        return load_image_folder(path, channels=channels, size=size, progress=progress)
    raise DataError(
        f"Unknown dataset {dataset!r}: use mnist, fashion-mnist, or the path of a folder of images."
    )


def split_for_training(dataset: str, data_dir: str | os.PathLike | None = None, *, channels: int = 1,
                       size: tuple[int, int] = (28, 28), progress: Progress | None = None) -> tuple[ImageSet, ImageSet]:
    """The training set and the held-out set of a run: MNIST's own train and
    test splits; an image folder keeps every 10th image apart."""
    train = load_dataset(dataset, "train", data_dir, channels=channels, size=size, progress=progress)
    if dataset in DATASETS:
        return train, load_dataset(dataset, "test", data_dir, channels=channels, size=size, progress=progress)
    if len(train) < 2:
        raise DataError(f"{dataset} holds {len(train)} image; training needs at least 2.")
    held = np.zeros(len(train), dtype=bool)
    held[::10] = True
    part = lambda mask: ImageSet(train.images[mask], train.labels[mask], train.name, train.classes)  # noqa: E731
    return part(~held), part(held)


def binarize(images: np.ndarray, seed: int) -> np.ndarray:
    """Stochastic binarization (Burda et al. 2015): each pixel is 1 with
    probability intensity/255, drawn once from a seeded generator. uint8 -> float32 0/1.
    """
    rng = np.random.default_rng(seed)
    probs = images.astype(np.float32) / 255.0
    return (rng.random(images.shape, dtype=np.float32) < probs).astype(np.float32)


def check_image_shape(data: ImageSet, image_shape: tuple[int, int, int], dataset: str) -> ImageSet:
    """`data`, when its images have the model's shape (C, H, W); else a DataError."""
    if data.images.shape[1:] != tuple(image_shape):
        raise DataError(f"{dataset} images are {data.images.shape[1:]}, the model takes {tuple(image_shape)}.")
    return data


def load_for_model(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                   *, progress: Progress | None = None) -> ImageSet:
    """A split converted to the model's channels and size, its shape checked."""
    c, h, w = image_shape
    data = load_dataset(dataset, split, data_dir, channels=c, size=(h, w), progress=progress)
    return check_image_shape(data, image_shape, dataset)


def evaluation_images(dataset: str, split: str, data_dir: str | os.PathLike | None, image_shape: tuple[int, int, int],
                      *, limit: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """The held-out images a model is scored on: the first `limit` of the
    split, checked against the model's image shape, binarized once with the
    fixed seed 0 (so every evaluation of every model sees the same bits)."""
    data = load_for_model(dataset, split, data_dir, image_shape, progress=progress)
    images = data.images[:limit] if limit else data.images
    return binarize(images, seed=0)
