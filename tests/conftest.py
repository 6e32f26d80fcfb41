"""Shared fixtures: tiny generated datasets and a tiny trained bundle.

Nothing here needs ../shared: the data is drawn by the tests themselves.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vaegen import data as data_module
from vaegen.data import IdxDataset, IdxFile, encode_idx


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


def write_idx_folder(folder: Path, n_train: int = 256, n_test: int = 64, gz: bool = True) -> dict[str, str]:
    """Tiny MNIST-layout IDX files in `folder`; returns the raw md5 of each."""
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = draw_digits(n, seed)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{split}-{kind}-ubyte"
            raw = encode_idx(array)
            md5s[name] = hashlib.md5(raw).hexdigest()
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (folder / name).write_bytes(raw)
    return md5s


def fake_mnist(md5s: dict[str, str], mirrors: tuple[str, ...] = ()) -> IdxDataset:
    def entry(name):
        return IdxFile(name, md5s[name])

    return IdxDataset(
        name="mnist", mirrors=mirrors,
        train_images=entry("train-images-idx3-ubyte"), train_labels=entry("train-labels-idx1-ubyte"),
        test_images=entry("t10k-images-idx3-ubyte"), test_labels=entry("t10k-labels-idx1-ubyte"),
    )


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch) -> Path:
    """A folder of tiny MNIST-layout files, registered as 'mnist' for this test."""
    folder = tmp_path / "mnist"
    md5s = write_idx_folder(folder)
    monkeypatch.setitem(data_module.DATASETS, "mnist", fake_mnist(md5s))
    return folder


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A tiny MLP VAE trained for one epoch on drawn digits and exported (needs torch)."""
    pytest.importorskip("torch", reason="making the tiny bundle needs the train extra")
    from vaegen.training.export import export_run
    from vaegen.training.loop import TrainConfig, train
    from vaegen.training.model import ModelConfig

    root = tmp_path_factory.mktemp("tiny-run")
    folder = root / "digits"
    images, labels = draw_digits(200, seed=3)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / str(label) / f"{i}.png")
    cfg = TrainConfig(dataset=str(folder), epochs=2, batch_size=32, binarize=True, seed=0, threads=1)
    run = root / "run"
    train(cfg, ModelConfig(arch="mlp", latent_dim=4, hidden=32), run)
    return export_run(run)
