"""The folder data path, measured side by side (`make bench`, section
"folders"; alone: `python benchmarks/folders.py [--images N] [--jpegs N]`):

- the first decode of camera-sized JPEGs (1024x768, made here) into 64x64,
  by the folder cache (every core, JPEG draft decoding) against a
  one-process Pillow loop over the same files (load, crop, resize);
- the cached start (the second open of the same folder) against the first;
- training images/s of one epoch from the memory-mapped cache against the
  same images held in an in-memory array (the loop's own code, its data swapped);
- the peak private memory (anonymous resident, not the page cache) of a whole
  `vaegen train --epochs 1` on a folder of 64x64 RGB PNGs (made here), in a
  child process sampling its own /proc/self/status.

Imports vaegen's data and training modules, numpy, Pillow and torch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (64, 64)


def _write_jpegs(args) -> None:
    folder, start, stop = args
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # smooth once enlarged: a photo-like spectrum
        Image.fromarray(small).resize((1024, 768), Image.Resampling.BICUBIC).save(folder / f"photo{i:05d}.jpg",
                                                                                  quality=90)


def _write_pngs(args) -> None:
    folder, start, stop = args
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        sub = folder / f"class{i % 8}"
        Image.fromarray(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)).save(sub / f"im{i:06d}.png", compress_level=1)


def make_folder(folder: Path, n: int, writer, classes: int = 0) -> Path:
    """n generated images in `folder` (in `classes` subfolders, if any), written by every core (made once;
    kept between runs)."""
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.*g")) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(classes):
        (folder / f"class{k}").mkdir(exist_ok=True)
    step = max(1, n // (8 * (os.cpu_count() or 1)))
    with multiprocessing.get_context("spawn").Pool() as pool:
        pool.map(writer, [(folder, s, min(s + step, n)) for s in range(0, n, step)])
    return folder


def one_process_loop(folder: Path) -> float:
    """Seconds for a plain Pillow loop: open, decode in full, crop and resize each file, one process."""
    from vaegen.images import load_image, resize_to

    start = time.perf_counter()
    for path in sorted(folder.glob("*.jpg")):
        resize_to(load_image(path), channels=3, size=SIZE)
    return time.perf_counter() - start


def cache_decode(folder: Path, cache: Path) -> tuple[float, float]:
    """Seconds of the first decode into an empty cache, and of the second open (the cached start)."""
    from vaegen.data.cache import Target, decoded_folder

    os.environ["VAEGEN_CACHE_DIR"] = str(cache)
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    decoded_folder(folder, Target(3, SIZE))
    first = time.perf_counter() - start
    start = time.perf_counter()
    decoded_folder(folder, Target(3, SIZE))
    return first, time.perf_counter() - start


def bench_decode(work: Path, jpegs: int, repeats: int) -> dict:
    folder = make_folder(work / f"jpegs-{jpegs}", jpegs, _write_jpegs)
    loops, firsts, cached = [], [], []
    for _ in range(repeats):  # alternating, so a slow moment of the machine hits both
        loops.append(one_process_loop(folder))
        first, again = cache_decode(folder, work / "cache-decode")
        firsts.append(first)
        cached.append(again)
    loop_s, first_s, cached_s = (float(np.median(x)) for x in (loops, firsts, cached))
    return {"jpegs": jpegs, "cores": os.cpu_count(), "one_process_s": loop_s, "first_decode_s": first_s,
            "cached_start_s": cached_s, "ratio_first_over_loop": first_s / loop_s,
            "ratio_cached_over_first": cached_s / first_s}


def train_images_per_s(folder: Path, cache: Path, in_memory: bool) -> float:
    """images/s of one epoch of the loop on `folder`, from the memory-mapped cache or from arrays in memory."""
    import dataclasses

    from vaegen.training import loop
    from vaegen.training.config import TrainConfig
    from vaegen.training.model import ModelConfig

    os.environ["VAEGEN_CACHE_DIR"] = str(cache)
    original = loop.split_data

    def in_memory_data(*args, **kwargs):
        train, held = original(*args, **kwargs)
        return (dataclasses.replace(train, images=np.asarray(train.images)),
                dataclasses.replace(held, images=np.asarray(held.images)))

    loop.split_data = in_memory_data if in_memory else original
    try:
        with tempfile.TemporaryDirectory() as out:
            cfg = TrainConfig(dataset=str(folder), epochs=1, batch_size=256, threads=os.cpu_count())
            model_cfg = ModelConfig(arch="mlp", channels=3, height=SIZE[0], width=SIZE[1], latent_dim=32, hidden=256,
                                    likelihood="logistic")
            metrics = loop.train(cfg, model_cfg, Path(out) / "run")
    finally:
        loop.split_data = original
    return float(metrics["images_per_s"])


def bench_training_source(work: Path, images: int, repeats: int) -> dict:
    folder = make_folder(work / f"pngs-{images}", images, _write_pngs, classes=8)
    cache = work / "cache-train"
    mapped, memory = [], []
    for _ in range(repeats):
        mapped.append(train_images_per_s(folder, cache, in_memory=False))
        memory.append(train_images_per_s(folder, cache, in_memory=True))
    m, a = float(np.median(mapped)), float(np.median(memory))
    return {"images": images, "memory_mapped_images_per_s": m, "in_memory_images_per_s": a, "ratio_mapped_over_memory": m / a}


# A child that trains one epoch while a thread samples its anonymous resident memory (RssAnon: what the
# process itself holds, not the file pages of the memory-mapped cache that the kernel may drop at will).
_PEAK = """
import sys, threading, time
peak = [0]
def sample():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
from vaegen.cli import cli
try:
    cli(sys.argv[1:], prog_name="vaegen", standalone_mode=False)
finally:
    print("PEAK_ANON_KIB", peak[0], file=sys.stderr)
"""


def peak_private_memory(work: Path, images: int, model_args: tuple[str, ...] = ()) -> dict:
    folder = make_folder(work / f"pngs-{images}", images, _write_pngs, classes=8)
    env = dict(os.environ, VAEGEN_CACHE_DIR=str(work / "cache-peak"), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _PEAK, "train", "--dataset", str(folder), "--image-size", "64",
                               "--channels", "3", "--arch", "mlp", "--epochs", "1", "--quiet", "--out",
                               str(Path(out) / "run"), *model_args], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_ANON_KIB")]
    if done.returncode != 0 or not peak:
        raise RuntimeError(f"the training child failed: {done.stderr[-1000:]}")
    raw = images * 3 * SIZE[0] * SIZE[1]
    return {"images": images, "uint8_mib": raw / 2**20, "peak_anon_mib": int(peak[0].split()[1]) / 1024,
            "seconds": seconds, "model_args": " ".join(model_args)}


def bench_folders(work: Path, *, jpegs: int = 2000, images: int = 20_000, repeats: int = 3) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    return {"decode": bench_decode(work, jpegs, repeats), "training": bench_training_source(work, images, repeats),
            "memory": peak_private_memory(work, images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vaegen-bench-folders",
                        help="where the generated folders and caches go (kept between runs)")
    parser.add_argument("--jpegs", type=int, default=2000)
    parser.add_argument("--images", type=int, default=20_000, help="64x64 PNGs for the training and memory figures")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("decode", "training", "memory"), default=None)
    parser.add_argument("--model-args", default="", help="extra `vaegen train` options for the memory figure, "
                        "e.g. '--hidden 64' for a small model whose epoch over 200,000 images takes minutes")
    args = parser.parse_args()
    if args.only == "decode":
        result = bench_decode(args.work, args.jpegs, args.repeats)
    elif args.only == "training":
        result = bench_training_source(args.work, args.images, args.repeats)
    elif args.only == "memory":
        result = peak_private_memory(args.work, args.images, tuple(args.model_args.split()))
    else:
        result = bench_folders(args.work, jpegs=args.jpegs, images=args.images, repeats=args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
