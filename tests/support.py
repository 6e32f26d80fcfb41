"""Plain helpers the tests share: drawn digits and tiny MNIST-layout files,
checks of one-line errors and of grids, odd but valid image files, an
explorer server on a thread, an import blocker for subprocesses, the
SIGINT default for children a test interrupts, and a one-epoch run, exported.

A plain module, not a test and not a conftest: test modules and conftest.py
import it by name (`from tests.support import draw_digits`). It imports only
vaegen's public modules and never a test module; fixtures live in conftest.py.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vaegen.data.named import IDX_UBYTE, IdxDataset, IdxFile, parse_idx, read_idx_bytes
from vaegen.runtime import cuda_driver_present
from vaegen.serve.server import make_server

TILE, PAD = 28, 2  # the tiny bundle's images, and the padding between tiles of a grid

no_gpu = pytest.mark.skipif(cuda_driver_present(), reason="this machine has an NVIDIA driver")


def draw_digits(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """n crude 'digits' (strokes and rings) as uint8 [n, size, size], with labels 0..3."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), np.uint8)
    labels = rng.integers(0, 4, n)
    for i, label in enumerate(labels):
        img = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(img)
        jitter = rng.integers(-2, 3, 4)
        if label == 0:
            draw.ellipse([8 + jitter[0], 6 + jitter[1], 20 + jitter[2], 22 + jitter[3]], outline=255, width=3)
        elif label == 1:
            draw.line([14 + jitter[0], 5, 14 + jitter[1], 23], fill=255, width=3)
        elif label == 2:
            draw.line([7, 8 + jitter[0], 21, 8 + jitter[1]], fill=255, width=3)
            draw.line([21, 8 + jitter[1], 7, 21 + jitter[2]], fill=255, width=3)
            draw.line([7, 21 + jitter[2], 21, 21 + jitter[3]], fill=255, width=3)
        else:
            draw.line([7 + jitter[0], 7, 21 + jitter[1], 21], fill=255, width=3)
            draw.line([21 + jitter[2], 7, 7 + jitter[3], 21], fill=255, width=3)
        images[i] = np.asarray(img)
    return images, labels.astype(np.uint8)


def write_digit_folder(folder: Path, n: int, seed: int = 0) -> Path:
    """A folder of n drawn digits as PNGs in label subfolders 0..3 (an image folder dataset with labels)."""
    images, labels = draw_digits(n, seed=seed)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / str(label) / f"{i}.png")
    return folder


def write_idx_folder(folder: Path, n_train: int = 256, n_test: int = 64, gz: bool = True) -> dict[str, str]:
    """Tiny MNIST-layout IDX files in `folder`; returns the sha256 of each one's raw IDX bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = draw_digits(n, seed)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{split}-{kind}-ubyte"
            raw = encode_idx(array)
            digests[name] = hashlib.sha256(raw).hexdigest()
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (folder / name).write_bytes(raw)
    return digests


def fake_mnist(digests: dict[str, str], mirrors: tuple[str, ...] = ()) -> IdxDataset:
    def entry(name):
        return IdxFile(name, digests[name])

    return IdxDataset(
        name="mnist", mirrors=mirrors,
        train_images=entry("train-images-idx3-ubyte"), train_labels=entry("train-labels-idx1-ubyte"),
        test_images=entry("t10k-images-idx3-ubyte"), test_labels=entry("t10k-labels-idx1-ubyte"),
    )



# ---------------------------------------------------------------- the CLI


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    """The command failed with `code`, no traceback, and one `Error: ...` line holding every fragment."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    error = lines[0]
    assert error.startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in error, error



# ---------------------------------------------------------------- images and grids


def grid_size(cols: int, rows: int, scale: int = 1) -> tuple[int, int]:
    """(width, height) of a grid of 28x28 tiles with 2-pixel padding."""
    return ((cols * (TILE + PAD) + PAD) * scale, (rows * (TILE + PAD) + PAD) * scale)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def grid_tiles(path: Path, cols: int, rows: int, scale: int = 1) -> list[np.ndarray]:
    """The tiles of a grid PNG, row by row, as uint8 arrays."""
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("L"))
    step, tile, edge = (TILE + PAD) * scale, TILE * scale, PAD * scale
    return [pixels[edge + r * step : edge + r * step + tile, edge + c * step : edge + c * step + tile]
            for r in range(rows) for c in range(cols)]


def pixel_change_along(model, dims: list[int]) -> list[float]:
    """For each dimension, the summed pixel change between decoding z = -2 and
    z = +2 along it (z = 0 elsewhere): how active `active_dims` says it is."""
    d = model.latent_dim
    probes = np.zeros((2 * len(dims), d), np.float32)
    for row, dim in enumerate(dims):
        probes[2 * row, dim], probes[2 * row + 1, dim] = -2.0, 2.0
    out = model.decode(probes).reshape(len(dims), 2, -1).astype(np.float64)
    return np.abs(out[:, 0] - out[:, 1]).sum(axis=1).tolist()


# ---------------------------------------------------------------- odd but valid image files
# Each maker writes an image at `path` with its own suffix and returns the file's path.


def digit_array(seed: int = 4) -> np.ndarray:
    return draw_digits(1, seed=seed)[0][0]  # uint8 [28, 28], white on black


def odd_16_bit(path: Path) -> Path:
    img = Image.fromarray(digit_array().astype(np.uint16) * 257)
    assert img.mode == "I;16"
    img.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_palette(path: Path) -> Path:
    Image.fromarray(digit_array()).convert("P").save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_rgba(path: Path) -> Path:
    """Black ink whose alpha is the digit: on white paper, a dark digit."""
    ink = digit_array()
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = ink
    Image.fromarray(rgba, mode="RGBA").save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_gray_alpha(path: Path) -> Path:
    la = np.stack([np.zeros((28, 28), np.uint8), digit_array()], axis=-1)
    Image.fromarray(la, mode="LA").save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_one_bit(path: Path) -> Path:
    Image.fromarray(digit_array() > 127).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_cmyk_jpeg(path: Path) -> Path:
    img = Image.new("CMYK", (28, 28), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([14, 4, 14, 24], fill=(0, 0, 0, 255), width=4)
    img.save(path.with_suffix(".jpg"), format="JPEG", quality=95)
    return path.with_suffix(".jpg")


def odd_progressive_jpeg(path: Path) -> Path:
    Image.fromarray(digit_array()).save(path.with_suffix(".jpeg"), progressive=True, quality=95)
    return path.with_suffix(".jpeg")


def odd_interlaced_png(path: Path) -> Path:
    Image.fromarray(digit_array()).convert("RGB").save(path.with_suffix(".png"), interlace=1)
    return path.with_suffix(".png")


def odd_huge(path: Path) -> Path:
    img = Image.new("L", (4000, 3000), 0)
    ImageDraw.Draw(img).ellipse([1500, 500, 2500, 2500], outline=255, width=200)
    img.save(path.with_suffix(".png"), compress_level=1)
    return path.with_suffix(".png")


def odd_tiny(path: Path) -> Path:
    Image.fromarray(np.array([[0, 255, 0], [0, 255, 0], [0, 255, 0]], np.uint8)).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_single_pixel(path: Path) -> Path:
    Image.new("L", (1, 1), 200).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def odd_unicode_name(path: Path) -> Path:
    target = path.with_name("ünï cödé digit.PNG")
    Image.fromarray(digit_array()).save(target, format="PNG")
    return target


def odd_dark_on_white(path: Path) -> Path:
    Image.fromarray(255 - digit_array()).save(path.with_suffix(".png"))
    return path.with_suffix(".png")


ODD_IMAGES = [odd_16_bit, odd_palette, odd_rgba, odd_gray_alpha, odd_one_bit, odd_cmyk_jpeg, odd_progressive_jpeg,
              odd_interlaced_png, odd_huge, odd_tiny, odd_single_pixel, odd_unicode_name, odd_dark_on_white]



# ---------------------------------------------------------------- processes and servers


def start_server(explorer):
    """The explorer served on 127.0.0.1 at a free port, from a daemon thread;
    the caller shuts it down."""
    server = make_server("127.0.0.1", 0, explorer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


BLOCKER = '''
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnx", "sklearn", "scipy"):
            raise ImportError(f"{name} is blocked: the light commands must not import it")
        return None

sys.meta_path.insert(0, _Blocked())
'''


def blocker_site(folder: Path) -> Path:
    """`folder`/site holding a sitecustomize.py (BLOCKER) that makes importing
    torch, onnx, sklearn or scipy fail: put it first on a subprocess's PYTHONPATH."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    return site


def default_sigint() -> None:
    """preexec_fn for a child that a test stops with SIGINT: a shell running
    the tests in the background (nohup, `&`) hands its children SIGINT
    ignored, and Python then installs no KeyboardInterrupt; a terminal's
    Ctrl-C is what the tests mean."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array: the tests' own data files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def read_idx_file(path, *, ndim: int) -> np.ndarray:
    """An IDX file read as vaegen reads one: its bytes, gzipped or plain, parsed."""
    return parse_idx(read_idx_bytes(path), ndim=ndim, source=str(path))


def train_tiny(root: Path, model_cfg, n: int = 64) -> Path:
    """One epoch of `model_cfg` (a vaegen.training.model.ModelConfig) on n
    drawn digits in root/digits, exported: the bundle's path. Needs torch."""
    from vaegen.training.config import TrainConfig
    from vaegen.training.export import export_run
    from vaegen.training.loop import train

    images, _ = draw_digits(n, seed=5)
    (root / "digits").mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(root / "digits" / f"{i}.png")
    train(TrainConfig(dataset=str(root / "digits"), epochs=1, batch_size=16, seed=0, threads=1), model_cfg, root / "run")
    return export_run(root / "run")


def write_colour_folder(folder: Path, n: int, size: int = 32, seed: int = 0) -> Path:
    """A folder of n RGBA PNGs in class subfolders (red discs, green squares, blue
    bars, at jittered places on a transparent ground): a labelled colour folder."""
    rng = np.random.default_rng(seed)
    shapes = ("disc", "square", "bar")
    colours = ((220, 40, 40), (40, 190, 60), (40, 70, 220))
    for i in range(n):
        label = i % len(shapes)
        img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        x, y = (int(v) for v in rng.integers(size // 8, size // 3, 2))
        box = [x, y, x + size // 2, y + size // 2]
        fill = (*(int(min(255, c + rng.integers(-20, 21))) for c in colours[label]), 255)
        if label == 0:
            draw.ellipse(box, fill=fill)
        elif label == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.rectangle([box[0], box[1] + size // 6, box[2], box[3] - size // 6], fill=fill)
        (folder / shapes[label]).mkdir(parents=True, exist_ok=True)
        img.save(folder / shapes[label] / f"{i:04d}.png")
    return folder
