"""The README's `vaegen score` picture: the most and least typical images of
a folder, by the shipped Fashion-MNIST model's default OOD score.

    VAEGEN_DATA_DIR=../shared/data .venv/bin/python tools/score_picture.py docs/score.png

The folder is made of real images: 300 Fashion-MNIST test images (numbers
5000-5299), 10 MNIST test digits and 10 of those garments upside down,
written as PNGs and scored as `vaegen score FOLDER --sort ood_score` scores
them. The picture's top row is the 10 most typical (lowest score), its
bottom row the 10 least typical; the rows are printed on stdout too.

A release step, not library code: it may print. Imports vaegen's API.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import vaegen
from vaegen.data.folders import image_files
from vaegen.data.named import load_idx_dataset

ROW = 10


def write_folder(folder: Path) -> None:
    clothes = load_idx_dataset("fashion-mnist", "test").images[5000:5300, 0]
    digits = load_idx_dataset("mnist", "test").images[5000:5000 + ROW, 0]
    for i, image in enumerate(clothes):
        Image.fromarray(image).save(folder / f"garment{i:03d}.png")
    for i, image in enumerate(digits):
        Image.fromarray(image).save(folder / f"digit{i:02d}.png")
    for i, image in enumerate(clothes[:ROW]):
        Image.fromarray(image[::-1]).save(folder / f"upside-down{i:02d}.png")


def main(out: str) -> None:
    model = vaegen.load_model("fashion-mnist", provider="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(Path(tmp))
        batch = model.load_images(image_files([tmp]))
        records = model.score(batch.images, paths=[p.name for p in batch.paths])
    order = np.argsort([r["ood_score"] for r in records], kind="stable")
    rows = [order[:ROW], order[::-1][:ROW]]
    for name, row in zip(("most typical", "least typical"), rows, strict=True):
        shown = (f"{records[i]['path']} ({records[i]['ood_score']:.2f}, percentile {records[i]['percentile']:.1f})"
                 for i in row)
        print(f"{name}: " + ", ".join(shown))
    vaegen.save_grid(batch.images[np.concatenate(rows)], out, nrow=ROW, scale=3)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/score.png")
