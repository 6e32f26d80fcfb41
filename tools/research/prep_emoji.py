"""Decode the emoji folder into one small .npz the sweep can carry.

Files are taken in sorted path order (as vaegen's find_images does); the label
is the index of the first-level subfolder (sorted names). RGBA is composited
onto a flat background (white by default, as vaegen does). The held-out rule
is vaegen's folder rule: index % 10 == 0 is held out; the sweep applies it.

Writes uint8 images in NHWC layout [N, 64, 64, 3] (key "images", with
layout="NHWC"), labels [N], classes [K], with np.savez_compressed: NHWC
compresses to 19.8 MB where NCHW takes 24.5 MB (the sweep transposes on load).
Imports numpy and Pillow only.

  python prep_emoji.py --folder ../shared/data/emoji --out emoji.npz [--background 0]
  python prep_emoji.py --out emoji.npz.xz     # the same arrays, 12.9 MB (colour_sweep.py reads both)
"""

import argparse
import io
import lzma
import os
from pathlib import Path

import numpy as np
from PIL import Image


def load_folder(folder: Path, background: int, size: int = 64):
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".png" and p.is_file())
    classes = sorted({p.relative_to(folder).parts[0] for p in files})
    index = {c: i for i, c in enumerate(classes)}
    images = np.empty((len(files), size, size, 3), np.uint8)
    labels = np.empty(len(files), np.int16)
    for i, path in enumerate(files):
        with Image.open(path) as img:
            img = img.convert("RGBA")
            if img.size != (size, size):
                img = img.resize((size, size), Image.LANCZOS)
            flat = Image.alpha_composite(Image.new("RGBA", img.size, (background,) * 3 + (255,)), img)
            images[i] = np.asarray(flat.convert("RGB"))
        labels[i] = index[path.relative_to(folder).parts[0]]
    return images, labels, np.array(classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="../shared/data/emoji")
    parser.add_argument("--out", default="emoji.npz")
    parser.add_argument("--background", type=int, default=255, help="grey level under transparency (default 255)")
    args = parser.parse_args()
    images, labels, classes = load_folder(Path(args.folder), args.background)
    arrays = dict(images=images, labels=labels, classes=classes, background=args.background, layout="NHWC")
    if args.out.endswith(".xz"):  # an uncompressed .npz inside xz: 12.9 MB where savez_compressed takes 19.8
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with open(args.out, "wb") as f:
            f.write(lzma.compress(buffer.getvalue(), preset=6))
    else:
        np.savez_compressed(args.out, **arrays)
    held = (np.arange(len(images)) % 10 == 0).sum()
    print(f"{args.out}: {len(images)} images {images.shape[1:]} (NHWC), {len(classes)} classes, "
          f"{held} held out, {os.path.getsize(args.out) / 1e6:.1f} MB")
    print("per class:", dict(zip(classes.tolist(), np.bincount(labels).tolist(), strict=True)))


if __name__ == "__main__":
    main()
