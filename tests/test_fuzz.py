"""Fuzzing the two readers that take bytes from users and the network: the
image reader (vaegen.images.load_image and prepare_image) and the IDX reader
(vaegen.data.named.parse_idx and read_idx_file, raw and gzipped).

Inputs start from valid files (PNG in several modes, JPEG, TIFF, WebP, GIF, BMP, IDX, and
their gzip forms) mutated by flipped, overwritten, inserted and deleted bytes
and truncation, and from random bytes behind a real magic number. Whatever
the input, a reader returns a well-formed array or raises vaegen's own error
(ImageError, DataError), never another exception. Bounded in time (about a
minute in all); marked slow, so CI runs it and the default run does not.
"""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tests.support import draw_digits, encode_idx, read_idx_file
from vaegen.data.named import parse_idx
from vaegen.errors import DataError, ImageError
from vaegen.images import load_image, prepare_image

pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=600, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- seed files


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _digit(size: int = 28) -> Image.Image:
    return Image.fromarray(draw_digits(1, seed=5, size=size)[0][0])


def _seed_images() -> dict[str, bytes]:
    digit = _digit()
    rgba = Image.new("RGBA", (20, 14), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([2, 2, 18, 12], fill=(10, 20, 30, 255), width=3)
    sixteen = Image.fromarray(np.asarray(digit, np.uint16) * 257)
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 0))
    ImageDraw.Draw(cmyk).line([8, 2, 8, 14], fill=(0, 0, 0, 255), width=3)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees
    return {
        "jpeg-exif-rotated": _encoded(digit.convert("RGB"), "JPEG", exif=rotated),
        "tiff-deflate": _encoded(digit, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-rgb-lzw": _encoded(digit.convert("RGB"), "TIFF", compression="tiff_lzw"),
        "webp": _encoded(digit, "WEBP", lossless=True),
        "png-gray": _encoded(digit, "PNG"),
        "png-rgba": _encoded(rgba, "PNG"),
        "png-palette": _encoded(digit.convert("P"), "PNG"),
        "png-16-bit": _encoded(sixteen, "PNG"),
        "png-interlaced": _encoded(digit.convert("RGB"), "PNG", interlace=1),
        "jpeg": _encoded(digit.convert("RGB"), "JPEG", quality=90),
        "jpeg-progressive": _encoded(digit, "JPEG", progressive=True),
        "jpeg-cmyk": _encoded(cmyk, "JPEG"),
        "gif": _encoded(digit.convert("P"), "GIF"),
        "bmp": _encoded(digit, "BMP"),
    }


SEED_IMAGES = _seed_images()
IMAGE_MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"GIF89a", b"GIF87a", b"BM",
                b"II*\x00", b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P5\n", b"\x00\x00\x01\x00"]


def _seed_idx() -> dict[str, tuple[bytes, int]]:
    images, labels = draw_digits(3, seed=6, size=6)
    return {"images": (encode_idx(images), 3), "labels": (encode_idx(labels), 1)}


SEED_IDX = _seed_idx()

# ---------------------------------------------------------------- mutations


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """`seed` with up to 8 edits: bit flips, overwrites, insertions, deletions, a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
    return bytes(data)


def mutated_image() -> st.SearchStrategy[bytes]:
    return st.sampled_from(sorted(SEED_IMAGES)).flatmap(lambda name: mutated(SEED_IMAGES[name]))


def random_image() -> st.SearchStrategy[bytes]:
    return st.builds(lambda magic, rest: magic + rest, st.sampled_from(IMAGE_MAGICS), st.binary(max_size=300))


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="vaegen-fuzz-") as folder:
        yield Path(folder)


# ---------------------------------------------------------------- images


def check_image_reader(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        img = load_image(path)
    except ImageError:
        return
    assert isinstance(img, Image.Image) and img.width * img.height > 0
    for shape, preprocessing in (((1, 28, 28), "mnist"), ((1, 28, 28), "resize"), ((3, 12, 10), "resize")):
        try:
            x = prepare_image(path, image_shape=shape, preprocessing=preprocessing)
        except ImageError:
            continue
        assert x.shape == shape and x.dtype == np.float32
        assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


def test_the_seed_images_are_valid(scratch):
    for name, data in SEED_IMAGES.items():
        path = scratch / f"seed-{name}"
        path.write_bytes(data)
        assert prepare_image(path, image_shape=(1, 28, 28), preprocessing="resize").shape == (1, 28, 28), name


@FUZZ
@given(data=mutated_image())
def test_image_reader_on_mutated_files(scratch, data):
    check_image_reader(scratch / "mutated", data)


@FUZZ
@given(data=random_image())
def test_image_reader_on_random_bytes_behind_a_magic(scratch, data):
    check_image_reader(scratch / "random", data)


# ---------------------------------------------------------------- IDX


def check_idx_reader(data: bytes, ndim: int, path: Path) -> None:
    for parse in (lambda: parse_idx(data, ndim=ndim), lambda: _read_file(path, data, ndim)):
        try:
            array = parse()
        except DataError:
            continue
        assert array.dtype == np.uint8 and array.ndim == ndim


def _read_file(path: Path, data: bytes, ndim: int) -> np.ndarray:
    path.write_bytes(data)
    return read_idx_file(path, ndim=ndim)


def mutated_idx() -> st.SearchStrategy[tuple[bytes, int]]:
    return st.sampled_from(sorted(SEED_IDX)).flatmap(
        lambda name: st.tuples(mutated(SEED_IDX[name][0]), st.just(SEED_IDX[name][1]))
    )


@FUZZ
@given(case=mutated_idx())
def test_idx_reader_on_mutated_files(scratch, case):
    data, ndim = case
    check_idx_reader(data, ndim, scratch / "idx")


@FUZZ
@given(case=mutated_idx())
def test_idx_reader_on_gzipped_mutated_files(scratch, case):
    data, ndim = case
    path = scratch / "idx.gz"
    path.write_bytes(gzip.compress(data, mtime=0))
    try:
        array = read_idx_file(path, ndim=ndim)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.ndim == ndim


@FUZZ
@given(case=st.sampled_from(sorted(SEED_IDX)).flatmap(
    lambda name: st.tuples(mutated(gzip.compress(SEED_IDX[name][0], mtime=0)), st.just(SEED_IDX[name][1]))))
def test_idx_reader_on_mutated_gzip_streams(scratch, case):
    data, ndim = case
    path = scratch / "stream.gz"
    path.write_bytes(b"\x1f\x8b" + data[2:] if len(data) >= 2 else data)  # keep the magic: reach the gunzip
    try:
        array = read_idx_file(path, ndim=ndim)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.ndim == ndim


@FUZZ
@given(data=st.binary(max_size=64), ndim=st.integers(1, 4))
def test_idx_reader_on_random_bytes(scratch, data, ndim):
    check_idx_reader(data, ndim, scratch / "random-idx")
